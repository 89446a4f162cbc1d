/// LAMB, layer-wise adaptive moments (You et al., 2020), as `pytorch_optimizer.Lamb` 4.1.0
/// computes it: Adam's direction, scaled per tensor by a trust ratio.
///
/// At the group's `t`-th step, for each parameter `p` with gradient `g`:
///
///     g ← maximize ? −g : g
///     m ← β₁ · m + (gradAveraging ? 1 − β₁ : 1) · g
///     v ← β₂ · v + (1 − β₂) · g²
///     p ← p · (1 − weightDecay · (fixedDecay ? 1 : lr))         (weightDecouple)
///     u ← m / (√v + ε) + weightDecay · p                        (L2 term without weightDecouple)
///     r ← min(‖p‖, 10) / (‖u‖ + ε), or 1 where either norm is 0 (adam: 1)
///     p ← p − (lr / (1 − β₁ᵗ)) · r · u
///
/// The first five lines run as one element-wise pass on the engine, the norms as one
/// deterministic reduction over every tensor, the last line per tensor. State: `exp_avg` (m),
/// `exp_avg_sq` (v), and the last step's `weight_norm`, `adam_norm` and `trust_ratio`; the step
/// count belongs to the group. `rectify` and `pre_norm` are not offered (refused when true).
/// torch has no LAMB.
public final class Lamb: ElementwiseOptimizer<LambRule.Options>, @unchecked Sendable {
    private let engine: ElementwiseEngine<SwiftRuleAlgorithm<LambRule>>
    /// The last step's norms and trust ratio of each parameter, by torch-style name.
    private var ratios: [ObjectIdentifier: [String: Double]] = [:]
    static let ratioNames = ["weight_norm", "adam_norm", "trust_ratio"]
    /// The norm of a parameter is clamped to this before the ratio (the reference's constant).
    static let normClamp = 10.0

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    /// LAMB over parameter groups, each with its changes to `defaults`.
    public override init(groups: [ParameterGroupSpec<Options>], defaults: Options = Options(), execution: Execution? = nil,
                implementation: Implementation = .multiTensor) throws {
        engine = try ElementwiseEngine(groups: groups, defaults: defaults, execution: execution,
                                       implementation: implementation)
        super.init(engine: BuiltEngine(engine), defaults: defaults)
    }

    override func performStep() throws {
        try lock.withLock {
            try super.performStep()
            // Checked by the element-wise pass: every gradient here matches its parameter.
            var updated: [(parameter: Tensor, group: Int)] = []
            for (number, group) in paramGroups.enumerated() {
                for parameter in group.parameters where parameter.grad != nil { updated.append((parameter, number)) }
            }
            guard !updated.isEmpty else { return }
            let directions = updated.map { engine.state(for: $0.parameter)!["update"]! }
            let weightNorms = try Foreach.norms(updated.map(\.parameter), execution: execution)
            let directionNorms = try Foreach.norms(directions, execution: execution)
            for (position, (parameter, group)) in updated.enumerated() {
                let options = paramGroups[group].options
                let ratio = Self.trustRatio(weightNorm: weightNorms[position], directionNorm: directionNorms[position],
                                            eps: options.eps, dtype: parameter.dtype)
                ratios[ObjectIdentifier(parameter)] = ["weight_norm": ratio.weightNorm, "adam_norm": ratio.directionNorm,
                                                       "trust_ratio": ratio.value]
                let stepSize = options.lr / (1 - Math.pow(options.betas.first, Double(engine.groupSteps[group])))
                let scale = Self.rounded(-stepSize * (options.adam ? 1 : ratio.value), to: parameter.dtype)
                try Foreach.add([parameter], [directions[position]], alpha: scale, execution: execution)
            }
        }
    }

    /// The trust ratio as the reference computes it, in the parameter's dtype.
    static func trustRatio(weightNorm: Double, directionNorm: Double, eps: Double, dtype: DType)
        -> (weightNorm: Double, directionNorm: Double, value: Double) {
        let weight = rounded(min(rounded(weightNorm, to: dtype), normClamp), to: dtype)
        let direction = rounded(directionNorm, to: dtype)
        guard weight != 0 && direction != 0 else { return (weight, direction, 1) }
        return (weight, direction, rounded(weight / rounded(direction + rounded(eps, to: dtype), to: dtype), to: dtype))
    }

