import Synchronization

/// The momentum a scheduler cycles, read from the options' torch names as torch's `CyclicLR`
/// and `OneCycleLR` find it: `momentum` where the options have one (SGD, RMSprop, Muon), else
/// the first of `betas` (torch's `use_beta1`: the Adam family, Lion, LAMB, ...).
struct CyclableMomentum {
    let isBeta1: Bool

    init?(_ values: [String: StateValue]) {
        if values["momentum"]?.doubleValue != nil {
            isBeta1 = false
        } else if case .list(let betas)? = values["betas"], betas.first?.doubleValue != nil {
            isBeta1 = true
        } else {
            return nil
        }
    }

    func value(in values: [String: StateValue]) -> Double {
        guard isBeta1 else { return values["momentum"]?.doubleValue ?? 0 }
        guard case .list(let betas)? = values["betas"] else { return 0 }
        return betas.first?.doubleValue ?? 0
    }

    func setting(_ momentum: Double, in values: [String: StateValue]) -> [String: StateValue] {
        var values = values
        if isBeta1, case .list(var betas)? = values["betas"], !betas.isEmpty {
            betas[0] = .number(momentum)
            values["betas"] = .list(betas)
        } else {
            values["momentum"] = .number(momentum)
        }
        return values
    }
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
    /// Captures every group's options; the closure it returns puts them back.
    private let captureOptions: () -> () -> Void
    /// The optimizer as it was when the scheduler being built made these groups: what a
    /// refused construction puts back.
    let stateAtCreation: Snapshot

    init<O: Optimizer>(_ optimizer: O) {
        self.optimizer = optimizer
        let captureOptions: () -> () -> Void = {
            let saved = optimizer.paramGroups.map(\.options)
            return {
                // Options the optimizer held are options it accepts: setting them again succeeds.
                for (group, options) in saved.enumerated() { try? optimizer.setOptions(options, group: group) }
            }
        }
        self.captureOptions = captureOptions
        stateAtCreation = Snapshot(restoreOptions: captureOptions(), initialRates: InitialRates.shared.rates(of: optimizer))
        count = { optimizer.paramGroups.count }
        learningRate = { optimizer.paramGroups[$0].options.lr }
        setLearningRate = { group, lr in
            var options = optimizer.paramGroups[group].options
            options.lr = lr
            try optimizer.setOptions(options, group: group)
        }
        if let named = optimizer.paramGroups.first?.options as? any TorchNamedOptions,
           let cyclable = CyclableMomentum(named.torchValues) {
            momentumIsBeta1 = cyclable.isBeta1
            func values(_ group: Int) -> [String: StateValue] {
                (optimizer.paramGroups[group].options as? any TorchNamedOptions)?.torchValues ?? [:]
            }
            momentum = { group in cyclable.value(in: values(group)) }
            setMomentum = { group, value in
                guard let options = optimizer.paramGroups[group].options as? any TorchNamedOptions,
                      let changed = try options.applying(torchValues: cyclable.setting(value, in: values(group)))
                        as? O.Options else { return }
                try optimizer.setOptions(changed, group: group)
            }
        } else {
            momentumIsBeta1 = false
            momentum = nil
            setMomentum = nil
        }
    }

    /// Every group's options and the recorded initial rates, at one moment.
    struct Snapshot {
        fileprivate let restoreOptions: () -> Void
        fileprivate let initialRates: [Double]?
    }

    func snapshot() -> Snapshot {
        Snapshot(restoreOptions: captureOptions(), initialRates: InitialRates.shared.rates(of: optimizer))
    }

    /// Puts back the options and the recorded initial rates of `snapshot`.
    func restore(_ snapshot: Snapshot) {
        snapshot.restoreOptions()
        InitialRates.shared.replace(with: snapshot.initialRates, for: optimizer)
    }

    /// Runs `body`, which changes the groups' options; when it throws, puts back every group's
    /// options and the recorded initial rates as they were before it. The optimizer checks each
    /// group's options as they are set, so a schedule (or a cyclic momentum) can be refused for
    /// one group after others were set: without this, a refused call would change those.
    func undoingChangesOnError<Result>(_ body: () throws -> Result) throws -> Result {
        let before = snapshot()
        do {
            return try body()
        } catch {
            restore(before)
            throw error
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

    /// Records `rates`, or forgets the optimizer's when nil.
    func replace(with rates: [Double]?, for optimizer: AnyObject) {
        lock.withLock { _ in
            table = table.filter { $0.value.optimizer != nil }
            table[ObjectIdentifier(optimizer)] = rates.map { Entry(optimizer: optimizer, rates: $0) }
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
