/// Adan, adaptive Nesterov momentum (Xie et al., 2022), as `pytorch_optimizer.Adan` 4.1.0
/// computes it.
///
/// For each parameter `p` with gradient `g` at the group's `t`-th step, with `c` the gradient
/// clipping factor (1 unless `maxGradNorm` > 0) and `q` the previous step's gradient (`−c·g`
/// at a parameter's first update, so that its first difference is zero):
///
///     g ← c · (maximize ? −g : g)
///     d ← q + g                                    (q holds the previous gradient, negated)
///     m ← m + (1 − β₁) · (g − m)
///     n ← n + (1 − β₂) · (d − n)
///     d ← β₂ · d + g
///     v ← β₃ · v + (1 − β₃) · d²
///     ρ ← √v / √(1 − β₃ᵗ) + ε
///     p ← p · (1 − lr · weightDecay)                 (weightDecouple)
///     p ← p − (lr / (1 − β₁ᵗ)) · m / ρ − (lr · β₂ / (1 − β₂ᵗ)) · n / ρ
///     p ← p / (1 + lr · weightDecay)                 (otherwise: the proximal form)
///     q ← −g
///
/// `c = min(1, maxGradNorm / (‖(‖g₁‖, ‖g₂‖, …)‖ + ε))` over every gradient of every group, in
/// float32 as the reference computes it, with the optimizer's `maxGradNorm` and `eps`. State:
/// `exp_avg` (m), `exp_avg_sq` (v), `exp_avg_diff` (n), `previous_grad` (q); the step count
/// belongs to the group and advances at every step. With `maximize` the reference's first
/// difference is `−2c·g` (it negates after saving the first gradient); this library follows it.
/// torch has no Adan.
public final class Adan: ElementwiseOptimizer<AdanRule.Options>, @unchecked Sendable {
    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    override class var recipe: EngineRecipe<Options>? { .swiftRule(AdanRule.self) }

    override func performStep() throws {
        try lock.withLock {
            guard defaults.maxGradNorm > 0 else { return try super.performStep() }
            let scale = try clippingFactor()
            let before = paramGroups.map(\.options)
            do {
                for (number, var options) in before.enumerated() {
                    options.gradientScale = scale
                    try core.setOptions(options, group: number)
                }
                try super.performStep()
            } catch {
                for (number, options) in before.enumerated() { try? core.setOptions(options, group: number) }
                throw error
            }
        }
    }

    /// min(1, maxGradNorm / (‖(‖g₁‖, ‖g₂‖, …)‖ + ε)), in float32 as the reference computes it.
    private func clippingFactor() throws -> Float {
        var sum: Float = 0
        for parameter in paramGroups.flatMap(\.parameters) {
            guard let grad = parameter.grad else { continue }
            let norm = Float(try Foreach.norm([grad], execution: execution))
            sum += norm * norm
        }
        let factor = Float(defaults.maxGradNorm) * (1 / (sum.squareRoot() + Float(defaults.eps)))
        return min(factor, 1)
    }
}

/// The rule of ``Adan``.
public enum AdanRule: ElementwiseRule {
    /// ``Adan``'s options, with the reference's defaults and names.
    public struct Options: TorchFieldOptions, DefaultOptions, Equatable {
        /// Learning rate (default 1e-3).
        public var lr = 1e-3
        /// β₁ (gradient), β₂ (gradient difference), β₃ (second moment) (default [0.98, 0.92, 0.99]).
        public var betas = [0.98, 0.92, 0.99]
        /// Weight decay (default 0).
        public var weightDecay = 0.0
        /// Decay the parameter before the update instead of dividing after it (default false).
        public var weightDecouple = false
        /// Clip the gradients to this global norm first; 0 does not clip (default 0). Read from
        /// the optimizer's options, as the reference reads its constructor's.
        public var maxGradNorm = 0.0
        /// Added to the denominator (default 1e-8).
        public var eps = 1e-8
        /// Maximize the objective (default false).
        public var maximize = false
        /// The step's clipping factor, set by ``Adan/step()``.
        var gradientScale: Float = 1

        /// pytorch-optimizer's defaults: lr 1e-3, betas [0.98, 0.92, 0.99], eps 1e-8, no decay or
        /// clipping.
        public init() {}