    /// `value` as a tensor of `dtype` holds it (float32 for the half types, whose scalars the
    /// reference computes in float32 before the final rounding).
    static func rounded(_ value: Double, to dtype: DType) -> Double {
        dtype == .float64 ? value : Double(Float(value))
    }

    /// The state of `parameter`: `exp_avg`, `exp_avg_sq`, and the last step's `weight_norm`,
    /// `adam_norm` and `trust_ratio` among its values; nil before its first update.
    public override func state(for parameter: Tensor) -> ParameterState? {
        lock.withLock {
            guard let state = super.state(for: parameter) else { return nil }
            var tensors = state.tensors
            tensors["update"] = nil
            return ParameterState(step: state.step, tensors: tensors,
                                  values: state.values.merging(ratios[ObjectIdentifier(parameter)] ?? [:]) { $1 })
        }
    }

    override func stateDict(lending: Bool) -> OptimizerStateDict {
        lock.withLock {
            var dict = super.stateDict(lending: lending)
            let parameters = paramGroups.flatMap(\.parameters)
            for (id, var entry) in dict.state {
                entry["update"] = nil
                for (name, value) in ratios[ObjectIdentifier(parameters[id])] ?? [:] { entry[name] = .tensor(.scalar(value)) }
                dict.state[id] = entry
            }
            return dict
        }
    }

    override func loadState(_ dict: OptimizerStateDict) throws {
        try lock.withLock {
            // The norms and ratios are the last step's results, not state a step reads: they
            // come back for `state(for:)` and the next state dict, and the engine loads the rest.
            var stripped = dict
            for (id, entry) in dict.state {
                stripped.state[id] = entry.filter { !Self.ratioNames.contains($0.key) }
            }
            var newRatios: [ObjectIdentifier: [String: Double]] = [:]
            let parameters = paramGroups.flatMap(\.parameters)
            let savedIDs = dict.paramGroups.flatMap { group -> [StateValue] in
                if case .list(let ids)? = group["params"] { ids } else { [] }
            }
            for (position, id) in savedIDs.enumerated() where position < parameters.count {
                guard case .integer(let id) = id, let entry = dict.state[id] else { continue }
                var values: [String: Double] = [:]
                for name in Self.ratioNames {
                    guard let value = entry[name] else { continue }
                    guard let number = value.doubleValue else {
                        throw OptimError(.invalidArgument, "state \(name) of parameter \(id) must be a number")
                    }
                    values[name] = number
                }
                if !values.isEmpty { newRatios[ObjectIdentifier(parameters[position])] = values }
            }
            try super.loadState(stripped)
            ratios = newRatios
        }
    }
}

/// The element-wise pass of ``Lamb``: the moments, the decay and the direction `u`, kept in a
/// third slot for the per-tensor pass.
public enum LambRule: ElementwiseRule {
    /// ``Lamb``'s options, with the reference's defaults and names.
    public struct Options: TorchFieldOptions, DefaultOptions, Equatable {
        /// Learning rate (default 1e-3).
        public var lr = 1e-3
        /// Decay rates of the moments (default (0.9, 0.999)).
        public var betas = Pair(0.9, 0.999)
        /// Weight decay (default 0).
        public var weightDecay = 0.0
        /// Decay the parameter directly rather than adding an L2 term to the direction (default true).
        public var weightDecouple = true
        /// Decay by `weightDecay` rather than `lr · weightDecay` (default false).
        public var fixedDecay = false
        /// Average the gradient into m with weight 1 − β₁ rather than 1 (default true).
        public var gradAveraging = true
        /// A trust ratio of 1: Adam's update (default false).
        public var adam = false
        /// Added to the denominator and to the direction's norm (default 1e-6).
        public var eps = 1e-6
        /// Maximize the objective (default false).
        public var maximize = false
        /// The reference's RAdam rectification: not offered, must stay false.
        public var rectify = false
        /// The reference's gradient normalization before the step: not offered, must stay false.
        public var preNorm = false
        /// Read with `preNorm` only (default 1).
        public var maxGradNorm = 1.0
        /// Read with `rectify` only (default false).
        public var degeneratedToSGD = false
        /// Read with `rectify` only (default 5).
        public var nSMAThreshold = 5

