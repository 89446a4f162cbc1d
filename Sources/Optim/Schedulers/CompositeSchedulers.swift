/// Runs schedulers one after another, as torch's `SequentialLR`: `schedulers[i]` drives the
/// epochs from `milestones[i - 1]` on, and each one after the first starts from its epoch 0
/// (its closed form where it has one) at its milestone.
public final class SequentialLR: LRScheduler {
    /// The schedulers, in the order they take over.
    public let schedulers: [LRScheduler]
    /// The epochs at which the next scheduler takes over: one fewer than `schedulers`.
    public let milestones: [Int]

    /// Runs `schedulers`, all of `optimizer`, one after another, switching at `milestones`
    /// (increasing, one fewer than the schedulers).
    public init<O: Optimizer>(_ optimizer: O, schedulers: [LRScheduler], milestones: [Int]) throws {
        guard !schedulers.isEmpty else {
            throw OptimError(.invalidOption, "SequentialLR expects at least one scheduler")
        }
        guard schedulers.allSatisfy({ $0.groups.optimizer === optimizer }) else {
            throw OptimError(.invalidOption, "SequentialLR expects all schedulers to belong to the same optimizer")
        }
        guard milestones.count == schedulers.count - 1 else {
            throw OptimError(.invalidOption, """
                Sequential Schedulers expects number of schedulers provided to be one more than the number of \
                milestone points, but got number of schedulers \(schedulers.count) and the number of milestones \
                \(milestones.count)
                """)
        }
        self.schedulers = schedulers
        self.milestones = milestones
        super.init(composing: ScheduledGroups(optimizer))
        lastEpoch = 0
        let first = schedulers[milestones.prefix { $0 <= 0 }.count]
        // The schedulers given are changed here: a refusal puts back their progress, and the
        // optimizer's options as they were before this initializer.
        do {
            try restoringProgressOnError(of: schedulers) {
                try apply(baseLearningRates)
                Self.undoLastStep(of: self)
                try first.initialStep()
            }
        } catch {
            groups.restore(groups.stateAtCreation)
            throw error
        }
        lastLearningRates = first.lastLearningRates
    }

    override var children: [LRScheduler] { schedulers }

    private static func undoLastStep(of scheduler: LRScheduler) {
        if scheduler.children.isEmpty {
            scheduler.lastEpoch -= 1
        } else {
            for child in scheduler.children { undoLastStep(of: child) }
        }
    }

    /// Advances one epoch: steps the scheduler whose turn it is, or starts the next one at its
    /// milestone.
    public override func step() throws {
        lastEpoch += 1
        let index = milestones.prefix { $0 <= lastEpoch }.count
        let scheduler = schedulers[index]
        do {
            if index > 0 && milestones[index - 1] == lastEpoch {
                try scheduler.jump(to: 0)
            } else {
                try scheduler.step()
            }
        } catch {
            lastEpoch -= 1
            throw error
        }
        lastLearningRates = scheduler.lastLearningRates
        stepCount += 1
    }

    override func extraState() -> [String: StateValue] {
        ["_schedulers": .list(schedulers.map { .dictionary($0.stateDict().values) })]
    }

    override func loadExtraState(_ state: SchedulerState) throws {
        try loadChildren(state, into: schedulers)
    }
}

/// Steps several schedulers together at every epoch, so that their factors multiply, as torch's
/// `ChainedScheduler`.
public final class ChainedScheduler: LRScheduler {
    /// The schedulers stepped together, in order.
    public let schedulers: [LRScheduler]

    /// Chains `schedulers`, at least one, all of the same optimizer.
    public init(_ schedulers: [LRScheduler]) throws {
        guard let first = schedulers.first else {
            throw OptimError(.invalidOption, "ChainedScheduler expects at least one scheduler to be chained")
        }
        guard schedulers.allSatisfy({ $0.groups.optimizer === first.groups.optimizer }) else {
            throw OptimError(.invalidOption, "ChainedScheduler expects all schedulers to belong to the same optimizer")
        }
        self.schedulers = schedulers
        super.init(composing: first.groups)
        lastLearningRates = groups.learningRates
    }

