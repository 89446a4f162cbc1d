/// Adam (Kingma & Ba, 2015), with AMSGrad (Reddi et al., 2018) and optional decoupled weight
/// decay (Loshchilov & Hutter, 2019), as `torch.optim.Adam`.
///
/// For each parameter `p` with gradient `g`, at its `t`-th update:
///
///     g ← maximize ? −g : g
///     p ← p · (1 − lr · weightDecay)                     (decoupledWeightDecay)
///     g ← g + weightDecay · p                            (otherwise, if weightDecay ≠ 0)
///     m ← m + (1 − β₁) · (g − m)
///     v ← β₂ · v + (1 − β₂) · g²
///     v̂ ← amsgrad ? (vmax ← max(vmax, v)) : v
///     p ← p − (lr / (1 − β₁ᵗ)) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
///
/// Bias corrections and step sizes are computed per tensor in `Double`, the element math in
/// the storage's math type (see ``DType``), operation by operation without fused
/// multiply-add. State: `exp_avg` (m), `exp_avg_sq` (v), `max_exp_avg_sq` (vmax, with
/// amsgrad) and the update count `step`. Defaults are torch 2.15's.
public final class Adam: ElementwiseOptimizer<Adam.Options>, ElementwiseAlgorithm, @unchecked Sendable {
    /// Options of Adam and AdamW, with torch's defaults for Adam.
    public struct Options: OptimizerOptions, Equatable {
        /// Learning rate (default 1e-3).
        public var lr: Double
        /// Decay rates of the first and second moment averages (default (0.9, 0.999)).
        public var betas: Pair
        /// Added to the denominator for numerical stability (default 1e-8).
        public var eps: Double
        /// Weight decay: an L2 penalty, or decoupled decay with `decoupledWeightDecay` (default 0).
        public var weightDecay: Double
        /// Use the maximum of past second moments (default false).
        public var amsgrad: Bool
        /// Maximize the objective instead of minimizing it (default false).
        public var maximize: Bool
        /// Decay the parameter directly, as AdamW, instead of adding an L2 term to the gradient
        /// (default false).
        public var decoupledWeightDecay: Bool

        /// Options with torch 2.15's defaults; each argument sets the property of its name.
        public init(lr: Double = 1e-3, betas: Pair = Pair(0.9, 0.999), eps: Double = 1e-8,
                    weightDecay: Double = 0, amsgrad: Bool = false, maximize: Bool = false,
                    decoupledWeightDecay: Bool = false) {
            self.lr = lr
            self.betas = betas
            self.eps = eps
            self.weightDecay = weightDecay
            self.amsgrad = amsgrad
            self.maximize = maximize
            self.decoupledWeightDecay = decoupledWeightDecay
        }
    }

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    override class var recipe: EngineRecipe<Options>? { .elementwise(Adam.self) }

    static let rule = KernelRule.adam
    static let stateNames = ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]

    static func usesSlot(_ slot: Int, _ o: Options) -> Bool { slot < 2 || o.amsgrad }

    /// torch's per-tensor scalars, in `Double` as torch computes them in Python.
    static func prepare(_ o: Options, step: Int, state: inout NoTensorState) -> (flags: UInt32, scalars: Scalars) {
        var flags: UInt32 = 0
        if o.maximize { flags |= AdamFlags.maximize }
        if o.weightDecay != 0 {
            flags |= AdamFlags.weightDecay
            if o.decoupledWeightDecay { flags |= AdamFlags.decoupled }
        }
        if o.amsgrad { flags |= AdamFlags.amsgrad }
        let t = Double(step)
        let biasCorrection1 = 1 - Math.pow(o.betas.first, t)
        let biasCorrection2 = 1 - Math.pow(o.betas.second, t)
        return (flags, Scalars(one_minus_beta1: 1 - o.betas.first, beta2: o.betas.second, one_minus_beta2: 1 - o.betas.second,
                               eps: o.eps, weight_decay: o.weightDecay, decay_factor: 1 - o.lr * o.weightDecay,
                               negative_step_size: -(o.lr / biasCorrection1),
                               bias_correction2_sqrt: Math.pow(biasCorrection2, 0.5)))
    }
}

/// AdamW (Loshchilov & Hutter, 2019), as `torch.optim.AdamW`: ``Adam`` with decoupled weight
/// decay, whose default is 1e-2.
///
///     p ← p · (1 − lr · weightDecay), then the Adam update of ``Adam``.
public final class AdamW: ElementwiseOptimizer<AdamW.Options>, ElementwiseAlgorithm, @unchecked Sendable {
    /// ``Adam``'s options; ``AdamW`` refuses those whose `decoupledWeightDecay` is false.
    public typealias Options = Adam.Options

    /// AdamW's defaults: Adam's, with `weightDecay` 1e-2 and `decoupledWeightDecay` true.
    public static let defaultOptions = Options(weightDecay: 1e-2, decoupledWeightDecay: true)

    override class var recipe: EngineRecipe<Options>? { .elementwise(AdamW.self) }

    // Adam's rule with AdamW's check: every group, at construction, through `setOptions` or from
    // a state dict, decouples its weight decay.
    static let rule = KernelRule.adam
    static let stateNames = Adam.stateNames

    static func validate(_ o: Options) throws {
        guard o.decoupledWeightDecay else {
            throw OptimError(.invalidOption, "AdamW always decouples weight decay; use Adam for an L2 penalty")
        }
        try Adam.validate(o)
    }

    static func usesSlot(_ slot: Int, _ o: Options) -> Bool { Adam.usesSlot(slot, o) }

    static func prepare(_ o: Options, step: Int, state: inout NoTensorState) -> (flags: UInt32, scalars: Scalars) {
        Adam.prepare(o, step: step, state: &state)
    }
}

extension Adam.Options: TorchFieldOptions {
    /// Every option under torch's name, with what its value must satisfy, in the order torch
    /// checks them.
    public static let torchFields: [OptionField<Self>] = [
        .number("lr", \.lr), .number("eps", \.eps, .epsilon), .pair("betas", \.betas, .betas),
        .number("weight_decay", \.weightDecay, .nonNegative), .flag("amsgrad", \.amsgrad), .flag("maximize", \.maximize),
        .flag("decoupled_weight_decay", \.decoupledWeightDecay),
    ]
}
