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
    func stateDict(lending: Bool) -> OptimizerStateDict
    func loadStateDict(_ dict: OptimizerStateDict) throws
}

extension ElementwiseEngine: ElementwiseCore {}

/// How a subclass of ``ElementwiseOptimizer`` builds its engine: the one line by which an
/// optimizer names its algorithm.
struct EngineRecipe<Options: OptimizerOptions> {
    let build: (_ groups: [ParameterGroupSpec<Options>], _ defaults: Options, _ execution: Execution?,
                _ implementation: Implementation) throws -> BuiltEngine<Options>

    /// `Algorithm` on the element-wise engine.
    static func elementwise<Algorithm: ElementwiseAlgorithm>(_: Algorithm.Type) -> Self
    where Algorithm.Options == Options {
        Self { BuiltEngine(try ElementwiseEngine<Algorithm>(groups: $0, defaults: $1, execution: $2, implementation: $3)) }
    }

    /// `Algorithm` on the per-tensor engine.
    static func perTensor<Algorithm: PerTensorAlgorithm>(_: Algorithm.Type) -> Self where Algorithm.Options == Options {
        Self { BuiltEngine(try PerTensorEngine<Algorithm>(groups: $0, defaults: $1, execution: $2, implementation: $3)) }
    }

    /// A rule written in Swift on the element-wise engine.
    static func swiftRule<Rule: ElementwiseRule>(_: Rule.Type) -> Self where Rule.Options == Options {
        Self { groups, defaults, execution, implementation in
            guard Rule.stateNames.count <= Kernels.maxStateSlots else {
                throw OptimError(.invalidArgument, """
                    \(Rule.name) declares \(Rule.stateNames.count) state slots; a rule keeps at most \
                    \(Kernels.maxStateSlots)
                    """)
            }
            return BuiltEngine(try ElementwiseEngine<SwiftRuleAlgorithm<Rule>>(
                groups: groups, defaults: defaults, execution: execution, implementation: implementation))
        }
    }
}

/// An engine, and its step as a function made where the engine's type is known. Through the
/// existential alone, a step would run the engine's unspecialized code, which looks up generic
/// metadata at run time: about a microsecond per step, more than the whole update of a small
/// tensor.
struct BuiltEngine<Options: OptimizerOptions> {
    let core: any ElementwiseCore<Options>
    let step: () throws -> Void

    init<Core: ElementwiseCore<Options>>(_ core: Core) {
        self.core = core
        step = core.step
    }
}

/// What every optimizer stepped by one of the library's engines shares: parameter groups,
/// the two code paths, per-parameter state and state dicts. The element-wise optimizers
/// (``SGD``, ``Adam``, ``RMSprop``, ...) and the per-tensor ones (``Adafactor``, ``Muon``) are
/// its subclasses; each documents its update.
public class ElementwiseOptimizer<Options: OptimizerOptions>: Optimizer, @unchecked Sendable {
    let core: any ElementwiseCore<Options>
    private let stepEngine: () throws -> Void
    /// Every public member runs under it: see ``OptimizerLock``.
    let lock = OptimizerLock()
    /// Functions run around steps, state dicts and loads (torch's optimizer hooks).
    public let hooks = OptimizerHooks()
    /// The options a group added with ``addParamGroup(_:)`` starts from.
    public let defaults: Options

    init(engine: BuiltEngine<Options>, defaults: Options) {
        core = engine.core
        stepEngine = engine.step
        self.defaults = defaults
    }

    /// How a subclass builds its engine; the base class has none and builds nothing. A subclass
    /// names its algorithm by its type (`.elementwise(Adam.self)`), not as `Self`: in a class,
    /// `Self` is the dynamic type, so the engine would run unspecialized, a microsecond more per
    /// step (measured on one tensor of 100 elements).
    class var recipe: EngineRecipe<Options>? { nil }