    override var children: [LRScheduler] { schedulers }

    /// Steps every scheduler in order; if one throws, every one is restored to where it was.
    public override func step() throws {
        // A scheduler refused after others stepped would leave the chain half-stepped.
        try restoringProgressOnError(of: schedulers) {
            try groups.undoingChangesOnError { for scheduler in schedulers { try scheduler.step() } }
        }
        lastEpoch += 1
        stepCount += 1
        lastLearningRates = groups.learningRates
    }

    override func extraState() -> [String: StateValue] {
        ["_schedulers": .list(schedulers.map { .dictionary($0.stateDict().values) })]
    }

    override func loadExtraState(_ state: SchedulerState) throws {
        try loadChildren(state, into: schedulers)
    }
}

/// Reads the states of `schedulers` saved under `_schedulers`, checking them all before any
/// is restored.
private func loadChildren(_ state: SchedulerState, into schedulers: [LRScheduler]) throws {
    guard case .list(let saved)? = state.values["_schedulers"], saved.count == schedulers.count else {
        throw OptimError(.invalidArgument, "the scheduler state needs the states of its \(schedulers.count) schedulers")
    }
    let states = try saved.map { item -> SchedulerState in
        guard case .dictionary(let values) = item else {
            throw OptimError(.invalidArgument, "a saved sub-scheduler state is not a dictionary")
        }
        return SchedulerState(values: values)
    }
    try restoringProgressOnError(of: schedulers) {
        for (scheduler, saved) in zip(schedulers, states) { try scheduler.loadStateDict(saved) }
    }
}

/// Runs `body`, which changes the progress of `schedulers`; when it throws, puts back the
/// progress each had, so that a refusal part-way through the list changes none of them.
private func restoringProgressOnError(of schedulers: [LRScheduler], _ body: () throws -> Void) throws {
    let progress = schedulers.map { $0.stateDict() }
    do {
        try body()
    } catch {
        // States saved by the schedulers themselves: loading them back succeeds.
        for (scheduler, saved) in zip(schedulers, progress) { try? scheduler.loadStateDict(saved) }
        throw error
    }
}

/// Lowers each group's rate by `factor` when a metric stops improving for `patience` epochs,
/// as torch's `ReduceLROnPlateau`.
///
/// A metric improves on the best so far when, for mode min, it is below best · (1 − threshold)
/// (`rel`) or best − threshold (`abs`) (for max: above best · (1 + threshold) or best +
/// threshold). After more than `patience` epochs without improvement each rate becomes
/// max(lr · factor, minLR) (unless that changes it by no more than `eps`), then `cooldown`
/// epochs pass before bad epochs count again.
public final class ReduceLROnPlateau {
    /// Whether the metric should fall or rise.
    public enum Mode: String, Sendable {
        /// Lower is better (a loss).
        case min
        /// Higher is better (an accuracy).
        case max
    }
    /// How `threshold` measures an improvement.
    public enum ThresholdMode: String, Sendable {
        /// Relative to the best: below best · (1 − threshold) in mode min, above
        /// best · (1 + threshold) in mode max.
        case rel
        /// Absolute: below best − threshold in mode min, above best + threshold in mode max.
        case abs
    }

    let groups: ScheduledGroups
    /// Whether lower or higher metrics are better.
    public let mode: Mode
    /// The factor a plateau multiplies the rates by, below 1 (default 0.1).
    public let factor: Double
    /// Epochs without improvement tolerated before the rates drop (default 10).
    public let patience: Int
    /// How much better than the best a metric must be to count as an improvement (default 1e-4).
    public let threshold: Double
    /// Whether `threshold` is relative or absolute (torch: `threshold_mode`, default `rel`).
    public let thresholdMode: ThresholdMode
    /// Epochs after a drop during which bad epochs are not counted (default 0).
    public let cooldown: Int
    /// Each group's lowest rate (torch: `min_lr`, default 0).
    public let minLearningRates: [Double]
    /// A drop smaller than this is not applied (default 1e-8).
    public let eps: Double

