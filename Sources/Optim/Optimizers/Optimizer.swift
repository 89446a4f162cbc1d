/// Options every optimizer has: the learning rate, which schedulers drive.
public protocol OptimizerOptions: Sendable {
    /// The learning rate.
    var lr: Double { get set }
}

/// Which code path an optimizer's step takes. Both give the same bits.
///
/// - `forLoop` is torch's `foreach=False`: one launch per parameter tensor, in order.
/// - `multiTensor` is torch's `foreach=True`: one launch for every parameter of every group,
///   grouped by dtype, cut into chunks and spread over threads. It is already a single fused
///   pass over each element (torch's foreach path makes several), so torch's `fused=True`
///   maps to it too.
public enum Implementation: String, CaseIterable, Sendable, CustomStringConvertible {
    /// One launch per parameter tensor, in order (torch's `foreach=False`).
    case forLoop = "forloop"
    /// One launch for every parameter, cut into chunks spread over threads (torch's
    /// `foreach=True` and `fused=True`).
    case multiTensor = "foreach"

    /// The name the command-line tool takes: `forloop` or `foreach`.
    public var description: String { rawValue }
}

/// A parameter group: parameters that share options.
public struct ParameterGroup<Options: OptimizerOptions>: @unchecked Sendable {
    /// The parameters, in order.
    public let parameters: [Tensor]
    /// The group's options (the optimizer's defaults with the group's changes applied).
    public internal(set) var options: Options
    /// The parameters' names, where the group was built from named parameters (torch's
    /// `param_names`, kept in state dicts), or nil.
    public internal(set) var names: [String]?

    init(parameters: [Tensor], options: Options, names: [String]? = nil) {
        self.parameters = parameters
        self.options = options
        self.names = names
    }
}

/// A parameter group to build: parameters, and changes to the optimizer's default options.
///
///     let adam = try Adam(groups: [
///         .init(backbone),
///         .init(head) { $0.lr = 1e-3 },
///     ], defaults: .init(lr: 1e-2))
public struct ParameterGroupSpec<Options: OptimizerOptions> {
    /// The group's parameters, in order.
    public let parameters: [Tensor]
    /// The parameters' names (torch's `param_names`), or nil.
    public let names: [String]?
    /// Changes to the optimizer's default options for this group.
    public let configure: (inout Options) -> Void

    /// A group of `parameters` whose options are the defaults changed by `configure`.
    public init(_ parameters: [Tensor], _ configure: @escaping (inout Options) -> Void = { _ in }) {
        self.parameters = parameters
        self.names = nil
        self.configure = configure
    }

    /// A group of named parameters, as torch builds one from `model.named_parameters()`: its
    /// state dict lists the names as `param_names`.
    ///
    ///     .init(named: [("fc.weight", weight), ("fc.bias", bias)]) { $0.lr = 1e-3 }
    public init(named parameters: [(String, Tensor)], _ configure: @escaping (inout Options) -> Void = { _ in }) {
        self.parameters = parameters.map(\.1)
        self.names = parameters.map(\.0)
        self.configure = configure
    }
}

/// What every optimizer of the library does.
///
/// An optimizer may be shared between threads: its members run one at a time (a step on one
/// thread and an option change from a scheduler on another are serialized, never interleaved),
/// and optimizers over disjoint parameters step concurrently. The tensors it updates are not
/// synchronized: a parameter or gradient must not be changed on another thread during a step.
public protocol Optimizer: AnyObject, Sendable {
    /// The options of a parameter group.
    associatedtype Options: OptimizerOptions

    /// The parameter groups and their options.
    var paramGroups: [ParameterGroup<Options>] { get }
    /// Functions run around steps, state dicts and loads (torch's optimizer hooks).
    var hooks: OptimizerHooks { get }
    /// Replaces a group's options; throws, changing nothing, if they are invalid.
    func setOptions(_ options: Options, group: Int) throws
    /// Threads, backend and instruction set of the element loops.
    var execution: Execution { get set }
    /// The for-loop or multi-tensor path.
    var implementation: Implementation { get set }

    /// Applies one update to every parameter that has a gradient. Throws, changing nothing, if
    /// a gradient does not match its parameter.
    func step() throws
    /// Calls `closure` (which computes the loss and the gradients), then steps; returns the
    /// closure's loss.
    @discardableResult
    func step(_ closure: () throws -> Double) throws -> Double
    /// Drops every gradient (`setToNone`, the default, as torch) or fills them with zeros.
    func zeroGrad(setToNone: Bool)

    /// The state of `parameter` by torch's names, or nil while it has none: before its first
    /// update, unless the optimizer makes state when it is built (Adagrad, as torch's).
    func state(for parameter: Tensor) -> ParameterState?
    /// The state and options as torch's `optimizer.state_dict()` holds them.
    func stateDict() -> OptimizerStateDict
    /// Restores options and state saved by ``stateDict()``; throws, changing nothing, when the
    /// dict does not fit this optimizer.
    func loadStateDict(_ dict: OptimizerStateDict) throws
}

/// An optimizer built from its parameter groups and default options: what the catalog
/// (``OptimizerCatalog``) needs to build any optimizer from torch-named options.
public protocol GroupConstructible: Optimizer where Options: TorchNamedOptions {
    /// The options of a group built without changes (torch's defaults, or the reference's).
    static var defaultOptions: Options { get }
    /// The optimizer over parameter groups, each with its changes to `defaults`. `execution`
    /// defaults to the environment's (``Execution/fromEnvironment()``).
    init(groups: [ParameterGroupSpec<Options>], defaults: Options, execution: Execution?,
         implementation: Implementation) throws
}

extension GroupConstructible {
    /// The optimizer over parameter groups, each with its changes to ``defaultOptions``.
    public init(groups: [ParameterGroupSpec<Options>], execution: Execution? = nil,
                implementation: Implementation = .multiTensor) throws {
        try self.init(groups: groups, defaults: Self.defaultOptions, execution: execution,
                      implementation: implementation)
    }

    /// The optimizer over `parameters` in one group; throws when there are none, as torch does.
    public init(_ parameters: [Tensor], options: Options = Self.defaultOptions, execution: Execution? = nil,
                implementation: Implementation = .multiTensor) throws {
        guard !parameters.isEmpty else { throw OptimError(.invalidArgument, "optimizer got an empty parameter list") }
        try self.init(groups: [ParameterGroupSpec(parameters)], defaults: options, execution: execution,
                      implementation: implementation)
    }
}

extension Optimizer {
    /// Drops every parameter's gradient (sets `grad` to nil), as torch's default.
    public func zeroGrad() { zeroGrad(setToNone: true) }

    /// Calls `closure`, which computes the loss and sets the gradients, then ``step()``; returns
    /// the closure's loss.
    @discardableResult
    public func step(_ closure: () throws -> Double) throws -> Double {
        let loss = try closure()
        try step()
        return loss
    }

    /// The learning rate of each group.
    public var learningRates: [Double] { paramGroups.map(\.options.lr) }
}
