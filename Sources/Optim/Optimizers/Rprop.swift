/// Rprop, resilient backpropagation (Riedmiller & Braun, 1993), as `torch.optim.Rprop`.
///
/// For each parameter `p` with gradient `g` and the previous step's gradient `g′`, element by
/// element:
///
///     g ← maximize ? −g : g
///     f ← η₊ if g · g′ > 0,  η₋ if g · g′ < 0,  1 otherwise
///     s ← clamp(s · f, stepSizes.min, stepSizes.max)    (s starts at lr)
///     g ← 0 where f = η₋
///     p ← p − sign(g) · s    (sign(NaN) = 0, as torch's)
///     g′ ← g
///
/// State: `prev` (g′), `step_size` (s) and `step`. Defaults are torch 2.15's.
public final class Rprop: ElementwiseOptimizer<Rprop.Options>, ElementwiseAlgorithm, @unchecked Sendable {
    /// Rprop's options, with torch's defaults.
    public struct Options: OptimizerOptions, Equatable {
        /// The initial step size of every element (default 1e-2).
        public var lr: Double
        /// The factors (η₋, η₊) that shrink and grow step sizes, 0 < η₋ < 1 < η₊
        /// (default (0.5, 1.2)).
        public var etas: Pair
        /// The smallest and largest step size (default (1e-6, 50)).
        public var stepSizes: Pair
        /// Maximize the objective instead of minimizing it (default false).
        public var maximize: Bool

        /// Options with torch 2.15's defaults; each argument sets the property of its name.
        public init(lr: Double = 1e-2, etas: Pair = Pair(0.5, 1.2), stepSizes: Pair = Pair(1e-6, 50),
                    maximize: Bool = false) {
            self.lr = lr
            self.etas = etas
            self.stepSizes = stepSizes
            self.maximize = maximize
        }
    }

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    override class var recipe: EngineRecipe<Options>? { .elementwise(Rprop.self) }

    static let rule = KernelRule.rprop
    static let stateNames = ["prev", "step_size"]

    static func validate(_ o: Options) throws {
        try OptionCheck.learningRate(o.lr)
        let (minus, plus) = (o.etas.first, o.etas.second)
        guard minus > 0, minus < 1, plus > 1, plus.isFinite else {
            throw OptimError(.invalidOption, "Invalid eta values: \(minus), \(plus) (must be 0 < etaminus < 1 < etaplus)")
        }
        // torch accepts any bounds (a minimum above the maximum clamps every step size to the
        // maximum); only NaN, which would poison every step size, is refused.
        guard !o.stepSizes.first.isNaN, !o.stepSizes.second.isNaN else {
            throw OptimError(.invalidOption, "Invalid step sizes: \(o.stepSizes.first), \(o.stepSizes.second) (must not be NaN)")
        }
    }

    static func initializationFlags(_ o: Options) -> UInt32 { RuleFlags.rpropInitialize }

    static func prepare(_ o: Options, step: Int, state: inout NoTensorState) -> (flags: UInt32, scalars: Scalars) {
        (o.maximize ? RuleFlags.maximize : 0,
         Scalars(eta_minus: o.etas.first, eta_plus: o.etas.second, step_size_min: o.stepSizes.first, step_size_max: o.stepSizes.second,
                 lr: o.lr))
    }
}

extension Rprop.Options: TorchFieldOptions {
    /// Every option under torch's name, with what its value must satisfy, in the order torch
    /// checks them.
    public static let torchFields: [OptionField<Self>] = [
        .number("lr", \.lr), .pair("etas", \.etas), .pair("step_sizes", \.stepSizes), .flag("maximize", \.maximize),
    ]
}
