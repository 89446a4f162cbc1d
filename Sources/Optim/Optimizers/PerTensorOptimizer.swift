/// The engine seen through its options type only, so that one base class serves every
/// per-tensor optimizer.
protocol PerTensorCore<Options>: AnyObject {
    associatedtype Options: TorchNamedOptions
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

extension PerTensorEngine: PerTensorCore {}

/// What the optimizers whose update of a tensor reads the whole tensor (``Adafactor``,
/// ``Muon``) share: parameter groups, per-parameter state, state dicts in torch's layout, and
/// the per-tensor engine. A tensor's update runs on one worker, start to end; a step spreads
/// the tensors over threads. Both implementations give the same bits: `forLoop` updates one
/// tensor after the other on the calling thread, `multiTensor` spreads them over
/// ``Execution/threads`` when the step's work passes ``Execution/serialThreshold``.
public class PerTensorOptimizer<Options: TorchNamedOptions>: Optimizer {
    let core: any PerTensorCore<Options>
    /// The options a group added with ``addParamGroup(_:)`` starts from.
    public let defaults: Options

    init(core: any PerTensorCore<Options>, defaults: Options) {
        self.core = core
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
    /// index (counted over the groups in order) its state tensors by torch's names (and its
    /// `step`, a 0-dimensional float32 tensor, where torch keeps one); per group its options by
    /// torch's names and `params`.
    public func stateDict() -> OptimizerStateDict { core.stateDict() }

    /// Restores options and state saved by ``stateDict()`` (here or, after conversion, by
    /// torch), as torch's `load_state_dict`. Throws, changing nothing, when the dict does not
    /// fit this optimizer.
    public func loadStateDict(_ dict: OptimizerStateDict) throws { try core.loadStateDict(dict) }
}
