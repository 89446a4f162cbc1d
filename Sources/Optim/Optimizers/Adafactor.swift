/// Adafactor (Shazeer & Stern, 2018), as `torch.optim.Adafactor`: second moments kept as row
/// and column factors for parameters of two or more dimensions, a relative step size from the
/// parameter's RMS, and update clipping.
///
/// For each parameter `p` with gradient `g`, at its `t`-th update (torch's single-tensor path):
///
///     g ← maximize ? −g : g
///     β̂ ← t^beta2Decay                                  (the weight of the new statistics)
///     ρ ← min(lr, 1 / √t)
///     α ← max(ε₂, RMS(p)) · ρ                          (RMS of p before weight decay)
///     p ← p · (1 − lr · weightDecay)
///     if p has 2+ dimensions (factored over the last two, R rows and C columns):
///         R ← R + β̂ · (mean(g², over columns) − R)      row_var, shape [..., R, 1]
///         C ← C + β̂ · (mean(g², over rows) − C)         col_var, shape [..., 1, C]
///         V̂ ← R · C / max(mean(R), ε₁)
///     else:
///         V ← V + β̂ · (g² − V)                          variance
///         V̂ ← V
///     U ← g / √max(V̂, ε₁²)
///     p ← p − α / max(1, RMS(U) / d) · U
///
/// `ε₁` defaults to the machine epsilon of the parameter's dtype. The math runs in the
/// storage's math type (see ``DType``), and every intermediate tensor of torch's path is rounded
/// to the storage type as torch stores it; the norms and the row and column sums of squares
/// accumulate in `Double` in a fixed order (torch accumulates in the math type), so results can
/// differ from torch's in the last place and are the same bits for every thread count, backend
/// and tier. State: `row_var` and `col_var` (factored) or `variance`, and `step`. Defaults are
/// torch 2.15's.
///
/// Deviations from torch: with `eps.0` nil torch takes the epsilon of the first parameter of
/// the group that has a gradient for the whole group; here each parameter takes its own
/// dtype's. A parameter with no elements keeps its (empty) state and counts its steps, where
/// torch fails with a division by zero.
public final class Adafactor: PerTensorOptimizer<Adafactor.Options>, @unchecked Sendable {
    /// Options of Adafactor, with torch's defaults.
    public struct Options: OptimizerOptions, Equatable {
        /// The largest relative step size ρ, and the weight decay's scale (default 1e-2).
        public var lr: Double
        /// The exponent of the decay of the second-moment averages, <= 0 (default −0.8).
        public var beta2Decay: Double
        /// ε₁, the floor of the variance estimate (nil: the dtype's machine epsilon), and ε₂,
        /// the floor of the parameter's RMS in the step size (default (nil, 1e-3)).
        public var eps: (Double?, Double)
        /// The clipping threshold of the update's RMS, >= 1 (default 1).
        public var d: Double
        /// Decoupled weight decay, scaled by lr (default 0).
        public var weightDecay: Double
        /// Maximize the objective instead of minimizing it (default false).
        public var maximize: Bool

        /// Options with torch 2.15's defaults; each argument sets the property of its name.
        public init(lr: Double = 1e-2, beta2Decay: Double = -0.8, eps: (Double?, Double) = (nil, 1e-3),
                    d: Double = 1, weightDecay: Double = 0, maximize: Bool = false) {
            self.lr = lr
            self.beta2Decay = beta2Decay
            self.eps = eps
            self.d = d
            self.weightDecay = weightDecay
            self.maximize = maximize
        }

        /// Equal when every option is, `eps`'s two items included.
        public static func == (a: Options, b: Options) -> Bool {
            a.lr == b.lr && a.beta2Decay == b.beta2Decay && a.eps.0 == b.eps.0 && a.eps.1 == b.eps.1
                && a.d == b.d && a.weightDecay == b.weightDecay && a.maximize == b.maximize
        }
    }

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    override class var recipe: EngineRecipe<Options>? { .perTensor(AdafactorAlgorithm.self) }

    /// The machine epsilon of `dtype`: ε₁ when the options leave it nil.
    public static func machineEpsilon(_ dtype: DType) -> Double {
        switch dtype {
        case .float32: Double(Float.ulpOfOne)
        case .float64: Double.ulpOfOne
        case .float16: 0x1p-10
        case .bfloat16: 0x1p-7
        }
    }
}

enum AdafactorAlgorithm: PerTensorAlgorithm {
    typealias Options = Adafactor.Options
    typealias Job = AdafactorJob

