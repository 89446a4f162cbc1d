/// Cycles each group's rate between `baseLR` and `maxLR` (Smith, 2017), as torch's `CyclicLR`,
/// and the momentum (or β₁) inversely between `maxMomentum` and `baseMomentum`.
///
/// With c = ⌊1 + e / (up + down)⌋ and x = 1 + e / (up + down) − c, the height is
/// h = x / r for x ≤ r = up / (up + down), (x − 1) / (r − 1) otherwise, and
///
///     lr(e) = baseLR + (maxLR − baseLR) · h · scale(c or e)
///     momentum(e) = maxMomentum − (maxMomentum − baseMomentum) · h · scale(c or e)
///
/// `triangular` keeps scale 1, `triangular2` halves it each cycle, `exp_range` is γ^e; a
/// custom scale function replaces them.
public final class CyclicLR: LRScheduler {
    /// The scale policy of the cycles' amplitude.
    public enum Mode: String, Sendable, CaseIterable {
        /// Every cycle has the full amplitude (scale 1).
        case triangular
        /// The amplitude halves each cycle (scale 1 / 2^(c − 1)).
        case triangular2
        /// The amplitude decays as γ^e, e the epoch (torch: `exp_range`).
        case expRange = "exp_range"
    }
    /// What the scale function takes: the cycle number or the epoch.
    public enum ScaleMode: String, Sendable {
        /// The cycle number c, counted from 1.
        case cycle
        /// The epoch e.
        case iterations
    }

    /// Each group's upper rate (torch: `max_lr`).
    public let maxLearningRates: [Double]
    /// Epochs of one cycle: `stepSizeUp + stepSizeDown`.
    public let totalSize: Double
    /// The rising part of a cycle: `stepSizeUp / totalSize`.
    public let stepRatio: Double
    /// The built-in scale policy (ignored when a scale function is given).
    public let mode: Mode
    /// The base of `expRange`'s scale, γ^e (default 1).
    public let gamma: Double
    /// Whether the scale is a function of the cycle or of the epoch.
    public let scaleMode: ScaleMode
    let scale: (Double) -> Double
    /// Whether the momentum (or β₁) cycles inversely to the rate (default true).
    public let cycleMomentum: Bool
    let baseMomentums: [Double]
    let maxMomentums: [Double]

    /// `baseLR`, `maxLR`, `baseMomentum` and `maxMomentum` take one value for every group or
    /// one per group. `scaleFunction` (with its `scaleMode`) replaces the mode's scale.
    public init<O: Optimizer>(_ optimizer: O, baseLR: [Double], maxLR: [Double], stepSizeUp: Int = 2000,
                              stepSizeDown: Int? = nil, mode: Mode = .triangular, gamma: Double = 1,
                              scaleFunction: ((Double) -> Double)? = nil, scaleMode: ScaleMode = .cycle,
                              cycleMomentum: Bool = true, baseMomentum: [Double] = [0.8],
                              maxMomentum: [Double] = [0.9]) throws {
        let groups = ScheduledGroups(optimizer)
        let count = groups.count()
        let bases = try perGroup(baseLR, count: count, "base_lr")
        maxLearningRates = try perGroup(maxLR, count: count, "max_lr")
        guard stepSizeUp > 0, (stepSizeDown ?? 1) > 0 else {
            throw OptimError(.invalidOption, "step_size_up and step_size_down must be positive")
        }
        let up = Double(stepSizeUp), down = Double(stepSizeDown ?? stepSizeUp)
        totalSize = up + down
        stepRatio = up / totalSize
        self.mode = mode
        self.gamma = gamma
        if let scaleFunction {
            scale = scaleFunction
            self.scaleMode = scaleMode
        } else {
            switch mode {
            case .triangular:
                scale = { _ in 1 }
                self.scaleMode = .cycle
            case .triangular2:
                scale = { 1 / Math.pow(2, $0 - 1) }
                self.scaleMode = .cycle
            case .expRange:
                scale = { Math.pow(gamma, $0) }
                self.scaleMode = .iterations
            }
        }
        self.cycleMomentum = cycleMomentum
        let momentums = try cycledMomentums(groups, cycleMomentum, base: baseMomentum, max: maxMomentum, count: count)
        (baseMomentums, maxMomentums) = momentums
        // The optimizer may refuse a base rate or the momentum of one group after others were set.
        try groups.undoingChangesOnError {
            for (group, rate) in bases.enumerated() { try groups.setLearningRate(group, rate) }
            for (group, momentum) in momentums.max.enumerated() { try groups.setMomentum!(group, momentum) }
        }
        try super.init(groups: groups, baseLearningRates: bases)
    }

