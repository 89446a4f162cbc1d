/// A scheduler's progress, saved mid-schedule and restored into a new scheduler of the same
/// kind and options, by torch's names (`last_epoch`, `_step_count`, `base_lrs`, `_last_lr`, and
/// each scheduler's own, such as `T_cur` or `best`). Functions given to `LambdaLR`,
/// `MultiplicativeLR` and a custom CyclicLR scale are not saved, as torch does not save them:
/// the new scheduler must be built with the same ones.
public struct SchedulerState: Equatable, Sendable, Codable {
    /// The saved values by torch's key names.
    public var values: [String: StateValue]

    /// A state of these values, for a scheduler's ``LRScheduler/loadStateDict(_:)`` to check.
    public init(values: [String: StateValue]) { self.values = values }

    func number(_ key: String) throws -> Double {
        guard let value = values[key]?.doubleValue else {
            throw OptimError(.invalidArgument, "the scheduler state has no number \(key)")
        }
        return value
    }

    func integer(_ key: String) throws -> Int {
        let value = try number(key)
        guard let integer = Int(exactly: value) else {
            throw OptimError(.invalidArgument, "the scheduler state's \(key) is not an integer: \(value)")
        }
        return integer
    }

    func numbers(_ key: String, count: Int) throws -> [Double] {
        guard case .list(let items)? = values[key], items.count == count else {
            throw OptimError(.invalidArgument, "the scheduler state needs \(key), a list of \(count) numbers")
        }
        return try items.map {
            guard let number = $0.doubleValue else {
                throw OptimError(.invalidArgument, "the scheduler state's \(key) holds a non-number: \($0)")
            }
            return number
        }
    }
}

func stateList(_ values: [Double]) -> StateValue { .list(values.map { .number($0) }) }

/// One value for every group, or one per group, as torch's schedulers take their per-group
/// options; `name` is torch's name of the option, for the error.
func perGroup<Value>(_ values: [Value], count: Int, _ name: String) throws -> [Value] {
    if values.count == 1 { return Array(repeating: values[0], count: count) }
    guard values.count == count else {
        throw OptimError(.invalidOption, "expected \(count) values for \(name), got \(values.count)")
    }
    return values
}

/// A learning-rate schedule over an optimizer's parameter groups, as torch's
/// `torch.optim.lr_scheduler`: call ``step()`` once per epoch, after the optimizer's step.
///
/// Building a scheduler applies its schedule's first value (epoch 0) to the optimizer, as
/// torch does. Schedules are computed from the groups' current rates where torch chains them,
/// so that other changes to the rates (another scheduler) compose as in torch.
public class LRScheduler {
    let groups: ScheduledGroups
    /// The rates the schedule starts from: each group's initial learning rate.
    public internal(set) var baseLearningRates: [Double]
    /// The epoch of the last ``step()`` (0 after construction).
    public internal(set) var lastEpoch = -1
    /// Each group's learning rate after the last step (torch's `get_last_lr()`).
    public internal(set) var lastLearningRates: [Double] = []
    var stepCount = 0
    var isInitial = false
    /// Schedulers this one drives (SequentialLR, ChainedScheduler).
    var children: [LRScheduler] { [] }

    /// A scheduler that drives others (SequentialLR, ChainedScheduler): it takes no first step of
    /// its own.
    init(composing groups: ScheduledGroups) {
        self.groups = groups
        groups.recordInitialRatesIfNeeded()
        baseLearningRates = groups.initialLearningRates
    }

    /// A scheduler of its own, built with its first step (see ``finishConstruction()``), from
    /// `baseLearningRates` when given, else from each group's initial rate.
    init(groups: ScheduledGroups, baseLearningRates bases: [Double]? = nil) throws {
        self.groups = groups
        groups.recordInitialRatesIfNeeded()
        baseLearningRates = bases ?? groups.initialLearningRates
        try finishConstruction()
    }

    /// The first step (torch's `_initial_step`).
    func initialStep() throws {
        stepCount = 0
        isInitial = true
        defer { isInitial = false }
        try step()
    }

    /// The first step, made by every initializer. When the optimizer refuses it, the scheduler
    /// is not built, and the optimizer's options and recorded initial rates go back to what
    /// they were before the initializer began (the rates it recorded would otherwise become
    /// the base of the next scheduler).
    func finishConstruction() throws {
        do {
            try initialStep()
        } catch {
            groups.restore(groups.stateAtCreation)
            throw error
        }
    }

