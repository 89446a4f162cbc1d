/// Adam for row-sparse gradients, as `torch.optim.SparseAdam`: the moments and the parameter
/// change only in the rows the gradient touches (an embedding's looked-up rows).
///
/// For each parameter `p` with row-sparse gradient `g` (repeated rows summed), at its `t`-th
/// update, in every touched row:
///
///     g ← maximize ? −g : g
///     Δm ← (1 − β₁) · (g − m),    Δv ← (1 − β₂) · (g² − v)
///     p ← p − (lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ)) · (m + Δm) / (√(v + Δv) + ε)
///     m ← m + Δm,                 v ← v + Δv
///
/// Dense gradients are refused (use ``Adam``). The rows of a step spread over threads like the
/// chunks of a dense step. State: `exp_avg` (m), `exp_avg_sq` (v) and `step`, which torch keeps
/// as a plain integer. Defaults are torch 2.15's.
public final class SparseAdam: ElementwiseOptimizer<SparseAdam.Options>, ElementwiseAlgorithm, @unchecked Sendable {
    /// SparseAdam's options, with torch's defaults.
    public struct Options: OptimizerOptions, Equatable {
        /// Learning rate (default 1e-3).
        public var lr: Double
        /// Decay rates of the first and second moment averages (default (0.9, 0.999)).
        public var betas: Pair
        /// Added to the denominator for numerical stability; must be positive (default 1e-8).
        public var eps: Double
        /// Maximize the objective instead of minimizing it (default false).
        public var maximize: Bool

        /// Options with torch 2.15's defaults; each argument sets the property of its name.
        public init(lr: Double = 1e-3, betas: Pair = Pair(0.9, 0.999), eps: Double = 1e-8,
                    maximize: Bool = false) {
            self.lr = lr
            self.betas = betas
            self.eps = eps
            self.maximize = maximize
        }
    }

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    override class var recipe: EngineRecipe<Options>? { .elementwise(SparseAdam.self) }

    // The dense rule is never run: every gradient must be sparse.
    static let rule = KernelRule.sparseAdam
    static let sparseGradients = SparseGradientSupport.required
    static let sparseRule: KernelRule<Scalars>? = .sparseAdam
    static let stateNames = ["exp_avg", "exp_avg_sq"]
    static let stepIsInteger = true

    static func validate(_ o: Options) throws {
        guard o.lr.isFinite, o.lr > 0 else {
            throw OptimError(.invalidOption, "Invalid learning rate: \(o.lr) (must be finite and > 0)")
        }
        guard o.eps.isFinite, o.eps > 0 else {
            throw OptimError(.invalidOption, "Invalid epsilon value: \(o.eps) (must be finite and > 0)")
        }
        try OptionCheck.beta(o.betas.first, index: 0)
        try OptionCheck.beta(o.betas.second, index: 1)
    }

    static func prepare(_ o: Options, step: Int, state: inout NoTensorState) -> (flags: UInt32, scalars: Scalars) {
        let t = Double(step)
        let biasCorrection1 = 1 - Math.pow(o.betas.first, t)
        let biasCorrection2 = 1 - Math.pow(o.betas.second, t)
        let stepSize = o.lr * biasCorrection2.squareRoot() / biasCorrection1
        return (o.maximize ? RuleFlags.maximize : 0,
                Scalars(one_minus_beta1: 1 - o.betas.first, one_minus_beta2: 1 - o.betas.second, eps: o.eps,
                        negative_step_size: -stepSize))
    }
}

extension SparseAdam.Options: TorchFieldOptions {
    /// Every option under torch's name, with what its value must satisfy, in the order torch
    /// checks them.
    public static let torchFields: [OptionField<Self>] = [
        .number("lr", \.lr), .pair("betas", \.betas), .number("eps", \.eps), .flag("maximize", \.maximize),
    ]
}
