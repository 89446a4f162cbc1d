/// Lion, EvoLved Sign Momentum (Chen et al., 2023, "Symbolic Discovery of Optimization
/// Algorithms"), as the reference implementation `lion-pytorch` computes it.
///
/// For each parameter `p` with gradient `g`:
///
///     p ← p · (1 − lr · weightDecay)
///     c ← β₁ · m + (1 − β₁) · g
///     p ← p − lr · sign(c)
///     m ← β₂ · m + (1 − β₂) · g
///
/// State: `exp_avg` (m). Defaults are lion-pytorch's: lr 1e-4, betas (0.9, 0.99), no weight
/// decay. torch has no Lion.
public typealias Lion = RuleOptimizer<LionRule>

/// The rule of ``Lion``.
public enum LionRule: ElementwiseRule {
    public struct Options: TorchFieldOptions, DefaultOptions, Equatable {
        /// Learning rate (default 1e-4).
        public var lr: Double
        /// β₁ interpolates the update's direction, β₂ the momentum (default (0.9, 0.99)).
        public var betas: Betas
        /// Decoupled weight decay, scaled by the learning rate (default 0).
        public var weightDecay: Double

        public init(lr: Double = 1e-4, betas: Betas = Betas(0.9, 0.99), weightDecay: Double = 0) {
            self.lr = lr
            self.betas = betas
            self.weightDecay = weightDecay
        }

        public init() { self.init(lr: 1e-4) }

        public static let torchFields: [OptionField<Self>] = [
            .number("lr", \.lr), .betas("betas", \.betas), .number("weight_decay", \.weightDecay),
        ]
    }

    public struct Scalars {
        var decay, negativeLR, beta1, oneMinusBeta1, beta2, oneMinusBeta2: Double
    }

    public static let name = "Lion"
    public static let stateNames = ["exp_avg"]

    public static func validate(_ o: Options) throws {
        try OptionCheck.learningRate(o.lr)
        try OptionCheck.unitInterval(o.betas.first, "beta1")
        try OptionCheck.unitInterval(o.betas.second, "beta2")
        try OptionCheck.nonNegative(o.weightDecay, "weight_decay")
    }

    public static func scalars(_ o: Options, step: Int, state: inout NoScalarState) -> Scalars {
        Scalars(decay: 1 - o.lr * o.weightDecay, negativeLR: -o.lr, beta1: o.betas.first,
                oneMinusBeta1: 1 - o.betas.first, beta2: o.betas.second, oneMinusBeta2: 1 - o.betas.second)
    }

    public static func update<V: RuleVector>(parameter p: inout V, gradient g: V, state: inout RuleState<V>,
                                             scalars s: Scalars) {
        p = p * V(s.decay)
        let direction = state[0] * V(s.beta1) + V(s.oneMinusBeta1) * g
        p = p + V(s.negativeLR) * V.sign(direction)
        state[0] = state[0] * V(s.beta2) + V(s.oneMinusBeta2) * g
    }
}
