/// Averaged stochastic gradient descent (Polyak & Juditsky, 1992), as `torch.optim.ASGD`.
///
/// For each parameter `p` with gradient `g`, at its `t`-th update, with η and μ from the
/// previous update (η₀ = lr, μ₀ = 1):
///
///     g ← maximize ? −g : g
///     g ← g + weightDecay · p                           (if weightDecay ≠ 0)
///     p ← p · (1 − λ · η)
///     p ← p − η · g
///     a ← μ = 1 ? p : a + (p − a) · μ
///     η ← lr / (1 + λ · lr · t)^α
///     μ ← 1 / max(1, t − t₀)
///
/// The average `a` (torch's `ax`) is why ASGD is used: read it with
/// `state(for: parameter)?["ax"]`. η and μ are kept rounded to Float, as torch keeps them in
/// float32 tensors. State: `ax`, `eta`, `mu` and `step`. Defaults are torch 2.15's.
public final class ASGD: ElementwiseOptimizer<ASGD.Options>, ElementwiseAlgorithm, @unchecked Sendable {
    /// ASGD's options, with torch's defaults.
    public struct Options: OptimizerOptions, Equatable {
        /// Learning rate (default 1e-2).
        public var lr: Double
        /// Decay term λ (default 1e-4).
        public var lambd: Double
        /// Power α of the learning-rate decay (default 0.75).
        public var alpha: Double
        /// The step after which averaging starts, t₀ (default 1e6).
        public var t0: Double
        /// L2 penalty added to the gradient (default 0).
        public var weightDecay: Double
        /// Maximize the objective instead of minimizing it (default false).
        public var maximize: Bool

        /// Options with torch 2.15's defaults; each argument sets the property of its name.
        public init(lr: Double = 1e-2, lambd: Double = 1e-4, alpha: Double = 0.75, t0: Double = 1e6,
                    weightDecay: Double = 0, maximize: Bool = false) {
            self.lr = lr
            self.lambd = lambd
            self.alpha = alpha
            self.t0 = t0
            self.weightDecay = weightDecay
            self.maximize = maximize
        }
    }

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    override class var recipe: EngineRecipe<Options>? { .elementwise(ASGD.self) }

    /// η and μ, rounded to Float as torch keeps them.
    struct TensorState: RuleScalarState {
        var eta: Float = 0
        var mu: Float = 1
        static let fields: [ScalarStateField<Self>] = [.float("eta", \.eta), .float("mu", \.mu)]
    }

    static let rule = KernelRule.asgd
    static let stateNames = ["ax"]

    static func initialTensorState(_ o: Options, defaults: Options) -> TensorState { TensorState(eta: Float(o.lr), mu: 1) }

    static func prepare(_ o: Options, step: Int, state: inout TensorState) -> (flags: UInt32, scalars: Scalars) {
        var flags = RuleFlags.common(maximize: o.maximize, weightDecay: o.weightDecay)
        if state.mu == 1 { flags |= RuleFlags.asgdCopyAverage }
        let eta = Double(state.eta)
        let scalars = Scalars(weight_decay: o.weightDecay, decay: 1 - o.lambd * eta, negative_eta: -eta,
                              mu: Double(state.mu))
        let t = Double(step)
        state.eta = Float(o.lr / Math.pow(1 + o.lambd * o.lr * t, o.alpha))
        state.mu = Float(1 / max(1, t - o.t0))
        return (flags, scalars)
    }
}

extension ASGD.Options: TorchFieldOptions {
    /// Every option under torch's name, with what its value must satisfy, in the order torch
    /// checks them.
    public static let torchFields: [OptionField<Self>] = [
        .number("lr", \.lr), .number("weight_decay", \.weightDecay, .nonNegative), .number("lambd", \.lambd, .nonNegative),
        .number("alpha", \.alpha, .nonNegative), .number("t0", \.t0, .finite), .flag("maximize", \.maximize),
    ]
}
