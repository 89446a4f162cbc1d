/// One optimizer of the library as the tests, the benchmark, the reference replay and the
/// documentation see it, in the spirit of torch's `OptimizerInfo`: how to build it from
/// torch-named options, option sets to try and to refuse, its state and what it supports.
public struct OptimizerEntry: Sendable, CustomStringConvertible {
    /// How the optimizer runs.
    public enum Engine: String, Sendable {
        /// An element-wise rule of the kernel target, with a loop per instruction-set tier.
        case builtInRule = "built-in rule"
        /// An element-wise rule written in Swift (``ElementwiseRule``).
        case swiftRule = "Swift rule"
        /// A kernel per tensor (a factored second moment, Newton-Schulz iterations).
        case perTensor = "per-tensor"
        /// Driven by a closure that re-evaluates the loss (LBFGS).
        case closure
    }

    /// The name torch (or the reference implementation) gives the optimizer: `Adam`, `Lion`.
    public let name: String
    /// How the optimizer runs: a built-in rule, a Swift rule, per tensor or by closure.
    public let engine: Engine
    /// The options of a group built without changes (torch's defaults, or the reference's), by
    /// torch's names.
    public let defaults: [String: StateValue]
    /// The keys of a parameter's state other than `step`, by torch's names: the state tensors
    /// in slot order, then the scalar state.
    public let stateNames: [String]
    /// Whether it takes row-sparse gradients.
    public let sparseGradients: SparseGradientSupport
    /// Whether every parameter of one optimizer must share one dtype (LBFGS's flat vectors).
    public let singleDType: Bool
    /// Whether parameters need at least two dimensions (Muon's matrices).
    public let needsMatrices: Bool
    /// Option sets, by torch's names, that cover its branches; tests run each.
    public let sampleOptions: [[String: StateValue]]
    /// Option sets it must refuse when built.
    public let invalidOptions: [[String: StateValue]]
    /// The names of the reference cases it replays: its own, or the optimizer it reimplements.
    public let replays: String
    /// Where its reference trajectories come from.
    public let reference: Reference

    /// The implementation an optimizer's reference trajectories were made with.
    public enum Reference: String, Sendable {
        /// `torch.optim` of PyTorch 2.15.
        case torch = "PyTorch 2.15"
        /// lion-pytorch 0.2.5 (Lion).
        case lionPytorch = "lion-pytorch"
        /// pytorch-optimizer 4.1.0 (Adan, LAMB).
        case pytorchOptimizer = "pytorch-optimizer"
        /// schedulefree 1.4.1 (schedule-free AdamW).
        case scheduleFree = "schedulefree"
    }
    /// Options under which it reaches the minimum of the Rosenbrock function from (−1.2, 1)
    /// within 20,000 steps in float64 and of the bowl x² + y² + z² from (3, −4, 5) within 5,000
    /// in float32: the setting the convergence tests and trajectory plots use. Nil for an
    /// optimizer of matrices (Muon refuses vectors).
    public let convergenceOptions: [String: StateValue]?
    /// The options a benchmark runs (torch's defaults unless said otherwise).
    public let benchmarkOptions: [String: StateValue]
    /// The arrays a step under `benchmarkOptions` reads plus those it writes, per element: the
    /// least memory traffic of a step, in elements.
    public let arrayAccesses: Int
    /// A parameter group with torch-named changes to the optimizer's defaults.
    public typealias Group = (parameters: [Tensor], options: [String: StateValue])
    private let build: @Sendable ([Group], Execution?, Implementation) throws -> any Optimizer

    /// Builds the optimizer over groups whose options are torch-named changes to its defaults;
    /// the first group's options are the optimizer's (torch's constructor arguments). Throws
    /// when an option has the wrong type or is out of range.
    public func make(groups: [Group], execution: Execution? = nil,
                     implementation: Implementation = .multiTensor) throws -> any Optimizer {
        try build(groups, execution, implementation)
    }

