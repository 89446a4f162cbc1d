/// An engine seen through its options type only, so that one base class serves every
/// optimizer on the element-wise or the per-tensor engine.
protocol ElementwiseCore<Options>: AnyObject {
    associatedtype Options: OptimizerOptions
    var groups: [ParameterGroup<Options>] { get }
    var execution: Execution { get set }
    var implementation: Implementation { get set }
    func setOptions(_ options: Options, group: Int) throws
    func addGroup(_ spec: ParameterGroupSpec<Options>, defaults: Options) throws
    func step() throws
    func zeroGrad(setToNone: Bool)
    func state(for parameter: Tensor) -> ParameterState?
    func stateDict() -> OptimizerStateDict
    func loadStateDict(_ dict: OptimizerStateDict) throws
}

extension ElementwiseEngine: ElementwiseCore {}

/// What every optimizer stepped by one of the library's engines shares: parameter groups,
/// the two code paths, per-parameter state and state dicts. The element-wise optimizers
/// (``SGD``, ``Adam``, ``RMSprop``, ...) and the per-tensor ones (``Adafactor``, ``Muon``) are
/// its subclasses; each documents its update.
public class ElementwiseOptimizer<Options: OptimizerOptions>: Optimizer {
    let core: any ElementwiseCore<Options>
    /// The options a group added with ``addParamGroup(_:)`` starts from.
    public let defaults: Options

    init(core: any ElementwiseCore<Options>, defaults: Options) {
        self.core = core
        self.defaults = defaults
    }

    /// An optimizer of `Algorithm` on the element-wise engine.
    init<Algorithm: ElementwiseAlgorithm>(
        _ algorithm: Algorithm.Type, groups: [ParameterGroupSpec<Options>], defaults: Options, execution: Execution?,
        implementation: Implementation
    ) throws where Algorithm.Options == Options {
        core = try ElementwiseEngine<Algorithm>(groups: groups, defaults: defaults, execution: execution,
                                                implementation: implementation)
        self.defaults = defaults
    }

    public var paramGroups: [ParameterGroup<Options>] { core.groups }
    public func setOptions(_ options: Options, group: Int) throws { try core.setOptions(options, group: group) }
    /// Adds a group of parameters that are not in the optimizer yet; its options are the
    /// defaults with the group's changes.
    public func addParamGroup(_ group: ParameterGroupSpec<Options>) throws { try core.addGroup(group, defaults: defaults) }
    public var execution: Execution {
        get { core.execution }
        set { core.execution = newValue }
    }
    public var implementation: Implementation {
        get { core.implementation }
        set { core.implementation = newValue }
    }
    public func step() throws { try core.step() }
    public func zeroGrad(setToNone: Bool) { core.zeroGrad(setToNone: setToNone) }
    /// The state of `parameter` by torch's names, or nil before its first update.
    public func state(for parameter: Tensor) -> ParameterState? { core.state(for: parameter) }

    /// The state and options as torch's `optimizer.state_dict()` holds them: per parameter
    /// index (counted over the groups in order) its `step` (a 0-dimensional float32 tensor;
    /// SGD keeps none), its state tensors and its scalar state; per group its options by
    /// torch's names and `params`.
    public func stateDict() -> OptimizerStateDict { core.stateDict() }

    /// Restores options and state saved by ``stateDict()`` (here or, after conversion, by
    /// torch), as torch's `load_state_dict`: groups and their parameters are matched in order
    /// and must agree in number; state tensors must have their parameter's shape and are
    /// converted to its dtype; parameters without saved state start afresh. Throws, changing
    /// nothing, when the dict does not fit this optimizer.
    public func loadStateDict(_ dict: OptimizerStateDict) throws { try core.loadStateDict(dict) }
}