    static let stateNames = ["row_var", "col_var", "variance"]
    static let keepsStepCount = true
    static let optionFields: [OptionField<Options>] = [
        .number("lr", \.lr), .number("beta2_decay", \.beta2Decay), .number("d", \.d),
        .number("weight_decay", \.weightDecay), .flag("maximize", \.maximize),
    ]

    /// torch's checks, in its wording; NaN and infinities are refused too.
    static func validate(_ o: Options) throws {
        try OptionCheck.shouldBeNonNegative(o.lr, "Learning rate")
        try OptionCheck.require(o.beta2Decay.isFinite && o.beta2Decay <= 0,
                                "beta2_decay should be <= 0 but is: \(o.beta2Decay) (and finite)")
        if let eps1 = o.eps.0 { try OptionCheck.shouldBeNonNegative(eps1, "epsilon1") }
        try OptionCheck.shouldBeNonNegative(o.eps.1, "epsilon2")
        try OptionCheck.require(o.d.isFinite && o.d >= 1, "Clipping threshold d should be >= 1 but is: \(o.d) (and finite)")
        try OptionCheck.shouldBeNonNegative(o.weightDecay, "weight_decay")
    }

    static func check(parameter: Tensor, index: Int) throws {}

    static func stateShape(slot: Int, parameterShape shape: [Int]) -> [Int]? {
        let factored = shape.count >= 2
        switch slot {
        case 0: return factored ? Array(shape.dropLast()) + [1] : nil
        case 1: return factored ? Array(shape.dropLast(2)) + [1, shape[shape.count - 1]] : nil
        default: return factored ? nil : shape
        }
    }

    static func scratchBytes(parameterShape shape: [Int]) -> Int {
        shape.count >= 2 ? Kernels.adafactorScratchBytes(rows: shape[shape.count - 2], cols: shape[shape.count - 1]) : 0
    }

    /// Three passes over the gradient and one over the parameter.
    static func work(parameterShape shape: [Int], options: Options) -> Int { 2 * shape.reduce(1, *) }

    static func kernel(dtype: DType, isa: InstructionSet) -> SegmentFunction? {
        Kernels.adafactorKernel(dtype: dtype, isa: isa)
    }

    /// The step's scalars in `Double`, as torch computes them in Python.
    static func job(_ o: Options, step: Int, parameter: Tensor, scratch: UnsafePointer<ScratchPool>) -> Job {
        let t = Double(step)
        let inverseRoot = 1 / Math.pow(t, 0.5)
        let shape = parameter.shape
        let factored = shape.count >= 2
        var flags: UInt32 = 0
        if o.maximize { flags |= Kernels.adafactorMaximize }
        if o.weightDecay != 0 { flags |= Kernels.adafactorWeightDecay }
        return Job(count: Int64(parameter.count),
                   batches: Int64(factored ? shape.dropLast(2).reduce(1, *) : 1),
                   rows: Int64(factored ? shape[shape.count - 2] : 0),
                   cols: Int64(factored ? shape[shape.count - 1] : parameter.count),
                   one_minus_beta2: Math.pow(t, o.beta2Decay),
                   rho: inverseRoot < o.lr ? inverseRoot : o.lr,
                   eps1: o.eps.0 ?? Adafactor.machineEpsilon(parameter.dtype),
                   eps2: o.eps.1,
                   decay_factor: 1 - o.lr * o.weightDecay,
                   d: o.d, flags: flags, reserved: 0, scratch: scratch)
    }
}

extension Adafactor.Options: TorchNamedOptions {
    /// The options by torch's names; `eps` is a list whose first item may be `None`.
    public var torchValues: [String: StateValue] {
        var values = AdafactorAlgorithm.optionFields.torchValues(of: self)
        values["eps"] = .list([eps.0.map(StateValue.number) ?? .null, .number(eps.1)])
        return values
    }

    /// `eps` is torch's pair whose first item may be None.
    public func applying(torchValues values: [String: StateValue]) throws -> Self {
        var options = try AdafactorAlgorithm.optionFields.options(from: values, base: self)
        if let value = values["eps"] {
            guard case .list(let items) = value, items.count == 2, let second = items[1].doubleValue else {
                throw OptimError(.invalidArgument, "option eps is \(value); it must be a pair (None or a number, a number)")
            }
            if case .null = items[0] {
                options.eps = (nil, second)
            } else if let first = items[0].doubleValue {
                options.eps = (first, second)
            } else {
                throw OptimError(.invalidArgument, "option eps is \(value); its first item must be None or a number")
            }
        }
        return options
    }
}
