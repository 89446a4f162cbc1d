import Synchronization

/// Options with a momentum that schedulers can cycle: `momentum` for SGD and RMSprop, the
/// first beta (β₁) for the Adam family, as torch's `CyclicLR` and `OneCycleLR` choose.
public protocol CyclableMomentumOptions: OptimizerOptions {
    /// The momentum a scheduler reads and sets.
    var cyclableMomentum: Double { get set }
    /// Whether that momentum is β₁ (torch's `use_beta1`).
    static var momentumIsBeta1: Bool { get }
}

extension SGD.Options: CyclableMomentumOptions {
    public var cyclableMomentum: Double {
        get { momentum }
        set { momentum = newValue }
    }
    public static var momentumIsBeta1: Bool { false }
}

extension RMSprop.Options: CyclableMomentumOptions {
    public var cyclableMomentum: Double {
        get { momentum }
        set { momentum = newValue }
    }
    public static var momentumIsBeta1: Bool { false }
}

extension Adam.Options: CyclableMomentumOptions {
    public var cyclableMomentum: Double {
        get { betas.0 }
        set { betas.0 = newValue }
    }
    public static var momentumIsBeta1: Bool { true }
}

extension Adamax.Options: CyclableMomentumOptions {
    public var cyclableMomentum: Double {
        get { betas.0 }
        set { betas.0 = newValue }
    }
    public static var momentumIsBeta1: Bool { true }
}

extension NAdam.Options: CyclableMomentumOptions {
    public var cyclableMomentum: Double {
        get { betas.0 }
        set { betas.0 = newValue }
    }
    public static var momentumIsBeta1: Bool { true }
}

extension RAdam.Options: CyclableMomentumOptions {
    public var cyclableMomentum: Double {
        get { betas.0 }
        set { betas.0 = newValue }
    }
    public static var momentumIsBeta1: Bool { true }
}

extension SparseAdam.Options: CyclableMomentumOptions {
    public var cyclableMomentum: Double {
        get { betas.0 }
        set { betas.0 = newValue }
    }
    public static var momentumIsBeta1: Bool { true }
}

extension Muon.Options: CyclableMomentumOptions {
    public var cyclableMomentum: Double {
        get { momentum }
        set { momentum = newValue }
    }
    public static var momentumIsBeta1: Bool { false }
}

/// An optimizer's groups as a scheduler sees them: learning rates and, where the options have
/// one, the momentum. Every scheduler of one optimizer shares its groups' initial learning
/// rates (torch's `initial_lr`), so that chained and sequential schedules start from the
/// optimizer's own rates.
final class ScheduledGroups: @unchecked Sendable {
    let optimizer: AnyObject
    let count: () -> Int
    let learningRate: (Int) -> Double
    let setLearningRate: (Int, Double) throws -> Void
    let momentum: ((Int) -> Double)?
    let setMomentum: ((Int, Double) throws -> Void)?
    let momentumIsBeta1: Bool

    init<O: Optimizer>(_ optimizer: O) {
        self.optimizer = optimizer
        count = { optimizer.paramGroups.count }
        learningRate = { optimizer.paramGroups[$0].options.lr }
        setLearningRate = { group, lr in
            var options = optimizer.paramGroups[group].options
            options.lr = lr
            try optimizer.setOptions(options, group: group)
        }
        if let type = O.Options.self as? any CyclableMomentumOptions.Type {
            momentumIsBeta1 = type.momentumIsBeta1
            momentum = { group in (optimizer.paramGroups[group].options as! any CyclableMomentumOptions).cyclableMomentum }
            setMomentum = { group, value in
                var options = optimizer.paramGroups[group].options as! any CyclableMomentumOptions
                options.cyclableMomentum = value
                try optimizer.setOptions(options as! O.Options, group: group)
            }
        } else {
            momentumIsBeta1 = false
            momentum = nil
            setMomentum = nil
        }
    }

    var learningRates: [Double] { (0..<count()).map(learningRate) }

    /// The groups' initial learning rates: recorded by the first scheduler built on this
    /// optimizer, kept while the optimizer lives.
    var initialLearningRates: [Double] {
        get { InitialRates.shared.rates(of: optimizer) ?? learningRates }
        set { InitialRates.shared.record(newValue, for: optimizer) }
    }

    /// Records the current rates as initial unless some scheduler already did (torch's
    /// `group.setdefault("initial_lr", lr)`).
    func recordInitialRatesIfNeeded() {
        let current = learningRates
        InitialRates.shared.recordIfAbsent(current, for: optimizer)
    }
}

/// torch keeps `initial_lr` in each parameter group; here it lives beside the optimizer,
/// keyed by a weak reference, so that a new optimizer at a released one's address starts
/// afresh.
private final class InitialRates: @unchecked Sendable {
    static let shared = InitialRates()

    private struct Entry {
        weak var optimizer: AnyObject?
        var rates: [Double]
    }
    // Guarded by `lock`.
    private var table: [ObjectIdentifier: Entry] = [:]
    private let lock = Mutex<Void>(())

    func rates(of optimizer: AnyObject) -> [Double]? {
        lock.withLock { _ in
            guard let entry = table[ObjectIdentifier(optimizer)], entry.optimizer === optimizer else { return nil }
            return entry.rates
        }
    }

    func record(_ rates: [Double], for optimizer: AnyObject) {
        lock.withLock { _ in
            table = table.filter { $0.value.optimizer != nil }
            table[ObjectIdentifier(optimizer)] = Entry(optimizer: optimizer, rates: rates)
        }
    }

    func recordIfAbsent(_ rates: [Double], for optimizer: AnyObject) {
        lock.withLock { _ in
            if let entry = table[ObjectIdentifier(optimizer)], entry.optimizer === optimizer,
               entry.rates.count == rates.count { return }
            table = table.filter { $0.value.optimizer != nil }
            table[ObjectIdentifier(optimizer)] = Entry(optimizer: optimizer, rates: rates)
        }
    }
}