    /// Advances the schedule by one epoch and sets each group's learning rate. Throws, changing
    /// nothing, if the schedule gives a rate (or a momentum) the optimizer refuses.
    public func step() throws {
        lastEpoch += 1
        do {
            try groups.undoingChangesOnError { try apply(learningRates()) }
        } catch {
            lastEpoch -= 1
            throw error
        }
        stepCount += 1
    }

    /// The rates of epoch `lastEpoch` (torch's `get_lr()`).
    func learningRates() throws -> [Double] { fatalError("every scheduler computes its rates") }

    /// The rates of epoch `lastEpoch` from the base rates alone (torch's
    /// `_get_closed_form_lr`), where the schedule has that form.
    func closedFormLearningRates() throws -> [Double]? { nil }

    /// Jumps to `epoch` (SequentialLR's switch to the next schedule, torch's `_update_lr`).
    func jump(to epoch: Int) throws {
        let previous = lastEpoch
        lastEpoch = epoch
        do {
            try groups.undoingChangesOnError { try apply(try closedFormLearningRates() ?? learningRates()) }
        } catch {
            lastEpoch = previous
            throw error
        }
    }

    func currentRates() -> [Double] { groups.learningRates }

    /// Sets the rates, all checked first. The optimizer may still refuse one (Lion refuses a
    /// rate of 0) after others were set: callers undo the change (`undoingChangesOnError`).
    func apply(_ rates: [Double]) throws {
        guard rates.count == groups.count() else {
            throw OptimError(.invalidArgument, "the schedule has \(rates.count) rates for \(groups.count()) groups")
        }
        if let bad = rates.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
            throw OptimError(.invalidOption, "the schedule gives group \(bad) the learning rate \(rates[bad]): it must be finite and >= 0")
        }
        for (group, rate) in rates.enumerated() { try groups.setLearningRate(group, rate) }
        lastLearningRates = groups.learningRates
    }

    /// The scheduler's progress (see ``SchedulerState``).
    public func stateDict() -> SchedulerState {
        var values: [String: StateValue] = [
            "last_epoch": .integer(lastEpoch), "_step_count": .integer(stepCount),
            "base_lrs": stateList(baseLearningRates), "_last_lr": stateList(lastLearningRates),
        ]
        for (key, value) in extraState() { values[key] = value }
        return SchedulerState(values: values)
    }

    /// Restores progress saved by ``stateDict()``: the scheduler must be of the same kind and
    /// options, over an optimizer with as many groups. Restore the optimizer's own state (its
    /// rates) as well. Throws, changing nothing, when the state does not fit.
    public func loadStateDict(_ state: SchedulerState) throws {
        let count = baseLearningRates.count
        let epoch = try state.integer("last_epoch")
        let steps = try state.integer("_step_count")
        let base = try state.numbers("base_lrs", count: count)
        let last = try state.numbers("_last_lr", count: count)
        try loadExtraState(state)
        lastEpoch = epoch
        stepCount = steps
        baseLearningRates = base
        lastLearningRates = last
    }

    /// State beyond the common keys.
    func extraState() -> [String: StateValue] { [:] }
    /// Checks, then restores, the state beyond the common keys.
    func loadExtraState(_ state: SchedulerState) throws {}

    func groupRates(_ transform: (Int, Double) -> Double) -> [Double] {
        currentRates().enumerated().map { transform($0.offset, $0.element) }
    }
}

/// A scheduler driven by one function of the epoch for every group, or one per group.
public class LambdaScheduler: LRScheduler {
    let lambdas: [(Int) -> Double]

    /// One function for every group, or one per group.
    public init<O: Optimizer>(_ optimizer: O, lambdas: [(Int) -> Double]) throws {
        let groups = ScheduledGroups(optimizer)
        self.lambdas = try perGroup(lambdas, count: groups.count(), "lr_lambda")
        try super.init(groups: groups)
    }

    /// One function of the epoch for every group of `optimizer`.
    public convenience init<O: Optimizer>(_ optimizer: O, lambda: @escaping (Int) -> Double) throws {
        try self.init(optimizer, lambdas: [lambda])
    }
}

/// Each group's rate is its base rate times `lambda(epoch)`, as torch's `LambdaLR`.
///
///     lr(e) = base · λ(e)
public final class LambdaLR: LambdaScheduler {
    override func learningRates() throws -> [Double] {
        zip(lambdas, baseLearningRates).map { $1 * $0(lastEpoch) }
    }
}