    /// Builds the optimizer over one group.
    public func make(_ parameters: [Tensor], options: [String: StateValue] = [:], execution: Execution? = nil,
                     implementation: Implementation = .multiTensor) throws -> any Optimizer {
        try build([(parameters, options)], execution, implementation)
    }

    /// The optimizer's name.
    public var description: String { name }

    init<O: GroupConstructible>(_ type: O.Type, name: String, engine: Engine,
                                stateNames: [String], sparseGradients: SparseGradientSupport = .refused,
                                singleDType: Bool = false, needsMatrices: Bool = false, replays: String? = nil,
                                reference: Reference = .torch,
                                benchmark: [String: StateValue] = [:], arrayAccesses: Int,
                                converges: [String: StateValue]?,
                                samples: [[String: StateValue]], invalid: [[String: StateValue]]) {
        self.name = name
        self.engine = engine
        self.defaults = O.defaultOptions.torchValues
        self.stateNames = stateNames
        self.sparseGradients = sparseGradients
        self.singleDType = singleDType
        self.needsMatrices = needsMatrices
        self.replays = replays ?? name
        self.reference = reference
        benchmarkOptions = benchmark
        convergenceOptions = converges
        self.arrayAccesses = arrayAccesses
        sampleOptions = [[:]] + samples
        invalidOptions = invalid
        build = { groups, execution, implementation in
            let defaults = O.defaultOptions
            let specs = try groups.map { group -> ParameterGroupSpec<O.Options> in
                let options = try defaults.applying(torchValues: group.options)
                return ParameterGroupSpec(group.parameters) { $0 = options }
            }
            // The first group's options are the constructor's, as in torch, where the options
            // given to the constructor fill the first group.
            var built = defaults
            if let first = groups.first { built = try defaults.applying(torchValues: first.options) }
            return try O(groups: specs, defaults: built, execution: execution, implementation: implementation)
        }
    }
}