    override func learningRates() throws -> [Double] {
        let e = Double(lastEpoch)
        let cycle = (1 + e / totalSize).rounded(.down)
        let x = 1 + e / totalSize - cycle
        let height = x <= stepRatio ? x / stepRatio : (x - 1) / (stepRatio - 1)
        let scaled = scale(scaleMode == .cycle ? cycle : e)
        if cycleMomentum {
            for group in baseMomentums.indices {
                let momentum = maxMomentums[group] - (maxMomentums[group] - baseMomentums[group]) * height * scaled
                try groups.setMomentum!(group, momentum)
            }
        }
        return zip(baseLearningRates, maxLearningRates).map { base, top in base + (top - base) * height * scaled }
    }
}

/// The 1cycle policy (Smith & Topin, 2018), as torch's `OneCycleLR`: each group's rate rises
/// from maxLR / divFactor to maxLR over the first `pctStart` of `totalSteps`, then anneals to
/// maxLR / (divFactor · finalDivFactor) (with `threePhase`, back to the start first); the
/// momentum (or β₁) moves the opposite way between `maxMomentum` and `baseMomentum`. Phases
/// anneal by cosine, cos(πp) + 1 halved, or linearly.
public final class OneCycleLR: LRScheduler {
    /// How a phase moves from its start to its end.
    public enum Annealing: String, Sendable {
        /// Along half a cosine: end + (start − end) · (1 + cos πp) / 2 at fraction p of the phase.
        case cos
        /// Linearly: start + p · (end − start).
        case linear
    }

    /// The steps of the whole policy.
    public let totalSteps: Int
    /// How each phase moves between its ends (torch: `anneal_strategy`, default `cos`).
    public let annealing: Annealing
    /// Whether the momentum (or β₁) moves opposite to the rate (default true).
    public let cycleMomentum: Bool
    let initialRates: [Double]
    let maxRates: [Double]
    let minRates: [Double]
    let baseMomentums: [Double]
    let maxMomentums: [Double]
    /// (last step, start and end of the rate and of the momentum, as (initial, max, min) and
    /// (max, base) selectors).
    let phases: [(end: Double, rate: (KeyPath<OneCycleLR, [Double]>, KeyPath<OneCycleLR, [Double]>),
                  momentum: (KeyPath<OneCycleLR, [Double]>, KeyPath<OneCycleLR, [Double]>))]