    /// The best metric so far (infinity in mode min, −infinity in mode max, before the first).
    public private(set) var best: Double
    /// Epochs since the last improvement (torch: `num_bad_epochs`).
    public private(set) var badEpochs = 0
    /// Cooldown epochs left (torch: `cooldown_counter`).
    public private(set) var cooldownCounter = 0
    /// The number of ``step(metric:)`` calls so far.
    public private(set) var lastEpoch = 0
    /// Each group's learning rate after the last step (torch's `get_last_lr()`).
    public private(set) var lastLearningRates: [Double]

    /// `minLR` takes one value for every group or one per group.
    public init<O: Optimizer>(_ optimizer: O, mode: Mode = .min, factor: Double = 0.1, patience: Int = 10,
                              threshold: Double = 1e-4, thresholdMode: ThresholdMode = .rel, cooldown: Int = 0,
                              minLR: [Double] = [0], eps: Double = 1e-8) throws {
        groups = ScheduledGroups(optimizer)
        guard factor < 1 else { throw OptimError(.invalidOption, "Factor should be < 1.0.") }
        try OptionCheck.finite(factor, "factor")
        try OptionCheck.finite(threshold, "threshold")
        try OptionCheck.nonNegative(eps, "eps")
        guard patience >= 0, cooldown >= 0 else {
            throw OptimError(.invalidOption, "patience and cooldown must be >= 0")
        }
        let count = groups.count()
        minLearningRates = try perGroup(minLR, count: count, "min_lr")
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.thresholdMode = thresholdMode
        self.cooldown = cooldown
        self.eps = eps
        best = mode == .min ? .infinity : -.infinity
        lastLearningRates = groups.learningRates
    }

    private func isBetter(_ value: Double) -> Bool {
        switch (mode, thresholdMode) {
        case (.min, .rel): value < best * (1 - threshold)
        case (.min, .abs): value < best - threshold
        case (.max, .rel): value > best * (threshold + 1)
        case (.max, .abs): value > best + threshold
        }
    }

    /// Records the epoch's metric and lowers the rates on a plateau.
    public func step(metric: Double) throws {
        let rates = groups.learningRates
        var newRates = rates
        var (newBest, bad, cool) = (best, badEpochs, cooldownCounter)
        if isBetter(metric) {
            newBest = metric
            bad = 0
        } else {
            bad += 1
        }
        if cool > 0 {
            cool -= 1
            bad = 0
        }
        if bad > patience {
            for group in rates.indices {
                let lowered = Swift.max(rates[group] * factor, minLearningRates[group])
                if rates[group] - lowered > eps { newRates[group] = lowered }
            }
            cool = cooldown
            bad = 0
        }
        // The optimizer may refuse a lowered rate (below a negative floor) after others were set.
        try groups.undoingChangesOnError {
            for group in rates.indices where newRates[group] != rates[group] {
                try groups.setLearningRate(group, newRates[group])
            }
        }
        (best, badEpochs, cooldownCounter) = (newBest, bad, cool)
        lastEpoch += 1
        lastLearningRates = groups.learningRates
    }

    /// The scheduler's progress: `best`, `num_bad_epochs`, `cooldown_counter`, `last_epoch` and
    /// `_last_lr`.
    public func stateDict() -> SchedulerState {
        SchedulerState(values: [
            "best": .number(best), "num_bad_epochs": .integer(badEpochs), "cooldown_counter": .integer(cooldownCounter),
            "last_epoch": .integer(lastEpoch), "_last_lr": stateList(lastLearningRates),
        ])
    }

    /// Restores progress saved by ``stateDict()``; throws, changing nothing, when a value is
    /// missing or of the wrong type.
    public func loadStateDict(_ state: SchedulerState) throws {
        let saved = (try state.number("best"), try state.integer("num_bad_epochs"), try state.integer("cooldown_counter"),
                     try state.integer("last_epoch"), try state.numbers("_last_lr", count: lastLearningRates.count))
        (best, badEpochs, cooldownCounter, lastEpoch, lastLearningRates) = saved
    }
}
