/// Adadelta (Zeiler, 2012), as `torch.optim.Adadelta`.
///
/// For each parameter `p` with gradient `g`:
///
///     g ← maximize ? −g : g
///     g ← g + weightDecay · p                           (if weightDecay ≠ 0)
///     v ← ρ · v + (1 − ρ) · g²
///     Δ ← √(u + ε) / √(v + ε) · g
///     u ← ρ · u + (1 − ρ) · Δ²
///     p ← p − lr · Δ
///
/// State: `square_avg` (v), `acc_delta` (u) and `step`. Defaults are torch 2.15's.
public final class Adadelta: ElementwiseOptimizer<Adadelta.Options>, ElementwiseAlgorithm, @unchecked Sendable {
    /// Adadelta's options, with torch's defaults.
    public struct Options: OptimizerOptions, Equatable {
        /// Coefficient that scales the update before it is applied (default 1).
        public var lr: Double
        /// Decay of the running averages (default 0.9).
        public var rho: Double
        /// Added inside the square roots for numerical stability (default 1e-6).
        public var eps: Double
        /// L2 penalty added to the gradient (default 0).
        public var weightDecay: Double
        /// Maximize the objective instead of minimizing it (default false).
        public var maximize: Bool

        /// Options with torch 2.15's defaults; each argument sets the property of its name.
        public init(lr: Double = 1, rho: Double = 0.9, eps: Double = 1e-6, weightDecay: Double = 0,
                    maximize: Bool = false) {
            self.lr = lr
            self.rho = rho
            self.eps = eps
            self.weightDecay = weightDecay
            self.maximize = maximize
        }
    }

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    override class var recipe: EngineRecipe<Options>? { .elementwise(Adadelta.self) }

    static let rule = KernelRule.adadelta
    static let stateNames = ["square_avg", "acc_delta"]

    static func prepare(_ o: Options, step: Int, state: inout NoTensorState) -> (flags: UInt32, scalars: Scalars) {
        (RuleFlags.common(maximize: o.maximize, weightDecay: o.weightDecay),
         Scalars(rho: o.rho, one_minus_rho: 1 - o.rho, eps: o.eps, weight_decay: o.weightDecay, negative_lr: -o.lr))
    }
}

extension Adadelta.Options: TorchFieldOptions {
    /// Every option under torch's name, with what its value must satisfy, in the order torch
    /// checks them.
    public static let torchFields: [OptionField<Self>] = [
        .number("lr", \.lr), .number("rho", \.rho, .unitInterval), .number("eps", \.eps, .epsilon),
        .number("weight_decay", \.weightDecay, .nonNegative), .flag("maximize", \.maximize),
    ]
}
