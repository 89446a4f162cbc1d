/// Muon (Jordan et al., 2024), as `torch.optim.Muon`: momentum, orthogonalized by a
/// Newton–Schulz iteration, for 2-D parameters (the weights of hidden layers; give biases,
/// embeddings and other parameters to another optimizer, such as ``AdamW``).
///
/// For each parameter `p` (A × B) with gradient `g`:
///
///     m ← m + (1 − momentum) · (g − m)                 momentum_buffer
///     u ← nesterov ? g + momentum · (m − g) : m
///     X ← bfloat16(u), transposed when A > B; X ← X / max(‖X‖, eps)
///     nsSteps times:  G ← X Xᵀ;  X ← a · X + (b · G + c · G G) X      (a, b, c) = nsCoefficients
///     p ← p · (1 − lr · weightDecay)
///     p ← p − lr · ratio(A, B) · X  (transposed back)
///
/// `ratio` is `adjustLR`'s: `original` (the default) √max(1, A/B), `matchRMSAdamW`
/// 0.2 √max(A, B), `spectralUnclamped` √(A/B).
///
/// As torch, the iteration runs on bfloat16 matrices: each product accumulates in `Float`, in
/// order of the inner index, and is rounded to bfloat16 after torch's `addmm` epilogue
/// (β·C + α·AB in `Float`, β·C fused into the add: one rounding); the norm accumulates in
/// `Double`. The momentum and the parameter's
/// update run in the storage's math type. Results are the same bits for every thread count,
/// backend and tier; torch's own matrix products (which depend on the BLAS and the sizes) may
/// differ in rare roundings. Defaults are torch 2.15's. Deviations: torch refuses
/// `nsSteps >= 100` only when it steps, and accepts a negative count or eps; both are refused
/// here at construction.
public final class Muon: PerTensorOptimizer<Muon.Options>, @unchecked Sendable {
    /// How the learning rate scales with the shape A × B of a parameter (torch's `adjust_lr_fn`).
    public enum LRAdjustment: String, CaseIterable, Sendable {
        /// √max(1, A/B), Keller Jordan's original scaling (torch's default, `None`).
        case original
        /// 0.2 √max(A, B), which matches the RMS of AdamW's update (Liu et al., 2025).
        case matchRMSAdamW = "match_rms_adamw"
        /// √(A/B), Bernstein's spectral scaling without the clamp.
        case spectralUnclamped = "spectral_unclamped"

        /// The factor of the learning rate for a parameter of `rows` × `cols`.
        public func ratio(rows: Int, cols: Int) -> Double {
            let a = Double(rows), b = Double(cols)
            switch self {
            case .original: return (max(1, a / b)).squareRoot()
            case .matchRMSAdamW: return 0.2 * max(a, b).squareRoot()
            case .spectralUnclamped: return (a / b).squareRoot()
            }
        }
    }

    /// Options of Muon, with torch's defaults.
    public struct Options: OptimizerOptions, Equatable {
        /// Learning rate (default 1e-3).
        public var lr: Double
        /// Decoupled weight decay, scaled by lr (default 0.1).
        public var weightDecay: Double
        /// Momentum factor (default 0.95).
        public var momentum: Double
        /// Nesterov momentum (default true).
        public var nesterov: Bool
        /// The coefficients (a, b, c) of the quintic Newton–Schulz polynomial (default
        /// (3.4445, −4.775, 2.0315)).
        public var nsCoefficients: (Double, Double, Double)
        /// The floor of the norm the matrix is divided by (default 1e-7).
        public var eps: Double
        /// Newton–Schulz iterations, 0 to 99 (default 5).
        public var nsSteps: Int
        /// The learning-rate scaling by shape; nil is torch's `None`, which is `.original`
        /// (default nil).
        public var adjustLR: LRAdjustment?

        /// Options with torch 2.15's defaults; each argument sets the property of its name.
        public init(lr: Double = 1e-3, weightDecay: Double = 0.1, momentum: Double = 0.95, nesterov: Bool = true,
                    nsCoefficients: (Double, Double, Double) = (3.4445, -4.775, 2.0315), eps: Double = 1e-7,
                    nsSteps: Int = 5, adjustLR: LRAdjustment? = nil) {
            self.lr = lr
            self.weightDecay = weightDecay
            self.momentum = momentum
            self.nesterov = nesterov
            self.nsCoefficients = nsCoefficients
            self.eps = eps
            self.nsSteps = nsSteps
            self.adjustLR = adjustLR
        }

        /// Equal when every option is, the three Newton–Schulz coefficients included.
        public static func == (a: Options, b: Options) -> Bool {
            a.lr == b.lr && a.weightDecay == b.weightDecay && a.momentum == b.momentum && a.nesterov == b.nesterov
                && a.nsCoefficients == b.nsCoefficients && a.eps == b.eps && a.nsSteps == b.nsSteps
                && a.adjustLR == b.adjustLR
        }
    }

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    override class var recipe: EngineRecipe<Options>? { .perTensor(MuonAlgorithm.self) }
}

enum MuonAlgorithm: PerTensorAlgorithm {
    typealias Options = Muon.Options
    typealias Job = MuonJob

