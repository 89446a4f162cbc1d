/// Anneals each group's rate to a constant `swaLR` over `annealEpochs` epochs and holds it
/// there, as torch's `torch.optim.swa_utils.SWALR`, the schedule of stochastic weight
/// averaging (``AveragedParameters``).
///
/// At step `s` (counted from 0 at construction; from 1 when `annealEpochs` is 0), with
/// `f(t) = (1 − cos πt) / 2` (cos) or `t` (linear) and `E = max(1, annealEpochs)`:
///
///     α′ = f(clamp((s − 1) / E, 0, 1)),  α = f(clamp(s / E, 0, 1))
///     lr′ = α′ = 1 ? swaLR : (lr − α′ · swaLR) / (1 − α′)      (the rate before annealing)
///     lr ← swaLR · α + lr′ · (1 − α)
///
/// Like torch, it recovers the unannealed rate from the current one, so it composes with other
/// changes to the rate, and it keeps torch's rounding (0.15499999999999997, not 0.155).
public final class SWALR: LRScheduler {

    /// How the rate moves from its value to `swaLR`.
    public enum Annealing: String, Sendable {
        /// Along half a cosine: f(t) = (1 − cos πt) / 2.
        case cos
        /// Linearly: f(t) = t.
        case linear

        func callAsFunction(_ t: Double) -> Double {
            switch self {
            case .cos: (1 - Math.cos(Double.pi * t)) / 2
            case .linear: t
            }
        }
    }

    /// Each group's rate after annealing (torch: `swa_lr`).
    public let swaLearningRates: [Double]
    /// Epochs of the annealing (torch: `anneal_epochs`, default 10).
    public let annealEpochs: Int
    /// How the rate moves (torch: `anneal_strategy`, default `cos`).
    public let annealing: Annealing

    /// `swaLR` holds one rate for every group, or one per group.
    public init<O: Optimizer>(_ optimizer: O, swaLR: [Double], annealEpochs: Int = 10,
                              annealing: Annealing = .cos) throws {
        guard annealEpochs >= 0 else {
            throw OptimError(.invalidOption, "anneal_epochs must be equal or greater than 0, got \(annealEpochs)")
        }
        let groups = ScheduledGroups(optimizer)
        swaLearningRates = try perGroup(swaLR, count: groups.count(), "swa_lr")
        try swaLearningRates.forEach { try OptionCheck.finite($0, "swa_lr") }
        self.annealEpochs = annealEpochs
        self.annealing = annealing
        try super.init(groups: groups)
    }

    /// Anneals every group of `optimizer` to `swaLR`.
    public convenience init<O: Optimizer>(_ optimizer: O, swaLR: Double, annealEpochs: Int = 10,
                                          annealing: Annealing = .cos) throws {
        try self.init(optimizer, swaLR: [swaLR], annealEpochs: annealEpochs, annealing: annealing)
    }

    override func learningRates() throws -> [Double] {
        // torch counts this step already (its `_step_count - 1` is the steps before it).
        let step = annealEpochs == 0 ? max(1, stepCount) : stepCount
        let span = Double(max(1, annealEpochs))
        let previousAlpha = annealing(min(max(Double(step - 1) / span, 0), 1))
        let alpha = annealing(min(max(Double(step) / span, 0), 1))
        return groupRates { group, lr in
            let swa = swaLearningRates[group]
            let previous = previousAlpha == 1 ? swa : (lr - previousAlpha * swa) / (1 - previousAlpha)
            return swa * alpha + previous * (1 - alpha)
        }
    }
}
