import Optim
import Testing

/// A rule as a user writes it in their own package: signed momentum,
/// `m ← β·m + g`, `p ← p − lr·sign(m)`, with a decoupled weight decay.
struct SignedMomentum: ElementwiseRule {
    struct Options: TorchFieldOptions, DefaultOptions {
        var lr = 1e-3, momentum = 0.9, weightDecay = 0.0
        static let torchFields: [OptionField<Self>] = [
            .number("lr", \.lr), .number("momentum", \.momentum), .number("weight_decay", \.weightDecay),
        ]
    }
    struct Scalars { var lr, momentum, decay: Double }
    static let name = "SignedMomentum"
    static let stateNames = ["momentum_buffer"]

    static func scalars(_ o: Options, step: Int, state: inout NoScalarState) -> Scalars {
        Scalars(lr: o.lr, momentum: o.momentum, decay: 1 - o.lr * o.weightDecay)
    }

    static func update<V: RuleVector>(parameter p: inout V, gradient g: V, state: inout RuleState<V>,
                                      scalars s: Scalars) {
        state[0] = V(s.momentum) * state[0] + g
        p = p * V(s.decay) - V(s.lr) * V.sign(state[0])
    }
}

/// Rules written in Swift run on the engine like the built-in ones.
@Suite struct SwiftRuleTests {
    /// Sizes that leave vector tails and cross chunk boundaries (chunk 64), and every dtype.
    static func makeParameters(seed: UInt64) throws -> [Tensor] {
        var random = TestRandom(seed: seed)
        let sizes = [0, 1, 15, 16, 17, 63, 64, 65, 200, 1000, 4099]
        return try sizes.enumerated().map { number, size in
            try Tensor(random.values(size), shape: [size], dtype: DType.allCases[number % DType.allCases.count])
        }
    }

    static func run(execution: Execution, implementation: Implementation) throws -> [[UInt8]] {
        let parameters = try makeParameters(seed: 11)
        let optimizer = try RuleOptimizer<SignedMomentum>(groups: [
            .init(Array(parameters[..<5])),
            .init(Array(parameters[5...])) { $0.weightDecay = 0.1 },
        ], defaults: .init(lr: 0.01, momentum: 0.8), execution: execution, implementation: implementation)
        var random = TestRandom(seed: 5)
        for step in 0..<4 {
            for (number, parameter) in parameters.enumerated() {
                parameter.grad = (step + number) % 5 == 0 ? nil
                    : try Tensor(random.values(parameter.count), shape: parameter.shape, dtype: parameter.dtype)
            }
            try optimizer.step()
        }
        return snapshot(parameters, state: optimizer.state(for:))
    }

    @Test func multiTensorEqualsForLoopOnEveryThreadCountAndBackend() throws {
        let reference = try Self.run(execution: Execution(threads: 1, backend: .serial), implementation: .forLoop)
        for threads in 1...3 {
            for backend in [Backend.dispatch, .openMP] {
                for implementation in Implementation.allCases {
                    let execution = try Execution(threads: threads, backend: backend, serialThreshold: 0,
                                                  chunkElements: 64)
                    let result = try Self.run(execution: execution, implementation: implementation)
                    #expect(result == reference, "\(threads) threads, \(backend), \(implementation)")
                }
            }
        }
    }

    /// The rule's math against a scalar loop in Double, float64 storage.
    @Test func matchesAScalarReference() throws {
        var random = TestRandom(seed: 3)
        let start = random.values(37)
        let parameter = try Tensor(start, dtype: .float64)
        let optimizer = try RuleOptimizer<SignedMomentum>([parameter], options: .init(lr: 0.1, momentum: 0.5,
                                                                                         weightDecay: 0.2))
        var p = start, m = Array(repeating: 0.0, count: start.count)
        for _ in 0..<3 {
            let g = random.values(start.count)
            parameter.grad = try Tensor(g, dtype: .float64)
            try optimizer.step()
            for i in p.indices {
                m[i] = 0.5 * m[i] + g[i]
                let sign: Double = m[i] > 0 ? 1 : (m[i] < 0 ? -1 : 0)
                p[i] = p[i] * (1 - 0.1 * 0.2) - 0.1 * sign
            }
        }
        #expect(parameter.toArray() == p)
        #expect(optimizer.state(for: parameter)?["momentum_buffer"]?.toArray() == m)
        #expect(optimizer.state(for: parameter)?.step == 3)
    }
}