/// Each group's rate is multiplied by `lambda(epoch)` at every step after the first, as
/// torch's `MultiplicativeLR`.
///
///     lr(e) = lr(e − 1) · λ(e)
public final class MultiplicativeLR: LambdaScheduler {
    override func learningRates() throws -> [Double] {
        if isInitial { return currentRates() }
        return groupRates { group, lr in lr * lambdas[group](lastEpoch) }
    }
}

/// Decays each group's rate by `gamma` every `stepSize` epochs, as torch's `StepLR`.
///
///     lr(e) = base · γ^⌊e / stepSize⌋
public final class StepLR: LRScheduler {
    /// Epochs between two decays (torch: `step_size`).
    public let stepSize: Int
    /// The factor of each decay (default 0.1).
    public let gamma: Double

    /// Decays `optimizer`'s rates by `gamma` every `stepSize` epochs; throws unless `stepSize` > 0
    /// and `gamma` is finite.
    public init<O: Optimizer>(_ optimizer: O, stepSize: Int, gamma: Double = 0.1) throws {
        guard stepSize > 0 else { throw OptimError(.invalidOption, "step_size must be a positive integer, got \(stepSize)") }
        try OptionCheck.finite(gamma, "gamma")
        self.stepSize = stepSize
        self.gamma = gamma
        try super.init(groups: ScheduledGroups(optimizer))
    }

    override func learningRates() throws -> [Double] {
        if lastEpoch == 0 || lastEpoch % stepSize != 0 { return currentRates() }
        return groupRates { $1 * gamma }
    }

    override func closedFormLearningRates() throws -> [Double]? {
        baseLearningRates.map { $0 * Math.pow(gamma, Double(lastEpoch / stepSize)) }
    }
}

/// Decays each group's rate by `gamma` at each milestone epoch, as torch's `MultiStepLR`
/// (a milestone listed twice decays twice).
///
///     lr(e) = base · γ^(milestones ≤ e)
public final class MultiStepLR: LRScheduler {
    /// The epochs at which the rates decay, in increasing order.
    public let milestones: [Int]
    /// The factor of each decay (default 0.1).
    public let gamma: Double

    /// Decays `optimizer`'s rates by `gamma` at each of `milestones`.
    public init<O: Optimizer>(_ optimizer: O, milestones: [Int], gamma: Double = 0.1) throws {
        try OptionCheck.finite(gamma, "gamma")
        self.milestones = milestones.sorted()
        self.gamma = gamma
        try super.init(groups: ScheduledGroups(optimizer))
    }

    override func learningRates() throws -> [Double] {
        let hits = milestones.filter { $0 == lastEpoch }.count
        if hits == 0 { return currentRates() }
        return groupRates { $1 * Math.pow(gamma, Double(hits)) }
    }

    override func closedFormLearningRates() throws -> [Double]? {
        let passed = milestones.filter { $0 <= lastEpoch }.count
        return baseLearningRates.map { $0 * Math.pow(gamma, Double(passed)) }
    }
}

/// Multiplies each group's rate by `factor` until epoch `totalIters`, as torch's `ConstantLR`.
///
///     lr(e) = base · (e < totalIters ? factor : 1)
public final class ConstantLR: LRScheduler {
    /// The factor applied before `totalIters` (default 1/3).
    public let factor: Double
    /// The epoch from which the rate is the base rate again (torch: `total_iters`, default 5).
    public let totalIters: Int

    /// Multiplies `optimizer`'s rates by `factor` (in [0, 1]) until epoch `totalIters`.
    public init<O: Optimizer>(_ optimizer: O, factor: Double = 1.0 / 3, totalIters: Int = 5) throws {
        guard factor >= 0, factor <= 1 else {
            throw OptimError(.invalidOption, "Constant multiplicative factor expected to be between 0 and 1, got \(factor)")
        }
        self.factor = factor
        self.totalIters = totalIters
        try super.init(groups: ScheduledGroups(optimizer))
    }

    override func learningRates() throws -> [Double] {
        if lastEpoch == 0 { return groupRates { $1 * factor } }
        if lastEpoch != totalIters { return currentRates() }
        return groupRates { $1 * (1.0 / factor) }
    }

    override func closedFormLearningRates() throws -> [Double]? {
        baseLearningRates.map { $0 * (factor + (lastEpoch >= totalIters ? 1 : 0) * (1 - factor)) }
    }
}

