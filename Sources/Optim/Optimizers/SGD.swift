/// Stochastic gradient descent with momentum, as `torch.optim.SGD`.
///
/// For each parameter `p` with gradient `g`, at learning rate `lr`:
///
///     g ← maximize ? −g : g
///     g ← g + weightDecay · p                           (if weightDecay ≠ 0)
///     b ← g                                             (first step, if momentum ≠ 0)
///     b ← momentum · b + (1 − dampening) · g            (later steps)
///     g ← nesterov ? g + momentum · b : b               (if momentum ≠ 0)
///     p ← p − lr · g
///
/// Each sum with a product in it (`g + weightDecay · p`, `… + (1 − dampening) · g`,
/// `g + momentum · b`, `p − lr · g`) is rounded once, a fused multiply-add, as torch's for-loop
/// path and its fused CPU kernel compute it.
///
/// Nesterov momentum follows Sutskever et al. (2013), in torch's formulation. State:
/// `momentum_buffer` (only when momentum ≠ 0). Defaults are torch 2.15's.
public final class SGD: ElementwiseOptimizer<SGD.Options>, ElementwiseAlgorithm, @unchecked Sendable {
    /// SGD's options, with torch's defaults.
    public struct Options: OptimizerOptions, Equatable {
        /// Learning rate (torch: `lr`, default 1e-3).
        public var lr: Double
        /// Momentum factor (default 0: plain SGD).
        public var momentum: Double
        /// Dampening of the gradient's contribution to the momentum buffer (default 0).
        public var dampening: Double
        /// L2 penalty added to the gradient (torch: `weight_decay`, default 0).
        public var weightDecay: Double
        /// Nesterov momentum; needs momentum > 0 and zero dampening (default false).
        public var nesterov: Bool
        /// Maximize the objective instead of minimizing it (default false).
        public var maximize: Bool

        /// Options with torch 2.15's defaults; each argument sets the property of its name.
        public init(lr: Double = 1e-3, momentum: Double = 0, dampening: Double = 0, weightDecay: Double = 0,
                    nesterov: Bool = false, maximize: Bool = false) {
            self.lr = lr
            self.momentum = momentum
            self.dampening = dampening
            self.weightDecay = weightDecay
            self.nesterov = nesterov
            self.maximize = maximize
        }
    }

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    override class var recipe: EngineRecipe<Options>? { .elementwise(SGD.self) }

    static let rule = KernelRule.sgd
    static let stateNames = ["momentum_buffer"]
    static let keepsStepCount = false

    static func validate(_ o: Options) throws {
        try o.validateFields()
        if o.nesterov && (o.momentum <= 0 || o.dampening != 0) {
            throw OptimError(.invalidOption, "Nesterov momentum requires a momentum and zero dampening")
        }
    }

    static func usesSlot(_ slot: Int, _ o: Options) -> Bool { o.momentum != 0 }

    static func initializationFlags(_ o: Options) -> UInt32 { o.momentum != 0 ? SGDFlags.momentumInit : 0 }

    static func prepare(_ o: Options, step: Int, state: inout NoTensorState) -> (flags: UInt32, scalars: Scalars) {
        var flags: UInt32 = 0
        if o.maximize { flags |= SGDFlags.maximize }
        if o.weightDecay != 0 { flags |= SGDFlags.weightDecay }
        if o.momentum != 0 {
            flags |= SGDFlags.momentum
            if o.nesterov { flags |= SGDFlags.nesterov }
        }
        return (flags, Scalars(negative_lr: -o.lr, momentum: o.momentum, one_minus_dampening: 1 - o.dampening,
                               weight_decay: o.weightDecay))
    }
}

extension SGD.Options: TorchFieldOptions {
    /// Every option under torch's name, with what its value must satisfy, in the order torch
    /// checks them.
    public static let torchFields: [OptionField<Self>] = [
        .number("lr", \.lr), .number("momentum", \.momentum, .nonNegative), .number("dampening", \.dampening, .finite),
        .number("weight_decay", \.weightDecay, .nonNegative), .flag("nesterov", \.nesterov), .flag("maximize", \.maximize),
    ]
}