    /// Give `totalSteps`, or `epochs` and `stepsPerEpoch`. Values that take a list take one
    /// value for every group or one per group.
    public init<O: Optimizer>(_ optimizer: O, maxLR: [Double], totalSteps: Int? = nil, epochs: Int? = nil,
                              stepsPerEpoch: Int? = nil, pctStart: Double = 0.3, annealing: Annealing = .cos,
                              cycleMomentum: Bool = true, baseMomentum: [Double] = [0.85],
                              maxMomentum: [Double] = [0.95], divFactor: Double = 25, finalDivFactor: Double = 1e4,
                              threePhase: Bool = false) throws {
        let groups = ScheduledGroups(optimizer)
        let count = groups.count()
        if let totalSteps {
            guard totalSteps > 0 else { throw OptimError(.invalidOption, "Expected positive integer total_steps, but got \(totalSteps)") }
            self.totalSteps = totalSteps
        } else if let epochs, let stepsPerEpoch {
            guard epochs > 0 else { throw OptimError(.invalidOption, "Expected positive integer epochs, but got \(epochs)") }
            guard stepsPerEpoch > 0 else {
                throw OptimError(.invalidOption, "Expected positive integer steps_per_epoch, but got \(stepsPerEpoch)")
            }
            self.totalSteps = epochs * stepsPerEpoch
        } else {
            throw OptimError(.invalidOption, "You must define either total_steps OR (epochs AND steps_per_epoch)")
        }
        guard pctStart >= 0, pctStart <= 1 else {
            throw OptimError(.invalidOption, "Expected float between 0 and 1 pct_start, but got \(pctStart)")
        }
        self.annealing = annealing
        maxRates = try perGroup(maxLR, count: count, "max_lr")
        initialRates = maxRates.map { $0 / divFactor }
        minRates = initialRates.map { $0 / finalDivFactor }
        self.cycleMomentum = cycleMomentum
        let momentums = try cycledMomentums(groups, cycleMomentum, base: baseMomentum, max: maxMomentum, count: count)
        (baseMomentums, maxMomentums) = momentums
        let total = Double(self.totalSteps)
        if threePhase {
            phases = [
                (pctStart * total - 1, (\.initialRates, \.maxRates), (\.maxMomentums, \.baseMomentums)),
                (2 * pctStart * total - 2, (\.maxRates, \.initialRates), (\.baseMomentums, \.maxMomentums)),
                (total - 1, (\.initialRates, \.minRates), (\.maxMomentums, \.maxMomentums)),
            ]
        } else {
            phases = [
                (pctStart * total - 1, (\.initialRates, \.maxRates), (\.maxMomentums, \.baseMomentums)),
                (total - 1, (\.maxRates, \.minRates), (\.baseMomentums, \.maxMomentums)),
            ]
        }
        // The optimizer may refuse the momentum of one group after others were set.
        try groups.undoingChangesOnError {
            for (group, momentum) in momentums.max.enumerated() { try groups.setMomentum!(group, momentum) }
        }
        groups.initialLearningRates = initialRates
        try super.init(groups: groups)
    }

    private func anneal(_ start: Double, _ end: Double, _ fraction: Double) -> Double {
        switch annealing {
        case .cos: end + (start - end) / 2.0 * (Math.cos(Double.pi * fraction) + 1)
        case .linear: (end - start) * fraction + start
        }
    }

    override func learningRates() throws -> [Double] {
        guard lastEpoch <= totalSteps else {
            throw OptimError(.invalidArgument, """
                Tried to step \(lastEpoch) times. The specified number of total steps is \(totalSteps)
                """)
        }
        let stepNumber = Double(lastEpoch)
        var rates: [Double] = []
        for group in baseLearningRates.indices {
            var start = 0.0
            for (number, phase) in phases.enumerated() {
                if stepNumber <= phase.end || number == phases.count - 1 {
                    let fraction = (stepNumber - start) / (phase.end - start)
                    rates.append(anneal(self[keyPath: phase.rate.0][group], self[keyPath: phase.rate.1][group], fraction))
                    if cycleMomentum {
                        try groups.setMomentum!(group, anneal(self[keyPath: phase.momentum.0][group],
                                                              self[keyPath: phase.momentum.1][group], fraction))
                    }
                    break
                }
                start = phase.end
            }
        }
        return rates
    }
}

/// The per-group momentum bounds a cyclic scheduler moves between, or none when it does not
/// cycle momentum; throws when it should and the optimizer has no momentum or beta1.
private func cycledMomentums(_ groups: ScheduledGroups, _ cycleMomentum: Bool, base: [Double], max: [Double],
                             count: Int) throws -> (base: [Double], max: [Double]) {
    guard cycleMomentum else { return ([], []) }
    guard groups.setMomentum != nil else {
        throw OptimError(.invalidOption, "optimizer must support momentum or beta1 with `cycle_momentum` option enabled")
    }
    return (try perGroup(base, count: count, "base_momentum"), try perGroup(max, count: count, "max_momentum"))
}