/// Moves each group's rate linearly from `startFactor` to `endFactor` times its base over
/// `totalIters` epochs, as torch's `LinearLR`.
///
///     lr(e) = base · (start + (end − start) · min(e, totalIters) / totalIters)
public final class LinearLR: LRScheduler {
    /// The factor at epoch 0, in (0, 1] (torch: `start_factor`, default 1/3).
    public let startFactor: Double
    /// The factor from epoch `totalIters` on, in [0, 1] (torch: `end_factor`, default 1).
    public let endFactor: Double
    /// The epochs over which the factor moves (torch: `total_iters`, default 5).
    public let totalIters: Int

    /// Moves `optimizer`'s rates from `startFactor` to `endFactor` times their base over
    /// `totalIters` epochs.
    public init<O: Optimizer>(_ optimizer: O, startFactor: Double = 1.0 / 3, endFactor: Double = 1,
                              totalIters: Int = 5) throws {
        guard startFactor > 0, startFactor <= 1 else {
            throw OptimError(.invalidOption, "Starting multiplicative factor expected to be greater than 0 and less or equal to 1, got \(startFactor)")
        }
        guard endFactor >= 0, endFactor <= 1 else {
            throw OptimError(.invalidOption, "Ending multiplicative factor expected to be between 0 and 1, got \(endFactor)")
        }
        guard totalIters > 0 else { throw OptimError(.invalidOption, "total_iters must be positive, got \(totalIters)") }
        self.startFactor = startFactor
        self.endFactor = endFactor
        self.totalIters = totalIters
        try super.init(groups: ScheduledGroups(optimizer))
    }

    override func learningRates() throws -> [Double] {
        if lastEpoch == 0 { return groupRates { $1 * startFactor } }
        if isInitial || lastEpoch > totalIters { return currentRates() }
        let change = endFactor - startFactor
        let factor = 1.0 + change / (Double(totalIters) * startFactor + Double(lastEpoch - 1) * change)
        return groupRates { $1 * factor }
    }

    override func closedFormLearningRates() throws -> [Double]? {
        baseLearningRates.map {
            $0 * (startFactor + (endFactor - startFactor) * Double(min(totalIters, lastEpoch)) / Double(totalIters))
        }
    }
}

/// Decays each group's rate by `gamma` every epoch, as torch's `ExponentialLR`.
///
///     lr(e) = base · γ^e
public final class ExponentialLR: LRScheduler {
    /// The factor of each epoch.
    public let gamma: Double

    /// Decays `optimizer`'s rates by `gamma` (finite) every epoch.
    public init<O: Optimizer>(_ optimizer: O, gamma: Double) throws {
        try OptionCheck.finite(gamma, "gamma")
        self.gamma = gamma
        try super.init(groups: ScheduledGroups(optimizer))
    }

    override func learningRates() throws -> [Double] {
        if isInitial { return currentRates() }
        return groupRates { $1 * gamma }
    }

    override func closedFormLearningRates() throws -> [Double]? {
        baseLearningRates.map { $0 * Math.pow(gamma, Double(lastEpoch)) }
    }
}

/// Decays each group's rate polynomially to zero over `totalIters` epochs, as torch's
/// `PolynomialLR`.
///
///     lr(e) = base · (1 − min(e, totalIters) / totalIters)^power
public final class PolynomialLR: LRScheduler {
    /// The epoch at which the rate reaches zero (torch: `total_iters`, default 5).
    public let totalIters: Int
    /// The polynomial's power (default 1: linear).
    public let power: Double

    /// Decays `optimizer`'s rates as (1 − e / totalIters)^power to zero at `totalIters`.
    public init<O: Optimizer>(_ optimizer: O, totalIters: Int = 5, power: Double = 1) throws {
        guard totalIters > 0 else { throw OptimError(.invalidOption, "total_iters must be positive, got \(totalIters)") }
        try OptionCheck.finite(power, "power")
        self.totalIters = totalIters
        self.power = power
        try super.init(groups: ScheduledGroups(optimizer))
    }

    override func learningRates() throws -> [Double] {
        if isInitial || lastEpoch > totalIters { return currentRates() }
        let total = Double(totalIters), e = Double(lastEpoch)
        let decay = Math.pow((1.0 - e / total) / (1.0 - (e - 1) / total), power)
        return groupRates { $1 * decay }
    }

    override func closedFormLearningRates() throws -> [Double]? {
        baseLearningRates.map { $0 * Math.pow(1.0 - Double(min(totalIters, lastEpoch)) / Double(totalIters), power) }
    }
}

