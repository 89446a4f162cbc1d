/// RAdam, Adam with a rectified adaptive learning rate (Liu et al., 2020), as `torch.optim.RAdam`.
///
/// For each parameter `p` with gradient `g`, at its `t`-th update:
///
///     g ← maximize ? −g : g
///     p ← p · (1 − lr · weightDecay)                     (decoupledWeightDecay)
///     g ← g + weightDecay · p                            (otherwise, if weightDecay ≠ 0)
///     m ← m + (1 − β₁) · (g − m)
///     v ← β₂ · v + (1 − β₂) · g²
///     ρ∞ = 2 / (1 − β₂) − 1,   ρₜ = ρ∞ − 2t · β₂ᵗ / (1 − β₂ᵗ)
///     u ← m / (1 − β₁ᵗ) · lr
///     u ← u · √(1 − β₂ᵗ) / (√v + ε) · rₜ                 (only when ρₜ > 5)
///     p ← p − u
///
/// with rₜ = √((ρₜ − 4)(ρₜ − 2) ρ∞ / ((ρ∞ − 4)(ρ∞ − 2) ρₜ)). While ρₜ ≤ 5 the variance of the
/// adaptive rate is intractable and the step is plain momentum SGD. State: `exp_avg` (m),
/// `exp_avg_sq` (v) and `step`. Defaults are torch 2.15's.
public final class RAdam: ElementwiseOptimizer<RAdam.Options>, ElementwiseAlgorithm, @unchecked Sendable {
    /// RAdam's options, with torch's defaults.
    public struct Options: OptimizerOptions, Equatable {
        /// Learning rate (default 1e-3).
        public var lr: Double
        /// Decay rates of the first and second moment averages (default (0.9, 0.999)).
        public var betas: Pair
        /// Added to the denominator for numerical stability (default 1e-8).
        public var eps: Double
        /// Weight decay: an L2 penalty, or decoupled decay with `decoupledWeightDecay` (default 0).
        public var weightDecay: Double
        /// Decay the parameter directly, as AdamW does, instead of adding an L2 term to the gradient
        /// (default false).
        public var decoupledWeightDecay: Bool
        /// Maximize the objective instead of minimizing it (default false).
        public var maximize: Bool

        /// Options with torch 2.15's defaults; each argument sets the property of its name.
        public init(lr: Double = 1e-3, betas: Pair = Pair(0.9, 0.999), eps: Double = 1e-8,
                    weightDecay: Double = 0, decoupledWeightDecay: Bool = false, maximize: Bool = false) {
            self.lr = lr
            self.betas = betas
            self.eps = eps
            self.weightDecay = weightDecay
            self.decoupledWeightDecay = decoupledWeightDecay
            self.maximize = maximize
        }
    }

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    override class var recipe: EngineRecipe<Options>? { .elementwise(RAdam.self) }

    static let rule = KernelRule.radam
    static let stateNames = ["exp_avg", "exp_avg_sq"]

    static func prepare(_ o: Options, step: Int, state: inout NoTensorState) -> (flags: UInt32, scalars: Scalars) {
        var flags = RuleFlags.common(maximize: o.maximize, weightDecay: o.weightDecay)
        if o.weightDecay != 0 && o.decoupledWeightDecay { flags |= RuleFlags.decoupled }
        let t = Double(step)
        let (beta1, beta2) = (o.betas.first, o.betas.second)
        let biasCorrection1 = 1 - Math.pow(beta1, t)
        let biasCorrection2 = 1 - Math.pow(beta2, t)
        let rhoInfinity = 2 / (1 - beta2) - 1
        let rho = rhoInfinity - 2 * t * Math.pow(beta2, t) / biasCorrection2
        var rectification = 0.0
        if rho > 5 {
            flags |= RuleFlags.radamRectify
            rectification = Math.pow((rho - 4) * (rho - 2) * rhoInfinity / ((rhoInfinity - 4) * (rhoInfinity - 2) * rho), 0.5)
        }
        let scalars = Scalars(one_minus_beta1: 1 - beta1, beta2: beta2, one_minus_beta2: 1 - beta2,
                              bias_correction1: biasCorrection1, lr: o.lr,
                              bias_correction2_sqrt: Math.pow(biasCorrection2, 0.5), eps: o.eps,
                              rectification: rectification, weight_decay: o.weightDecay,
                              decay_factor: 1 - o.lr * o.weightDecay)
        return (flags, scalars)
    }
}

extension RAdam.Options: TorchFieldOptions {
    /// Every option under torch's name, with what its value must satisfy, in the order torch
    /// checks them.
    public static let torchFields: [OptionField<Self>] = [
        .number("lr", \.lr), .number("eps", \.eps, .epsilon), .pair("betas", \.betas, .betas),
        .number("weight_decay", \.weightDecay, .nonNegative), .flag("decoupled_weight_decay", \.decoupledWeightDecay), .flag("maximize", \.maximize),
    ]
}
