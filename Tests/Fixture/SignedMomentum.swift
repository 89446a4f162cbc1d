import Optim

/// Signed momentum (signSGD with momentum, Bernstein et al., 2018), written in the package
/// that uses it:
///
///     m ← β · m + g
///     p ← p · (1 − lr · weightDecay) − lr · sign(m)
struct SignedMomentum: ElementwiseRule {
    struct Options: TorchFieldOptions, DefaultOptions, Equatable {
        var lr = 1e-3
        var momentum = 0.9
        var weightDecay = 0.0
        static let torchFields: [OptionField<Self>] = [
            .number("lr", \.lr), .number("momentum", \.momentum), .number("weight_decay", \.weightDecay),
        ]
    }

    struct Scalars {
        var negativeLR, momentum, decay: Double
    }

    static let name = "SignedMomentum"
    static let stateNames = ["momentum_buffer"]

    static func validate(_ o: Options) throws {
        guard o.lr >= 0, o.momentum >= 0, o.momentum < 1, o.weightDecay >= 0 else {
            throw OptimError(.invalidOption, "SignedMomentum needs lr >= 0, 0 <= momentum < 1, weight_decay >= 0")
        }
    }

    static func scalars(_ o: Options, step: Int, state: inout NoScalarState) -> Scalars {
        Scalars(negativeLR: -o.lr, momentum: o.momentum, decay: 1 - o.lr * o.weightDecay)
    }

    static func update<V: RuleVector>(parameter p: inout V, gradient g: V, state: inout RuleState<V>,
                                      scalars s: Scalars) {
        state[0] = V(s.momentum) * state[0] + g
        p = p * V(s.decay) + V(s.negativeLR) * V.sign(state[0])
    }
}
