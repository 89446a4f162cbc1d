/// ``Adam``'s update written as a rule in Swift: the same options, state and bits as the
/// built-in Adam, whose rule is compiled into the kernel target for each instruction-set tier.
/// It measures what a rule written in Swift costs against a built-in one
/// (Docs/benchmarks.md), and checks the Swift rule engine against torch's Adam trajectories.
public typealias SwiftAdam = RuleOptimizer<AdamRule>

extension Adam.Options: DefaultOptions {
    /// torch's defaults: `lr` 1e-3, betas (0.9, 0.999), `eps` 1e-8, no weight decay.
    public init() { self.init(lr: 1e-3) }
}

/// The rule of ``SwiftAdam``; the formula is ``Adam``'s.
public enum AdamRule: ElementwiseRule {
    /// ``Adam``'s options.
    public typealias Options = Adam.Options

    /// Adam's per-step scalars: its flags, `1 − β₁`, `β₂`, `1 − β₂`, `eps`, the weight decay,
    /// `1 − lr · weightDecay`, `−lr / (1 − β₁ᵗ)` and `√(1 − β₂ᵗ)`.
    public struct Scalars {
        var maximize, decoupled, amsgrad: Bool
        var oneMinusBeta1, beta2, oneMinusBeta2, eps, weightDecay, decayFactor, negativeStepSize: Double
        var biasCorrection2Sqrt: Double
    }

    /// `Adam`, for messages.
    public static let name = "Adam"
    /// `exp_avg`, `exp_avg_sq` and `max_exp_avg_sq`, as ``Adam``'s.
    public static let stateNames = Adam.stateNames

    /// ``Adam``'s checks, in torch's order.
    public static func validate(_ o: Options) throws { try Adam.validate(o) }
    /// `max_exp_avg_sq` only with AMSGrad.
    public static func usesSlot(_ slot: Int, _ o: Options) -> Bool { Adam.usesSlot(slot, o) }

    /// The scalars of step `step`, with the bias corrections computed in `Double`.
    public static func scalars(_ o: Options, step: Int, state: inout NoScalarState) -> Scalars {
        var unused = NoTensorState()
        let c = Adam.prepare(o, step: step, state: &unused).scalars
        return Scalars(maximize: o.maximize, decoupled: o.decoupledWeightDecay, amsgrad: o.amsgrad,
                       oneMinusBeta1: c.one_minus_beta1, beta2: c.beta2, oneMinusBeta2: c.one_minus_beta2, eps: c.eps,
                       weightDecay: c.weight_decay, decayFactor: c.decay_factor,
                       negativeStepSize: c.negative_step_size, biasCorrection2Sqrt: c.bias_correction2_sqrt)
    }

    /// ``Adam``'s update of one vector, operation by operation as the built-in rule.
    public static func update<V: RuleVector>(parameter p: inout V, gradient: V, state: inout RuleState<V>,
                                             scalars s: Scalars) {
        var g = s.maximize ? -gradient : gradient
        if s.weightDecay != 0 {
            if s.decoupled { p = p * V(s.decayFactor) } else { g = g + V(s.weightDecay) * p }
        }
        state[0] = state[0].lerp(to: g, weight: s.oneMinusBeta1)
        state[1] = state[1] * V(s.beta2) + V(s.oneMinusBeta2) * g * g
        var secondMoment = state[1]
        if s.amsgrad {
            state[2] = V.maximum(state[2], state[1])
            secondMoment = state[2]
        }
        let denominator = V.sqrt(secondMoment) / V(s.biasCorrection2Sqrt) + V(s.eps)
        p = p + V(s.negativeStepSize) * state[0] / denominator
    }
}