    static let stateNames = ["momentum_buffer"]
    static let keepsStepCount = false
    static let optionFields: [OptionField<Options>] = [
        .number("lr", \.lr), .number("weight_decay", \.weightDecay), .number("momentum", \.momentum),
        .flag("nesterov", \.nesterov), .number("eps", \.eps),
    ]

    static func validate(_ o: Options) throws {
        try OptionCheck.shouldBeNonNegative(o.lr, "Learning rate")
        try OptionCheck.shouldBeNonNegative(o.momentum, "momentum")
        try OptionCheck.shouldBeNonNegative(o.weightDecay, "weight decay")
        try OptionCheck.epsilon(o.eps)
        guard (0..<100).contains(o.nsSteps) else {
            throw OptimError(.invalidOption, """
                Invalid ns_steps value: \(o.nsSteps) (must be in 0..<100: torch refuses 100 or more for \
                computational efficiency)
                """)
        }
        let (a, b, c) = o.nsCoefficients
        try OptionCheck.require(a.isFinite && b.isFinite && c.isFinite, "Invalid ns_coefficients: (\(a), \(b), \(c)) (must be finite)")
    }

    static func check(parameter: Tensor, index: Int) throws {
        guard parameter.shape.count == 2 else {
            throw OptimError(.invalidArgument, """
                Muon only supports 2-D parameters, but parameter \(index) has shape \(parameter.shape); \
                optimize it with another optimizer, such as AdamW
                """)
        }
    }

    static func stateShape(slot: Int, parameterShape shape: [Int]) -> [Int]? { shape }

    static func scratchBytes(parameterShape shape: [Int]) -> Int {
        Kernels.muonScratchBytes(rows: shape[0], cols: shape[1])
    }

    /// The matrix products of the iteration dominate: about 2r²c + r³ multiply-adds per
    /// iteration (r ≤ c the extents), some ten to an Adam element's time.
    static func work(parameterShape shape: [Int], options: Options) -> Int {
        let r = min(shape[0], shape[1]), c = max(shape[0], shape[1])
        return r * c + options.nsSteps * (2 * r * r * c + r * r * r) / 10
    }

    static func kernel(dtype: DType, isa: InstructionSet) -> SegmentFunction? {
        Kernels.muonKernel(dtype: dtype, isa: isa)
    }

    static func job(_ o: Options, step: Int, parameter: Tensor, scratch: UnsafePointer<ScratchPool>) -> Job {
        let rows = parameter.shape[0], cols = parameter.shape[1]
        let ratio = (o.adjustLR ?? .original).ratio(rows: rows, cols: cols)
        return Job(rows: Int64(rows), cols: Int64(cols), one_minus_momentum: 1 - o.momentum, momentum: o.momentum,
                   a: o.nsCoefficients.0, b: o.nsCoefficients.1, c: o.nsCoefficients.2, eps: o.eps,
                   decay_factor: 1 - o.lr * o.weightDecay, negative_lr: -(o.lr * ratio), ns_steps: Int32(o.nsSteps),
                   flags: o.nesterov ? Kernels.muonNesterov : 0, scratch: scratch)
    }
}

extension Muon.Options: TorchNamedOptions {
    /// The options by torch's names: `ns_coefficients` a list of three numbers, `adjust_lr_fn` a
    /// name or `None`.
    public var torchValues: [String: StateValue] {
        var values = MuonAlgorithm.optionFields.torchValues(of: self)
        values["ns_coefficients"] = .list([.number(nsCoefficients.0), .number(nsCoefficients.1),
                                           .number(nsCoefficients.2)])
        values["ns_steps"] = .integer(nsSteps)
        values["adjust_lr_fn"] = adjustLR.map { .string($0.rawValue) } ?? .null
        return values
    }

    /// `ns_coefficients` is a triple, `ns_steps` an integer, `adjust_lr_fn` a name or None.
    public func applying(torchValues values: [String: StateValue]) throws -> Self {
        var options = try MuonAlgorithm.optionFields.options(from: values, base: self)
        if let value = values["ns_coefficients"] {
            guard case .list(let items) = value, items.count == 3,
                  let a = items[0].doubleValue, let b = items[1].doubleValue, let c = items[2].doubleValue else {
                throw OptimError(.invalidArgument, "option ns_coefficients is \(value); it must be three numbers")
            }
            options.nsCoefficients = (a, b, c)
        }
        if let value = values["ns_steps"] {
            guard let steps = value.doubleValue, steps == steps.rounded(), abs(steps) < 1e9 else {
                throw OptimError(.invalidArgument, "option ns_steps is \(value); it must be an integer")
            }
            options.nsSteps = Int(steps)
        }
        if let value = values["adjust_lr_fn"] {
            switch value {
            case .null: options.adjustLR = nil
            case .string(let name):
                guard let adjustment = Muon.LRAdjustment(rawValue: name) else {
                    throw OptimError(.invalidOption, """
                        Adjust learning rate function \(name) is not supported; use \
                        \(Muon.LRAdjustment.allCases.map(\.rawValue).joined(separator: ", ")) or None
                        """)
                }
                options.adjustLR = adjustment
            default:
                throw OptimError(.invalidArgument, "option adjust_lr_fn is \(value); it must be a name or None")
            }
        }
        return options
    }
}
