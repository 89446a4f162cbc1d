/// Adamax, the infinity-norm variant of Adam (Kingma & Ba, 2015, section 7), as
/// `torch.optim.Adamax`.
///
/// For each parameter `p` with gradient `g`, at its `t`-th update:
///
///     g ← maximize ? −g : g
///     g ← g + weightDecay · p                           (if weightDecay ≠ 0)
///     m ← m + (1 − β₁) · (g − m)
///     u ← max(β₂ · u, |g| + ε)
///     p ← p − (lr / (1 − β₁ᵗ)) · m / u
///
/// State: `exp_avg` (m), `exp_inf` (u) and `step`. Defaults are torch 2.15's.
public final class Adamax: ElementwiseOptimizer<Adamax.Options>, ElementwiseAlgorithm, @unchecked Sendable {
    /// Adamax's options, with torch's defaults.
    public struct Options: OptimizerOptions, Equatable {
        /// Learning rate (default 2e-3).
        public var lr: Double
        /// Decay rates of the first moment and of the infinity norm (default (0.9, 0.999)).
        public var betas: Pair
        /// Added to the infinity norm for numerical stability (default 1e-8).
        public var eps: Double
        /// L2 penalty added to the gradient (default 0).
        public var weightDecay: Double
        /// Maximize the objective instead of minimizing it (default false).
        public var maximize: Bool

        /// Options with torch 2.15's defaults; each argument sets the property of its name.
        public init(lr: Double = 2e-3, betas: Pair = Pair(0.9, 0.999), eps: Double = 1e-8,
                    weightDecay: Double = 0, maximize: Bool = false) {
            self.lr = lr
            self.betas = betas
            self.eps = eps
            self.weightDecay = weightDecay
            self.maximize = maximize
        }
    }

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    override class var recipe: EngineRecipe<Options>? { .elementwise(Adamax.self) }

    static let rule = KernelRule.adamax
    static let stateNames = ["exp_avg", "exp_inf"]

    static func prepare(_ o: Options, step: Int, state: inout NoTensorState) -> (flags: UInt32, scalars: Scalars) {
        let clr = o.lr / (1 - Math.pow(o.betas.first, Double(step)))
        return (RuleFlags.common(maximize: o.maximize, weightDecay: o.weightDecay),
                Scalars(one_minus_beta1: 1 - o.betas.first, beta2: o.betas.second, eps: o.eps, weight_decay: o.weightDecay,
                        negative_clr: -clr))
    }
}

extension Adamax.Options: TorchFieldOptions {
    /// Every option under torch's name, with what its value must satisfy, in the order torch
    /// checks them.
    public static let torchFields: [OptionField<Self>] = [
        .number("lr", \.lr), .number("eps", \.eps, .epsilon), .pair("betas", \.betas, .betas),
        .number("weight_decay", \.weightDecay, .nonNegative), .flag("maximize", \.maximize),
    ]
}