        /// Every option under the reference's name, with what its value must satisfy.
        public static let torchFields: [OptionField<Self>] = [
            .number("lr", \.lr), .numbers("betas", \.betas), .number("weight_decay", \.weightDecay),
            .flag("weight_decouple", \.weightDecouple), .number("max_grad_norm", \.maxGradNorm), .number("eps", \.eps),
            .flag("maximize", \.maximize),
        ]
    }

    /// The per-step scalars, computed in `Double` by ``scalars(_:step:state:)``.
    public struct Scalars {
        var scale: Float
        var maximize, decouple, decay: Bool
        var oneMinusBeta1, beta2, oneMinusBeta2, beta3, oneMinusBeta3, biasCorrection3Sqrt, eps: Double
        var decayFactor, divisor, negativeStep1, negativeStep2: Double
    }

    /// The optimizer's name, for messages.
    public static let name = "Adan"
    /// `exp_avg` (m), `exp_avg_sq` (v), `exp_avg_diff` (n) and `previous_grad` (q, negated).
    public static let stateNames = ["exp_avg", "exp_avg_sq", "exp_avg_diff", "previous_grad"]
    /// The group's: its step count advances at every step, as pytorch-optimizer counts it.
    public static let stepCounting = RuleStepCounting.perGroup

    /// Checks `lr`, the three betas (β₁ and β₂ in [0, 1), β₃ in [0, 1]), `weight_decay`,
    /// `max_grad_norm` and `eps`.
    public static func validate(_ o: Options) throws {
        try OptionCheck.learningRate(o.lr)
        guard o.betas.count == 3 else {
            throw OptimError(.invalidOption, "Adan takes three betas; got \(o.betas.count)")
        }
        try OptionCheck.beta(o.betas[0], index: 0)
        try OptionCheck.beta(o.betas[1], index: 1)
        try OptionCheck.unitInterval(o.betas[2], "beta3")
        try OptionCheck.nonNegative(o.weightDecay, "weight_decay")
        try OptionCheck.nonNegative(o.maxGradNorm, "max_grad_norm")
        try OptionCheck.epsilon(o.eps)
    }

    /// The clipping factor, `1 − β`, the bias corrections `1 − β₁ᵗ`, `1 − β₂ᵗ` and
    /// `√(1 − β₃ᵗ)` and the decay factors of the group's step `t`, in `Double`.
    public static func scalars(_ o: Options, step: Int, state: inout NoScalarState) -> Scalars {
        let t = Double(step)
        let (beta1, beta2, beta3) = (o.betas[0], o.betas[1], o.betas[2])
        return Scalars(
            scale: o.gradientScale, maximize: o.maximize, decouple: o.weightDecouple, decay: o.weightDecay != 0,
            oneMinusBeta1: 1 - beta1, beta2: beta2, oneMinusBeta2: 1 - beta2, beta3: beta3, oneMinusBeta3: 1 - beta3,
            biasCorrection3Sqrt: (1 - Math.pow(beta3, t)).squareRoot(), eps: o.eps,
            decayFactor: 1 - o.lr * o.weightDecay, divisor: 1 + o.lr * o.weightDecay,
            negativeStep1: -o.lr / (1 - Math.pow(beta1, t)), negativeStep2: -o.lr * beta2 / (1 - Math.pow(beta2, t)))
    }

    /// ``Adan``'s update of one vector: the moments m, n and v, then the parameter, then q ← −g.
    public static func update<V: RuleVector>(parameter p: inout V, gradient: V, state: inout RuleState<V>,
                                             scalars s: Scalars) {
        let scale = V(repeating: V.Scalar(s.scale))
        if state.isFirstUpdate { state[3] = gradient * -scale }
        let g = (s.maximize ? -gradient : gradient) * scale
        var difference = state[3] + g
        state[0] = state[0].lerp(to: g, weight: s.oneMinusBeta1)
        state[2] = state[2].lerp(to: difference, weight: s.oneMinusBeta2)
        difference = difference * V(s.beta2) + g
        state[1] = state[1] * V(s.beta3) + V(s.oneMinusBeta3) * difference * difference
        let denominator = V.sqrt(state[1]) / V(s.biasCorrection3Sqrt) + V(s.eps)
        if s.decay && s.decouple { p = p * V(s.decayFactor) }
        p = p + V(s.negativeStep1) * state[0] / denominator
        p = p + V(s.negativeStep2) * state[2] / denominator
        if s.decay && !s.decouple { p = p / V(s.divisor) }
        state[3] = -g
    }
}
