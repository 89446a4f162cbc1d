/// Lion, EvoLved Sign Momentum (Chen et al., 2023, "Symbolic Discovery of Optimization
/// Algorithms"), as the reference implementation `lion-pytorch` computes it.
///
/// For each parameter `p` with gradient `g`:
///
///     p ← p · (1 − lr · weightDecay)                (1 − lr · weightDecay / lr₀ with decoupledWeightDecay)
///     c ← β₁ · m + (1 − β₁) · g
///     p ← p − lr · sign(c)
///     m ← β₂ · m + (1 − β₂) · g
///
/// State: `exp_avg` (m), and `initial_lr` (lr₀: the learning rate the optimizer was built
/// with, as lion-pytorch divides by its constructor's `lr` in every group). Defaults are
/// lion-pytorch 0.2.5's: lr 1e-4, betas (0.9, 0.99), no weight decay. torch has no Lion.
/// As lion-pytorch, a learning rate of 0 is refused (also from a scheduler).
public typealias Lion = RuleOptimizer<LionRule>

/// The rule of ``Lion``.
public enum LionRule: ElementwiseRule {
    /// ``Lion``'s options, with the reference's defaults and names.
    public struct Options: TorchFieldOptions, DefaultOptions, Equatable {
        /// Learning rate (default 1e-4).
        public var lr: Double
        /// β₁ interpolates the update's direction, β₂ the momentum (default (0.9, 0.99)).
        public var betas: Pair
        /// Weight decay, applied to the parameter and scaled by the learning rate (default 0).
        public var weightDecay: Double
        /// Scale the decay by lr / lr₀ instead of lr, so that it follows a schedule but not the
        /// learning rate's size (default false).
        public var decoupledWeightDecay: Bool

        /// Options with lion-pytorch's defaults; each argument sets the property of its name.
        public init(lr: Double = 1e-4, betas: Pair = Pair(0.9, 0.99), weightDecay: Double = 0,
                    decoupledWeightDecay: Bool = false) {
            self.lr = lr
            self.betas = betas
            self.weightDecay = weightDecay
            self.decoupledWeightDecay = decoupledWeightDecay
        }

        /// lion-pytorch's defaults: lr 1e-4, betas (0.9, 0.99), no weight decay.
        public init() { self.init(lr: 1e-4) }

        /// Every option under the reference's name, with what its value must satisfy.
        public static let torchFields: [OptionField<Self>] = [
            .number("lr", \.lr), .pair("betas", \.betas, .eachInUnitInterval("beta1", "beta2")),
            .number("weight_decay", \.weightDecay, .nonNegative),
            .flag("decoupled_weight_decay", \.decoupledWeightDecay),
        ]
    }

    /// The per-step scalars, computed in `Double` by ``scalars(_:step:state:)``.
    public struct Scalars {
        var decay, negativeLR, beta1, oneMinusBeta1, beta2, oneMinusBeta2: Double
    }

    /// The optimizer's name, for messages.
    public static let name = "Lion"
    /// `exp_avg`, the momentum m.
    public static let stateNames = ["exp_avg"]

    /// Refuses a learning rate that is not finite and > 0 (lion-pytorch refuses 0), then checks
    /// the fields.
    public static func validate(_ o: Options) throws {
        try OptionCheck.learningRate(o.lr)
        guard o.lr > 0 else { throw OptimError(.invalidOption, "Invalid learning rate: 0 (Lion needs lr > 0)") }
        try o.validateFields()
    }

    /// lr₀, the learning rate the optimizer was built with.
    public struct ScalarState: RuleScalarState {
        var initialLR = 0.0
        /// lr₀ of 0, set by ``LionRule/initialScalarState(_:defaults:)``.
        public init() {}
        /// `initial_lr` in a state dict.
        public static let fields: [ScalarStateField<Self>] = [.double("initial_lr", \.initialLR)]
    }

    /// lr₀ = the learning rate the optimizer was built with (`defaults.lr`), in every group.
    public static func initialScalarState(_ options: Options, defaults: Options) -> ScalarState {
        var state = ScalarState()
        state.initialLR = defaults.lr
        return state
    }

    /// `1 − lr · weightDecay` (with `weightDecay / lr₀` when decoupled), `−lr`, the betas and
    /// `1 − β`, in `Double`.
    public static func scalars(_ o: Options, step: Int, state: inout ScalarState) -> Scalars {
        let weightDecay = o.decoupledWeightDecay ? o.weightDecay / state.initialLR : o.weightDecay
        return Scalars(decay: 1 - o.lr * weightDecay, negativeLR: -o.lr, beta1: o.betas.first,
                oneMinusBeta1: 1 - o.betas.first, beta2: o.betas.second, oneMinusBeta2: 1 - o.betas.second)
    }

    /// p ← p · (1 − lr · weightDecay); p ← p − lr · sign(β₁ · m + (1 − β₁) · g);
    /// m ← β₂ · m + (1 − β₂) · g.
    public static func update<V: RuleVector>(parameter p: inout V, gradient g: V, state: inout RuleState<V>,
                                             scalars s: Scalars) {
        p = p * V(s.decay)
        let direction = state[0] * V(s.beta1) + V(s.oneMinusBeta1) * g
        p = p + V(s.negativeLR) * V.sign(direction)
        state[0] = state[0] * V(s.beta2) + V(s.oneMinusBeta2) * g
    }
}
