/// Functions an optimizer calls around its steps, state dicts and loads, as torch's
/// `register_step_pre_hook` and its kin. Each ``register(_:)`` returns a ``HookHandle`` whose
/// ``HookHandle/remove()`` takes the hook away; hooks of one kind run in the order they were
/// registered.
///
///     let handle = adam.hooks.register(.stepPre { _ in
///         _ = try clipGradNorm(parameters, maxNorm: 1)   // changes the gradients
///     })
///     ...
///     handle.remove()
///
/// Hooks run while the optimizer holds its lock, on the thread that called it; they may call the
/// optimizer (its lock is recursive) and register or remove hooks. A step's pre-hooks run once
/// its gradients exist (after the closure, for `step(_:)`), before anything is updated; a pre-hook
/// that throws stops the step with nothing changed. A load's pre-hooks may rewrite the state dict
/// before it is checked; one that throws leaves the optimizer as it was.
public final class OptimizerHooks: @unchecked Sendable {
    /// A hook and when it runs (torch's `register_step_pre_hook`, `register_step_post_hook`,
    /// `register_state_dict_pre_hook`, `register_state_dict_post_hook`,
    /// `register_load_state_dict_pre_hook`, `register_load_state_dict_post_hook`).
    public enum Hook {
        /// Before every step, once the gradients exist; may change them.
        case stepPre((any Optimizer) throws -> Void)
        /// After every step that completed.
        case stepPost((any Optimizer) throws -> Void)
        /// Before `stateDict()` builds the dict.
        case stateDictPre((any Optimizer) -> Void)
        /// After `stateDict()` built the dict; may change what it returns. In a checkpoint save
        /// the dict's tensors are the optimizer's live state: copy what the hook keeps.
        case stateDictPost((any Optimizer, inout OptimizerStateDict) -> Void)
        /// Before `loadStateDict(_:)` checks the dict; may change what is loaded.
        case loadStateDictPre((any Optimizer, inout OptimizerStateDict) throws -> Void)
        /// After `loadStateDict(_:)` loaded the dict.
        case loadStateDictPost((any Optimizer) throws -> Void)
    }

    private let lock = OptimizerLock()
    private var nextID = 0
    private var registered: [(id: Int, hook: Hook)] = []

    init() {}

    /// Adds `hook` after those registered before it; returns the handle that removes it.
    @discardableResult
    public func register(_ hook: Hook) -> HookHandle {
        lock.withLock {
            let id = nextID
            nextID += 1
            registered.append((id, hook))
            return HookHandle { [weak self] in self?.lock.withLock { self?.registered.removeAll { $0.id == id } } }
        }
    }

    /// The hooks as they are now: a hook that removes itself or registers another changes the
    /// next run, not this one.
    private var current: [Hook] { lock.withLock { registered.map(\.hook) } }

    func runStep(_ optimizer: any Optimizer, _ step: () throws -> Void) throws {
        let hooks = current
        for case .stepPre(let hook) in hooks { try hook(optimizer) }
        try step()
        for case .stepPost(let hook) in hooks { try hook(optimizer) }
    }

    func stateDict(of optimizer: any Optimizer, _ build: () -> OptimizerStateDict) -> OptimizerStateDict {
        let hooks = current
        for case .stateDictPre(let hook) in hooks { hook(optimizer) }
        var dict = build()
        for case .stateDictPost(let hook) in hooks { hook(optimizer, &dict) }
        return dict
    }

    func load(_ dict: OptimizerStateDict, into optimizer: any Optimizer,
              _ load: (OptimizerStateDict) throws -> Void) throws {
        let hooks = current
        var dict = dict
        for case .loadStateDictPre(let hook) in hooks { try hook(optimizer, &dict) }
        try load(dict)
        for case .loadStateDictPost(let hook) in hooks { try hook(optimizer) }
    }
}

/// Removes the hook that registering it returned this for.
public struct HookHandle: Sendable {
    private let removal: @Sendable () -> Void

    init(_ removal: @escaping @Sendable () -> Void) { self.removal = removal }

    /// Removes the hook; later calls do nothing.
    public func remove() { removal() }
}
