/// NAdam, Adam with Nesterov momentum (Dozat, 2016), as `torch.optim.NAdam`.
///
/// For each parameter `p` with gradient `g`, at its `t`-th update:
///
///     g ← maximize ? −g : g
///     p ← p · (1 − lr · weightDecay)                     (decoupledWeightDecay)
///     g ← g + weightDecay · p                            (otherwise, if weightDecay ≠ 0)
///     μₜ ← β₁ · (1 − ½ · 0.96^(t · momentumDecay)),  Πₜ ← Πₜ₋₁ · μₜ
///     m ← m + (1 − β₁) · (g − m)
///     v ← β₂ · v + (1 − β₂) · g²
///     d ← √(v / (1 − β₂ᵗ)) + ε
///     p ← p − lr · (1 − μₜ) / (1 − Πₜ) · g / d
///     p ← p − lr · μₜ₊₁ / (1 − Πₜ · μₜ₊₁) · m / d
///
/// Π (torch's `mu_product`) is kept rounded to Float, as torch keeps it in a float32 tensor.
/// State: `exp_avg` (m), `exp_avg_sq` (v), `mu_product` and `step`. Defaults are torch 2.15's.
public final class NAdam: ElementwiseOptimizer<NAdam.Options>, ElementwiseAlgorithm, @unchecked Sendable {
    /// NAdam's options, with torch's defaults.
    public struct Options: OptimizerOptions, Equatable {
        /// Learning rate (default 2e-3).
        public var lr: Double
        /// Decay rates of the first and second moment averages (default (0.9, 0.999)).
        public var betas: Pair
        /// Added to the denominator for numerical stability (default 1e-8).
        public var eps: Double
        /// Weight decay: an L2 penalty, or decoupled decay with `decoupledWeightDecay` (default 0).
        public var weightDecay: Double
        /// How fast the momentum schedule μₜ approaches β₁ (default 4e-3).
        public var momentumDecay: Double
        /// Decay the parameter directly, as AdamW does, instead of adding an L2 term to the gradient
        /// (default false).
        public var decoupledWeightDecay: Bool
        /// Maximize the objective instead of minimizing it (default false).
        public var maximize: Bool

        /// Options with torch 2.15's defaults; each argument sets the property of its name.
        public init(lr: Double = 2e-3, betas: Pair = Pair(0.9, 0.999), eps: Double = 1e-8,
                    weightDecay: Double = 0, momentumDecay: Double = 4e-3, decoupledWeightDecay: Bool = false,
                    maximize: Bool = false) {
            self.lr = lr
            self.betas = betas
            self.eps = eps
            self.weightDecay = weightDecay
            self.momentumDecay = momentumDecay
            self.decoupledWeightDecay = decoupledWeightDecay
            self.maximize = maximize
        }
    }

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    override class var recipe: EngineRecipe<Options>? { .elementwise(NAdam.self) }

    /// The running product of the momentum coefficients, rounded to Float as torch keeps it.
    struct TensorState: RuleScalarState {
        var muProduct: Float = 1
        static let fields: [ScalarStateField<Self>] = [.float("mu_product", \.muProduct)]
    }

    static let rule = KernelRule.nadam
    static let stateNames = ["exp_avg", "exp_avg_sq"]

    static func prepare(_ o: Options, step: Int, state: inout TensorState) -> (flags: UInt32, scalars: Scalars) {
        var flags = RuleFlags.common(maximize: o.maximize, weightDecay: o.weightDecay)
        if o.weightDecay != 0 && o.decoupledWeightDecay { flags |= RuleFlags.decoupled }
        let t = Double(step)
        let beta1 = o.betas.first
        let mu = beta1 * (1 - 0.5 * Math.pow(0.96, t * o.momentumDecay))
        let muNext = beta1 * (1 - 0.5 * Math.pow(0.96, (t + 1) * o.momentumDecay))
        state.muProduct = state.muProduct * Float(mu)
        let product = Double(state.muProduct)
        let scalars = Scalars(one_minus_beta1: 1 - beta1, beta2: o.betas.second, one_minus_beta2: 1 - o.betas.second,
                              bias_correction2: 1 - Math.pow(o.betas.second, t), eps: o.eps, weight_decay: o.weightDecay,
                              decay_factor: 1 - o.lr * o.weightDecay,
                              grad_coefficient: -o.lr * (1 - mu) / (1 - product),
                              avg_coefficient: (-o.lr * muNext) / (1 - product * muNext))
        return (flags, scalars)
    }
}

extension NAdam.Options: TorchFieldOptions {
    /// Every option under torch's name, with what its value must satisfy, in the order torch
    /// checks them.
    public static let torchFields: [OptionField<Self>] = [
        .number("lr", \.lr), .number("eps", \.eps, .epsilon), .pair("betas", \.betas, .betas),
        .number("weight_decay", \.weightDecay, .nonNegative), .number("momentum_decay", \.momentumDecay, .nonNegative), .flag("decoupled_weight_decay", \.decoupledWeightDecay),
        .flag("maximize", \.maximize),
    ]
}