    /// The optimizer over parameter groups, each with its changes to `defaults`. `execution`
    /// defaults to the environment's (``Execution/fromEnvironment()``).
    public init(groups: [ParameterGroupSpec<Options>], defaults: Options, execution: Execution? = nil,
                implementation: Implementation = .multiTensor) throws {
        guard let recipe = Self.recipe else {
            throw OptimError(.invalidArgument, """
                ElementwiseOptimizer<\(Options.self)> has no update of its own; build one of its subclasses \
                (SGD, Adam, ...) instead
                """)
        }
        let engine = try recipe.build(groups, defaults, execution, implementation)
        core = engine.core
        stepEngine = engine.step
        self.defaults = defaults
    }

    /// The parameter groups and their options, in order.
    public var paramGroups: [ParameterGroup<Options>] { lock.withLock { core.groups } }
    /// Replaces the options of group `group`; throws, changing nothing, if they are invalid or the
    /// group does not exist.
    public func setOptions(_ options: Options, group: Int) throws {
        try lock.withLock { try core.setOptions(options, group: group) }
    }
    /// Adds a group of parameters that are not in the optimizer yet; its options are the
    /// defaults with the group's changes.
    public func addParamGroup(_ group: ParameterGroupSpec<Options>) throws {
        try lock.withLock { try core.addGroup(group, defaults: defaults) }
    }
    /// Threads, backend and instruction set of the next steps.
    public var execution: Execution {
        get { lock.withLock { core.execution } }
        set { lock.withLock { core.execution = newValue } }
    }
    /// The for-loop or multi-tensor path of the next steps (same bits either way).
    public var implementation: Implementation {
        get { lock.withLock { core.implementation } }
        set { lock.withLock { core.implementation = newValue } }
    }
    /// Runs the step pre-hooks, the update, then the post-hooks.
    public func step() throws {
        try lock.withLock { try hooks.runStep(self) { try performStep() } }
    }

    /// The update itself, without hooks: where a subclass adds to a step.
    func performStep() throws { try stepEngine() }
    /// Drops every gradient (`setToNone`, torch's default) or fills them with zeros.
    public func zeroGrad(setToNone: Bool) { lock.withLock { core.zeroGrad(setToNone: setToNone) } }
    /// The state of `parameter` by torch's names, or nil while it has none: before its first
    /// update, unless the optimizer makes state when it is built (Adagrad, as torch's).
    public func state(for parameter: Tensor) -> ParameterState? { lock.withLock { core.state(for: parameter) } }

    /// The state and options as torch's `optimizer.state_dict()` holds them: per parameter
    /// index (counted over the groups in order) its `step` (a 0-dimensional float32 tensor;
    /// SGD keeps none), its state tensors and its scalar state; per group its options by
    /// torch's names and `params`.
    public func stateDict() -> OptimizerStateDict {
        lock.withLock { hooks.stateDict(of: self) { stateDict(lending: false) } }
    }

    /// The state dict, its tensors copies or, `lending`, the live state (for a caller that holds
    /// the lock while it uses them). Where a subclass adds to the state dict.
    func stateDict(lending: Bool) -> OptimizerStateDict { core.stateDict(lending: lending) }

    /// Restores options and state saved by ``stateDict()`` (here or, after conversion, by
    /// torch), as torch's `load_state_dict`: groups and their parameters are matched in order
    /// and must agree in number; state tensors must have their parameter's shape and are
    /// converted to its dtype; parameters without saved state start afresh. Throws, changing
    /// nothing, when the dict does not fit this optimizer.
    public func loadStateDict(_ dict: OptimizerStateDict) throws {
        try lock.withLock { try hooks.load(dict, into: self) { try loadState($0) } }
    }

    /// The load itself, without hooks: where a subclass adds to a load.
    func loadState(_ dict: OptimizerStateDict) throws { try core.loadStateDict(dict) }
}

extension ElementwiseOptimizer: LendsStateDict {
    func withLentStateDict<Result>(_ body: (OptimizerStateDict) throws -> Result) throws -> Result {
        try lock.withLock { try body(hooks.stateDict(of: self) { stateDict(lending: true) }) }
    }
}