/// Anneals each group's rate along a cosine from its base to `etaMin` over `tMax` epochs (and
/// back, periodically), as torch's `CosineAnnealingLR` (SGDR without restarts).
///
///     lr(e) = ηmin + (base − ηmin) · (1 + cos(π e / Tmax)) / 2
public final class CosineAnnealingLR: LRScheduler {
    /// Epochs of half a cosine period (torch: `T_max`).
    public let tMax: Int
    /// The lowest rate (torch: `eta_min`, default 0).
    public let etaMin: Double

    /// Anneals `optimizer`'s rates from their base to `etaMin` over `tMax` epochs.
    public init<O: Optimizer>(_ optimizer: O, tMax: Int, etaMin: Double = 0) throws {
        guard tMax > 0 else { throw OptimError(.invalidOption, "T_max must be a positive integer, got \(tMax)") }
        try OptionCheck.finite(etaMin, "eta_min")
        self.tMax = tMax
        self.etaMin = etaMin
        try super.init(groups: ScheduledGroups(optimizer))
    }

    override func learningRates() throws -> [Double] {
        if isInitial { return currentRates() }
        let t = Double(tMax), e = Double(lastEpoch)
        if (lastEpoch - 1 - tMax) % (2 * tMax) == 0 {
            return groupRates { group, lr in lr + (baseLearningRates[group] - etaMin) * (1 - Math.cos(Double.pi / t)) / 2 }
        }
        return groupRates { _, lr in
            (1 + Math.cos(Double.pi * e / t)) / (1 + Math.cos(Double.pi * (e - 1) / t)) * (lr - etaMin) + etaMin
        }
    }

    override func closedFormLearningRates() throws -> [Double]? {
        baseLearningRates.map { etaMin + ($0 - etaMin) * (1 + Math.cos(Double.pi * Double(lastEpoch) / Double(tMax))) / 2 }
    }
}

/// Cosine annealing with warm restarts (Loshchilov & Hutter, SGDR), as torch's
/// `CosineAnnealingWarmRestarts`: the first period lasts `t0` epochs, each next one `tMult`
/// times longer.
///
///     lr = ηmin + (base − ηmin) · (1 + cos(π Tcur / Ti)) / 2
public final class CosineAnnealingWarmRestarts: LRScheduler {
    /// Epochs of the first period (torch: `T_0`), at least 1.
    public let t0: Int
    /// How many times longer each period is than the one before (torch: `T_mult`, default 1).
    public let tMult: Int
    /// The lowest rate (torch: `eta_min`, default 0).
    public let etaMin: Double
    /// Epochs since the last restart, and the current period.
    public private(set) var tCur: Double
    /// The length of the current period in epochs (torch: `T_i`).
    public private(set) var tI: Int

    /// Cosine annealing of `optimizer`'s rates over periods of `t0`, `t0 · tMult`, … epochs,
    /// restarting at the base rate after each.
    public init<O: Optimizer>(_ optimizer: O, t0: Int, tMult: Int = 1, etaMin: Double = 0) throws {
        guard t0 > 0 else { throw OptimError(.invalidOption, "Expected positive integer T_0, but got \(t0)") }
        guard tMult >= 1 else { throw OptimError(.invalidOption, "Expected integer T_mult >= 1, but got \(tMult)") }
        try OptionCheck.finite(etaMin, "eta_min")
        self.t0 = t0
        self.tMult = tMult
        self.etaMin = etaMin
        tCur = -1
        tI = t0
        try super.init(groups: ScheduledGroups(optimizer))
    }

    /// Advances one epoch, restarting at the base rate when the period ends.
    public override func step() throws {
        let saved = (tCur, tI, lastEpoch)
        if lastEpoch < 0 {
            lastEpoch = 0
            tCur = 0
        } else {
            lastEpoch += 1
            tCur += 1
            if tCur >= Double(tI) {
                tCur = tCur.truncatingRemainder(dividingBy: Double(tI))
                tI *= tMult
            }
        }
        do {
            try groups.undoingChangesOnError { try apply(try learningRates()) }
        } catch {
            (tCur, tI, lastEpoch) = saved
            throw error
        }
        stepCount += 1
    }

    override func learningRates() throws -> [Double] {
        baseLearningRates.map { etaMin + ($0 - etaMin) * (1 + Math.cos(Double.pi * tCur / Double(tI))) / 2 }
    }

    override func extraState() -> [String: StateValue] { ["T_cur": .number(tCur), "T_i": .integer(tI)] }

    override func loadExtraState(_ state: SchedulerState) throws {
        let current = try state.number("T_cur")
        let period = try state.integer("T_i")
        tCur = current
        tI = period
    }
}