/// Every optimizer of the library, one entry each: the one list that tests, `bench`,
/// `verify-golden` and the documentation read.
public enum OptimizerCatalog {
    /// Every optimizer, in the order of the README's table: torch.optim's, then the others.
    public static let entries: [OptimizerEntry] = [
        OptimizerEntry(SGD.self, name: "SGD", engine: .builtInRule,
                       stateNames: keys(SGD.self),
                       benchmark: ["momentum": 0.9], arrayAccesses: 5, converges: ["lr": 1e-3, "momentum": 0.9],
                       samples: [["momentum": 0.9], ["momentum": 0.9, "nesterov": true, "weight_decay": 0.1],
                                 ["momentum": 0.5, "dampening": 0.3, "maximize": true]],
                       invalid: [["lr": -1], ["momentum": -0.1], ["nesterov": true]]),
        OptimizerEntry(Adam.self, name: "Adam", engine: .builtInRule,
                       stateNames: keys(Adam.self),
                       arrayAccesses: 7, converges: ["lr": 0.02],
                       samples: [["amsgrad": true, "weight_decay": 0.1], ["maximize": true, "betas": [0.5, 0.9]],
                                 ["decoupled_weight_decay": true, "weight_decay": 0.3, "eps": 1e-3]],
                       invalid: [["lr": -1], ["betas": [1, 0.999]], ["eps": -1], ["weight_decay": -1]]),
        OptimizerEntry(AdamW.self, name: "AdamW", engine: .builtInRule,
                       stateNames: keys(Adam.self),
                       arrayAccesses: 7, converges: ["lr": 0.02, "weight_decay": 1e-4],
                       samples: [["amsgrad": true], ["maximize": true, "weight_decay": 0.5]],
                       invalid: [["lr": -1], ["betas": [0.9, 1]], ["decoupled_weight_decay": false]]),
        OptimizerEntry(RMSprop.self, name: "RMSprop", engine: .builtInRule,
                       stateNames: keys(RMSprop.self),
                       arrayAccesses: 5, converges: ["lr": 2e-3],
                       samples: [["momentum": 0.9, "centered": true], ["weight_decay": 0.1, "maximize": true],
                                 ["alpha": 0.5, "eps": 1e-3]],
                       invalid: [["lr": -1], ["alpha": -0.5], ["momentum": -0.1], ["eps": -1], ["weight_decay": -1]]),
        OptimizerEntry(Adagrad.self, name: "Adagrad", engine: .builtInRule,
                       stateNames: keys(Adagrad.self), sparseGradients: .accepted,
                       arrayAccesses: 5, converges: ["lr": 0.1],
                       samples: [["lr_decay": 0.1, "initial_accumulator_value": 0.5],
                                 ["weight_decay": 0.1, "maximize": true]],
                       invalid: [["lr": -1], ["lr_decay": -1], ["initial_accumulator_value": -1], ["eps": -1]]),
        OptimizerEntry(Adadelta.self, name: "Adadelta", engine: .builtInRule,
                       stateNames: keys(Adadelta.self),
                       arrayAccesses: 7, converges: ["lr": 2e-3, "eps": 1e-2],
                       samples: [["rho": 0.5, "weight_decay": 0.1], ["maximize": true, "eps": 1e-3]],
                       invalid: [["lr": -1], ["rho": 1.5], ["rho": -0.1], ["eps": -1]]),
        OptimizerEntry(Adamax.self, name: "Adamax", engine: .builtInRule,
                       stateNames: keys(Adamax.self),
                       arrayAccesses: 7, converges: ["lr": 2e-3],
                       samples: [["weight_decay": 0.1], ["maximize": true, "betas": [0.5, 0.9]]],
                       invalid: [["lr": -1], ["betas": [1, 0.9]], ["eps": -1]]),
        OptimizerEntry(ASGD.self, name: "ASGD", engine: .builtInRule,
                       stateNames: keys(ASGD.self),
                       // With the default t0 the average is a copy of the parameter: written, not read.
                       arrayAccesses: 4, converges: ["lr": 1e-3],
                       samples: [["t0": 1, "lambd": 0.1], ["weight_decay": 0.1, "maximize": true, "alpha": 0.5]],
                       invalid: [["lr": -1], ["weight_decay": -1], ["t0": .number(.nan)], ["lambd": -0.5], ["alpha": -0.5]]),
        OptimizerEntry(NAdam.self, name: "NAdam", engine: .builtInRule,
                       stateNames: keys(NAdam.self),
                       arrayAccesses: 7, converges: ["lr": 2e-3],
                       samples: [["decoupled_weight_decay": true, "weight_decay": 0.1],
                                 ["momentum_decay": 0.1, "maximize": true]],
                       invalid: [["lr": -1], ["betas": [0.9, 1]], ["momentum_decay": -1]]),
        OptimizerEntry(RAdam.self, name: "RAdam", engine: .builtInRule,
                       stateNames: keys(RAdam.self),
                       arrayAccesses: 7, converges: ["lr": 5e-3],
                       samples: [["betas": [0.9, 0.8]], ["decoupled_weight_decay": true, "weight_decay": 0.1],
                                 ["maximize": true, "weight_decay": 0.1]],
                       invalid: [["lr": -1], ["betas": [-0.1, 0.999]], ["eps": -1]]),
        OptimizerEntry(Rprop.self, name: "Rprop", engine: .builtInRule,
                       stateNames: keys(Rprop.self),
                       arrayAccesses: 7, converges: ["lr": 1e-3],
                       samples: [["etas": [0.3, 1.5], "step_sizes": [1e-3, 1]], ["maximize": true]],
                       invalid: [["lr": -1], ["etas": [1.5, 1.2]], ["etas": [0, 1.2]], ["etas": [0.5, 0.9]],
                                 ["step_sizes": [.number(.nan), 1]]]),
        OptimizerEntry(SparseAdam.self, name: "SparseAdam", engine: .builtInRule,
                       stateNames: keys(SparseAdam.self), sparseGradients: .required,
                       // Every row in the sparse gradient: a dense step's traffic plus the summing of rows.
                       arrayAccesses: 8, converges: ["lr": 2e-3],
                       samples: [["betas": [0.5, 0.9]], ["maximize": true, "eps": 1e-3]],
                       invalid: [["lr": -1], ["lr": 0], ["betas": [1, 0.9]], ["eps": -1]]),
        OptimizerEntry(LBFGS.self, name: "LBFGS", engine: .closure,
                       // The state of the first parameter: the flattened history of every parameter.
                       stateNames: ["d", "t", "old_dirs", "old_stps", "ro", "al", "H_diag", "prev_flat_grad",
                                    "prev_loss", "func_evals", "n_iter"],
                       singleDType: true,
                       // One iteration a step: the gradient gathered, its norms, the direction, the step.
                       arrayAccesses: 6, converges: ["line_search_fn": "strong_wolfe"],
                       samples: [["line_search_fn": "strong_wolfe"], ["history_size": 3, "max_iter": 5]],
                       invalid: [["lr": -1], ["line_search_fn": "backtracking"], ["history_size": 0]]),
        OptimizerEntry(Adafactor.self, name: "Adafactor", engine: .perTensor,
                       stateNames: keys(AdafactorAlgorithm.self),
                       arrayAccesses: 3, converges: ["lr": 5e-3],
                       samples: [["weight_decay": 0.1], ["maximize": true, "beta2_decay": -0.5]],
                       invalid: [["lr": -1], ["beta2_decay": 0.5], ["d": 0.5]]),
        OptimizerEntry(Muon.self, name: "Muon", engine: .perTensor,
                       stateNames: keys(MuonAlgorithm.self), needsMatrices: true,
                       arrayAccesses: 5, converges: nil,
                       samples: [["nesterov": false], ["adjust_lr_fn": "match_rms_adamw", "weight_decay": 0]],
                       invalid: [["lr": -1], ["momentum": -1], ["ns_steps": -1]]),
        OptimizerEntry(Lion.self, name: "Lion", engine: .swiftRule, stateNames: keys(LionRule.self),
                       reference: .lionPytorch,
                       arrayAccesses: 5, converges: ["lr": 1e-3],
                       samples: [["weight_decay": 0.1], ["betas": [0.95, 0.98], "lr": 3e-4]],
                       invalid: [["lr": -1], ["betas": [1.5, 0.99]], ["weight_decay": -1]]),
        OptimizerEntry(Adan.self, name: "Adan", engine: .swiftRule, stateNames: keys(AdanRule.self),
                       reference: .pytorchOptimizer, arrayAccesses: 10, converges: ["lr": 2e-3],
                       samples: [["weight_decay": 0.05, "weight_decouple": true], ["weight_decay": 0.02],
                                 ["max_grad_norm": 1.0, "maximize": true, "betas": [0.9, 0.9, 0.999]]],
                       invalid: [["lr": -1], ["betas": [1, 0.92, 0.99]], ["betas": [0.9, 0.9]], ["eps": -1],
                                 ["max_grad_norm": -1]]),
        OptimizerEntry(ScheduleFreeAdamW.self, name: "ScheduleFreeAdamW", engine: .swiftRule,
                       stateNames: keys(ScheduleFreeAdamWRule.self), reference: .scheduleFree, arrayAccesses: 7,
                       converges: ["lr": 0.01],
                       samples: [["warmup_steps": 3, "weight_decay": 0.1], ["r": 1.0, "weight_lr_power": 1.0]],
                       invalid: [["lr": -1], ["betas": [1, 0.999]], ["warmup_steps": -1], ["warmup_steps": 1.5],
                                 ["eps": -1]]),
        OptimizerEntry(Lamb.self, name: "Lamb", engine: .perTensor,
                       stateNames: ["exp_avg", "exp_avg_sq"] + Lamb.ratioNames, reference: .pytorchOptimizer,
                       // The element-wise pass (p, g, m, v, u), the norms (p, u), the step (p, u).
                       arrayAccesses: 13, converges: ["lr": 2e-3],
                       samples: [["weight_decay": 0.1], ["weight_decay": 0.1, "weight_decouple": false],
                                 ["adam": true, "fixed_decay": true, "weight_decay": 0.1],
                                 ["grad_averaging": false, "maximize": true]],
                       invalid: [["lr": -1], ["betas": [1, 0.999]], ["eps": -1], ["rectify": true],
                                 ["pre_norm": true]]),
        OptimizerEntry(SwiftAdam.self, name: "SwiftAdam", engine: .swiftRule,
                       stateNames: keys(AdamRule.self), replays: "Adam",
                       arrayAccesses: 7, converges: ["lr": 0.02],
                       samples: [["amsgrad": true, "weight_decay": 0.1], ["maximize": true, "betas": [0.5, 0.9]],
                                 ["decoupled_weight_decay": true, "weight_decay": 0.3, "eps": 1e-3]],
                       invalid: [["lr": -1], ["betas": [1, 0.999]], ["eps": -1], ["weight_decay": -1]]),
    ]