        /// pytorch-optimizer's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-6, decoupled decay of 0.
        public init() {}

        /// Every option under the reference's name, with what its value must satisfy.
        public static let torchFields: [OptionField<Self>] = [
            .number("lr", \.lr), .pair("betas", \.betas, .betas), .number("weight_decay", \.weightDecay, .nonNegative),
            .number("max_grad_norm", \.maxGradNorm, .nonNegative), .number("eps", \.eps, .epsilon),
            .flag("weight_decouple", \.weightDecouple), .flag("fixed_decay", \.fixedDecay),
            .flag("grad_averaging", \.gradAveraging), .flag("adam", \.adam),
            .flag("maximize", \.maximize), .flag("rectify", \.rectify), .flag("pre_norm", \.preNorm),
            .flag("degenerated_to_sgd", \.degeneratedToSGD),
            .integer("n_sma_threshold", \.nSMAThreshold),
        ]
    }

    /// The per-step scalars, computed in `Double` by ``scalars(_:step:state:)``.
    public struct Scalars {
        var maximize, decouple: Bool
        var beta1, gradientWeight, beta2, oneMinusBeta2, eps, decayFactor, weightDecay: Double
    }

    /// The optimizer's name, for messages.
    public static let name = "Lamb"
    /// `exp_avg` (m), `exp_avg_sq` (v) and `update` (u, read by the per-tensor pass; not in
    /// state dicts).
    public static let stateNames = ["exp_avg", "exp_avg_sq", "update"]
    /// The group's: its step count advances at every step, as pytorch-optimizer counts it.
    public static let stepCounting = RuleStepCounting.perGroup

    /// Checks the fields, then refuses `rectify` and `preNorm`, which are not offered.
    public static func validate(_ o: Options) throws {
        try o.validateFields()
        guard !o.rectify, !o.preNorm else {
            throw OptimError(.invalidOption, "Lamb's rectify and pre_norm are not offered by this library")
        }
    }

    /// β₁ and the gradient's weight, β₂ and `1 − β₂`, `eps` and the decay factors, in `Double`.
    public static func scalars(_ o: Options, step: Int, state: inout NoScalarState) -> Scalars {
        let decoupled = o.weightDecouple && o.weightDecay != 0
        return Scalars(maximize: o.maximize, decouple: decoupled, beta1: o.betas.first,
                       gradientWeight: o.gradAveraging ? 1 - o.betas.first : 1, beta2: o.betas.second,
                       oneMinusBeta2: 1 - o.betas.second, eps: o.eps,
                       decayFactor: 1 - o.weightDecay * (o.fixedDecay ? 1 : o.lr),
                       weightDecay: o.weightDecouple ? 0 : o.weightDecay)
    }

    /// m ← β₁ · m + w · g (w = 1 − β₁ with `gradAveraging`, else 1); v ← β₂ · v + (1 − β₂) · g²;
    /// the decoupled decay of p; u ← m / (√v + ε) (+ weightDecay · p), kept in slot 2.
    public static func update<V: RuleVector>(parameter p: inout V, gradient: V, state: inout RuleState<V>,
                                             scalars s: Scalars) {
        let g = s.maximize ? -gradient : gradient
        state[0] = state[0] * V(s.beta1) + V(s.gradientWeight) * g
        state[1] = state[1] * V(s.beta2) + V(s.oneMinusBeta2) * g * g
        if s.decouple { p = p * V(s.decayFactor) }
        var u = state[0] / (V.sqrt(state[1]) + V(s.eps))
        if s.weightDecay > 0 { u = u + V(s.weightDecay) * p }
        state[2] = u
    }
}
