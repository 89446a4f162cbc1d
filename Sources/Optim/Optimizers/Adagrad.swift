/// Adagrad (Duchi, Hazan & Singer, 2011), as `torch.optim.Adagrad`.
///
/// For each parameter `p` with gradient `g`, at its `t`-th update:
///
///     g ← maximize ? −g : g
///     g ← g + weightDecay · p                           (if weightDecay ≠ 0)
///     s ← s + g²                                        (s starts at initialAccumulatorValue)
///     p ← p − (lr / (1 + (t − 1) · lrDecay)) · g / (√s + ε)
///
/// State: `sum` (s) and `step`. As torch, the optimizer creates the state of every parameter it
/// is built with (`step` 0, `sum` filled), so a parameter that never gets a gradient has state
/// too; a parameter of a group added later gets its state at its first update. Every sum starts
/// at the `initialAccumulatorValue` the optimizer was built with, whatever its group says, as in
/// torch. Defaults are torch 2.15's.
public final class Adagrad: ElementwiseOptimizer<Adagrad.Options>, ElementwiseAlgorithm, @unchecked Sendable {
    /// Adagrad's options, with torch's defaults.
    public struct Options: OptimizerOptions, Equatable {
        /// Learning rate (default 1e-2).
        public var lr: Double
        /// Decay of the learning rate with the step count (default 0).
        public var lrDecay: Double
        /// L2 penalty added to the gradient (default 0).
        public var weightDecay: Double
        /// The starting value of the sum of squared gradients (default 0).
        public var initialAccumulatorValue: Double
        /// Added to the denominator for numerical stability (default 1e-10).
        public var eps: Double
        /// Maximize the objective instead of minimizing it (default false).
        public var maximize: Bool

        /// Options with torch 2.15's defaults; each argument sets the property of its name.
        public init(lr: Double = 1e-2, lrDecay: Double = 0, weightDecay: Double = 0,
                    initialAccumulatorValue: Double = 0, eps: Double = 1e-10, maximize: Bool = false) {
            self.lr = lr
            self.lrDecay = lrDecay
            self.weightDecay = weightDecay
            self.initialAccumulatorValue = initialAccumulatorValue
            self.eps = eps
            self.maximize = maximize
        }
    }

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    override class var recipe: EngineRecipe<Options>? { .elementwise(Adagrad.self) }
    static let sparseGradients = SparseGradientSupport.accepted
    static let sparseRule: KernelRule<Scalars>? = .sparseAdagrad

    static func validateSparse(_ o: Options) throws {
        guard o.weightDecay == 0 else {
            throw OptimError(.invalidOption, "weight_decay option is not compatible with sparse gradients")
        }
    }

    static let createsStateWhenBuilt = true

    static func initialValue(slot: Int, _ o: Options) -> Double { o.initialAccumulatorValue }

    static let rule = KernelRule.adagrad
    static let stateNames = ["sum"]

    static func prepare(_ o: Options, step: Int, state: inout NoTensorState) -> (flags: UInt32, scalars: Scalars) {
        let clr = o.lr / (1 + Double(step - 1) * o.lrDecay)
        return (RuleFlags.common(maximize: o.maximize, weightDecay: o.weightDecay),
                Scalars(weight_decay: o.weightDecay, negative_clr: -clr, eps: o.eps))
    }
}

extension Adagrad.Options: TorchFieldOptions {
    /// Every option under torch's name, with what its value must satisfy, in the order torch
    /// checks them.
    public static let torchFields: [OptionField<Self>] = [
        .number("lr", \.lr), .number("lr_decay", \.lrDecay, .nonNegative),
        .number("weight_decay", \.weightDecay, .nonNegative),
        .number("initial_accumulator_value", \.initialAccumulatorValue, .nonNegative),
        .number("eps", \.eps, .epsilon), .flag("maximize", \.maximize),
    ]
}
