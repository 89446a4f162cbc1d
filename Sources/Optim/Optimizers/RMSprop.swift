/// RMSprop (Hinton, 2012), with the centered variant of Graves (2013), as `torch.optim.RMSprop`.
///
/// For each parameter `p` with gradient `g`:
///
///     g ← maximize ? −g : g
///     g ← g + weightDecay · p                           (if weightDecay ≠ 0)
///     v ← α · v + (1 − α) · g²
///     ḡ ← ḡ + (1 − α) · (g − ḡ)                         (centered)
///     d ← √(v − ḡ²) + ε   (centered),   d ← √v + ε   (otherwise)
///     b ← momentum · b + g / d,  p ← p − lr · b          (if momentum > 0)
///     p ← p − lr · g / d                                (otherwise)
///
/// State: `square_avg` (v), `momentum_buffer` (b, with momentum), `grad_avg` (ḡ, centered),
/// and `step`. Defaults are torch 2.15's.
public final class RMSprop: ElementwiseOptimizer<RMSprop.Options>, ElementwiseAlgorithm, @unchecked Sendable {
    /// RMSprop's options, with torch's defaults.
    public struct Options: OptimizerOptions, Equatable {
        /// Learning rate (default 1e-2).
        public var lr: Double
        /// Smoothing constant of the squared-gradient average (default 0.99).
        public var alpha: Double
        /// Added to the denominator for numerical stability (default 1e-8).
        public var eps: Double
        /// L2 penalty added to the gradient (default 0).
        public var weightDecay: Double
        /// Momentum factor (default 0).
        public var momentum: Double
        /// Normalize by an estimate of the gradient's variance instead of its second moment
        /// (default false).
        public var centered: Bool
        /// Maximize the objective instead of minimizing it (default false).
        public var maximize: Bool

        /// Options with torch 2.15's defaults; each argument sets the property of its name.
        public init(lr: Double = 1e-2, alpha: Double = 0.99, eps: Double = 1e-8, weightDecay: Double = 0,
                    momentum: Double = 0, centered: Bool = false, maximize: Bool = false) {
            self.lr = lr
            self.alpha = alpha
            self.eps = eps
            self.weightDecay = weightDecay
            self.momentum = momentum
            self.centered = centered
            self.maximize = maximize
        }
    }

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    override class var recipe: EngineRecipe<Options>? { .elementwise(RMSprop.self) }

    static let rule = KernelRule.rmsprop
    static let stateNames = ["square_avg", "momentum_buffer", "grad_avg"]

    static func usesSlot(_ slot: Int, _ o: Options) -> Bool {
        slot == 0 || (slot == 1 && o.momentum > 0) || (slot == 2 && o.centered)
    }

    static func prepare(_ o: Options, step: Int, state: inout NoTensorState) -> (flags: UInt32, scalars: Scalars) {
        var flags = RuleFlags.common(maximize: o.maximize, weightDecay: o.weightDecay)
        if o.momentum > 0 { flags |= RuleFlags.rmspropMomentum }
        if o.centered { flags |= RuleFlags.rmspropCentered }
        return (flags, Scalars(alpha: o.alpha, one_minus_alpha: 1 - o.alpha, eps: o.eps, weight_decay: o.weightDecay,
                               momentum: o.momentum, negative_lr: -o.lr))
    }
}

extension RMSprop.Options: TorchFieldOptions {
    /// Every option under torch's name, with what its value must satisfy, in the order torch
    /// checks them.
    public static let torchFields: [OptionField<Self>] = [
        .number("lr", \.lr), .number("eps", \.eps, .epsilon), .number("momentum", \.momentum, .nonNegative),
        .number("weight_decay", \.weightDecay, .nonNegative), .number("alpha", \.alpha, .nonNegative),
        .flag("centered", \.centered),
        .flag("maximize", \.maximize),
    ]
}
