/// ``Adam``'s update written as a rule in Swift: the same options, state and bits as the
/// built-in Adam, whose rule is compiled into the kernel target for each instruction-set tier.
/// It measures what a rule written in Swift costs against a built-in one
/// (Docs/benchmarks.md), and checks the Swift rule engine against torch's Adam trajectories.
public typealias SwiftAdam = RuleOptimizer<AdamRule>

extension Adam.Options: DefaultOptions {
    public init() { self.init(lr: 1e-3) }
}

/// The rule of ``SwiftAdam``; the formula is ``Adam``'s.
public enum AdamRule: ElementwiseRule {
    public typealias Options = Adam.Options

    public struct Scalars {
        var maximize, decoupled, amsgrad: Bool
        var oneMinusBeta1, beta2, oneMinusBeta2, eps, weightDecay, decayFactor, negativeStepSize: Double
        var biasCorrection2Sqrt: Double
    }

    public static let name = "Adam"
    public static let stateNames = AdamAlgorithm.stateNames

    public static func validate(_ o: Options) throws { try AdamAlgorithm.validate(o) }
    public static func usesSlot(_ slot: Int, _ o: Options) -> Bool { AdamAlgorithm.usesSlot(slot, o) }

    public static func scalars(_ o: Options, step: Int, state: inout NoScalarState) -> Scalars {
        var unused = NoTensorState()
        let c = AdamAlgorithm.prepare(o, step: step, state: &unused).scalars
        return Scalars(maximize: o.maximize, decoupled: o.decoupledWeightDecay, amsgrad: o.amsgrad,
                       oneMinusBeta1: c.one_minus_beta1, beta2: c.beta2, oneMinusBeta2: c.one_minus_beta2, eps: c.eps,
                       weightDecay: c.weight_decay, decayFactor: c.decay_factor,
                       negativeStepSize: c.negative_step_size, biasCorrection2Sqrt: c.bias_correction2_sqrt)
    }

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
