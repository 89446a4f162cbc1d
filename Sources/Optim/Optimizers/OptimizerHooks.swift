/// Functions an optimizer calls around its steps, state dicts and loads, as torch's
/// `register_step_pre_hook` and its kin. Each registration returns a ``HookHandle`` whose
/// ``HookHandle/remove()`` takes the hook away; hooks of one kind run in the order they were
/// registered.
///
///     let handle = adam.hooks.registerStepPreHook { _ in
///         for parameter in parameters { try clipInPlace(parameter.grad) }   // replace gradients
///     }
///     ...
///     handle.remove()
///
/// Hooks run while the optimizer holds its lock, on the thread that called it; they may call the
/// optimizer (its lock is recursive) and register or remove hooks. A step's pre-hooks run once
/// its gradients exist (after the closure, for `step(_:)`), before anything is updated; a pre-hook
/// that throws stops the step with nothing changed. A load's pre-hooks may rewrite the state dict
/// before it is checked; one that throws leaves the optimizer as it was.
public final class OptimizerHooks: @unchecked Sendable {
    public typealias StepHook = (any Optimizer) throws -> Void
    public typealias StateDictPreHook = (any Optimizer) -> Void
    public typealias StateDictPostHook = (any Optimizer, inout OptimizerStateDict) -> Void
    public typealias LoadStateDictPreHook = (any Optimizer, inout OptimizerStateDict) throws -> Void
    public typealias LoadStateDictPostHook = (any Optimizer) throws -> Void

    private let lock = OptimizerLock()
    private var nextID = 0
    private var stepPre: [(id: Int, hook: StepHook)] = []
    private var stepPost: [(id: Int, hook: StepHook)] = []
    private var stateDictPre: [(id: Int, hook: StateDictPreHook)] = []
    private var stateDictPost: [(id: Int, hook: StateDictPostHook)] = []
    private var loadPre: [(id: Int, hook: LoadStateDictPreHook)] = []
    private var loadPost: [(id: Int, hook: LoadStateDictPostHook)] = []

    init() {}

    /// Runs before every step, once the gradients exist; may change them.
    @discardableResult
    public func registerStepPreHook(_ hook: @escaping StepHook) -> HookHandle {
        register(hook, in: \.stepPre)
    }

    /// Runs after every step that completed.
    @discardableResult
    public func registerStepPostHook(_ hook: @escaping StepHook) -> HookHandle {
        register(hook, in: \.stepPost)
    }

    /// Runs before `stateDict()` builds the dict.
    @discardableResult
    public func registerStateDictPreHook(_ hook: @escaping StateDictPreHook) -> HookHandle {
        register(hook, in: \.stateDictPre)
    }

    /// Runs after `stateDict()` built the dict; may change what it returns. In a checkpoint save
    /// the dict's tensors are the optimizer's live state: copy what the hook keeps.
    @discardableResult
    public func registerStateDictPostHook(_ hook: @escaping StateDictPostHook) -> HookHandle {
        register(hook, in: \.stateDictPost)
    }

    /// Runs before `loadStateDict(_:)` checks the dict; may change what is loaded.
    @discardableResult
    public func registerLoadStateDictPreHook(_ hook: @escaping LoadStateDictPreHook) -> HookHandle {
        register(hook, in: \.loadPre)
    }

    /// Runs after `loadStateDict(_:)` loaded the dict.
    @discardableResult
    public func registerLoadStateDictPostHook(_ hook: @escaping LoadStateDictPostHook) -> HookHandle {
        register(hook, in: \.loadPost)
    }

    private func register<Hook>(_ hook: Hook, in list: ReferenceWritableKeyPath<OptimizerHooks, [(id: Int, hook: Hook)]>)
        -> HookHandle {
        lock.withLock {
            let id = nextID
            nextID += 1
            self[keyPath: list].append((id, hook))
            return HookHandle { [weak self] in self?.remove(id) }
        }
    }

    /// Removes the hook registered as `id` (ids are unique over every kind).
    private func remove(_ id: Int) {
        lock.withLock {
            stepPre.removeAll { $0.id == id }
            stepPost.removeAll { $0.id == id }
            stateDictPre.removeAll { $0.id == id }
            stateDictPost.removeAll { $0.id == id }
            loadPre.removeAll { $0.id == id }
            loadPost.removeAll { $0.id == id }
        }
    }

    /// The hooks of one kind as they are now: a hook that removes itself or registers another
    /// changes the next run, not this one.
    private func current<Hook>(_ list: KeyPath<OptimizerHooks, [(id: Int, hook: Hook)]>) -> [Hook] {
        lock.withLock { self[keyPath: list].map(\.hook) }
    }

    func runStepPre(_ optimizer: any Optimizer) throws { for hook in current(\.stepPre) { try hook(optimizer) } }
    func runStepPost(_ optimizer: any Optimizer) throws { for hook in current(\.stepPost) { try hook(optimizer) } }

    func stateDict(of optimizer: any Optimizer, _ build: () -> OptimizerStateDict) -> OptimizerStateDict {
        for hook in current(\.stateDictPre) { hook(optimizer) }
        var dict = build()
        for hook in current(\.stateDictPost) { hook(optimizer, &dict) }
        return dict
    }

    func load(_ dict: OptimizerStateDict, into optimizer: any Optimizer,
              _ load: (OptimizerStateDict) throws -> Void) throws {
        var dict = dict
        for hook in current(\.loadPre) { try hook(optimizer, &dict) }
        try load(dict)
        for hook in current(\.loadPost) { try hook(optimizer) }
    }
}

/// Removes the hook that registering it returned this for.
public struct HookHandle: Sendable {
    private let removal: @Sendable () -> Void

    init(_ removal: @escaping @Sendable () -> Void) { self.removal = removal }

    /// Removes the hook; later calls do nothing.
    public func remove() { removal() }
}