    /// A parameter's state keys under an element-wise algorithm.
    static func keys<A: ElementwiseAlgorithm>(_: A.Type) -> [String] { A.stateNames + A.TensorState.names }

    /// A parameter's state keys under a per-tensor algorithm.
    static func keys<A: PerTensorAlgorithm>(_: A.Type) -> [String] { A.stateNames }

    /// A parameter's state keys under a Swift rule (scalar state of the group is the group's).
    static func keys<R: ElementwiseRule>(_: R.Type) -> [String] {
        R.stateNames + (R.stepCounting == .perParameter ? R.ScalarState.names : [])
    }

    /// The entry named `name` (case-insensitive), if any.
    public static func entry(named name: String) -> OptimizerEntry? {
        entries.first { $0.name.lowercased() == name.lowercased() }
    }

    /// The entries that replay reference cases of `name` (torch's class name).
    public static func entries(replaying name: String) -> [OptimizerEntry] {
        entries.filter { $0.replays == name }
    }
}

extension SGD: GroupConstructible {}
extension Adam: GroupConstructible {}
extension AdamW: GroupConstructible {}
extension RMSprop: GroupConstructible {}
extension Adagrad: GroupConstructible {}
extension Adadelta: GroupConstructible {}
extension Adamax: GroupConstructible {}
extension ASGD: GroupConstructible {}
extension NAdam: GroupConstructible {}
extension RAdam: GroupConstructible {}
extension Rprop: GroupConstructible {}
extension SparseAdam: GroupConstructible {}
extension LBFGS: GroupConstructible {}
extension Adafactor: GroupConstructible {}
extension Muon: GroupConstructible {}
extension RuleOptimizer: GroupConstructible {}
extension Adan: GroupConstructible {}
extension Lamb: GroupConstructible {}
extension ScheduleFreeAdamW: GroupConstructible {}

extension OptimizerCatalog {
    /// The catalog as a Markdown table: the list of optimizers in the README (`optim catalog`
    /// prints it; a test keeps the README's copy equal to it).
    public static func markdownTable() -> String {
        var lines = [
            "| optimizer | runs as | reference | state | sparse gradients |",
            "|---|---|---|---|---|",
        ]
        for entry in entries {
            let name = entry.replays == entry.name ? entry.name : "\(entry.name) (\(entry.replays) as a Swift rule)"
            let state = entry.stateNames.map { "`\($0)`" }.joined(separator: ", ")
            lines.append("| \(name) | \(entry.engine.rawValue) | \(entry.reference.rawValue) | \(state) | \(entry.sparseGradients.rawValue) |")
        }
        return lines.joined(separator: "\n")
    }
}
