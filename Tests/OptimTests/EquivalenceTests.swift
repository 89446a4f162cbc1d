import Optim
import PropertyBased
import Testing

/// The multi-tensor path, on any thread count, backend, instruction-set tier and chunk size,
/// gives the same bits as the per-tensor loop on one thread at the baseline tier.
@Suite struct EquivalenceTests {
    enum Kind: String, CaseIterable, Sendable {
        case sgd, adam, adamW, rmsprop, adagrad, adadelta, adamax, asgd, nadam, radam, rprop
    }

    /// A random training situation: tensor sizes (empty, one element, odd, around vector and
    /// chunk boundaries), dtypes, parameter groups with random valid options, and gradients
    /// that go missing, get replaced or change in place between steps.
    struct Scenario: Sendable, CustomStringConvertible {
        let seed: UInt64
        let tensorCount: Int
        let chunk: Int

        var description: String { "Scenario(seed: \(seed), tensors: \(tensorCount), chunk: \(chunk))" }
    }

    static let scenarios = zip(Gen<UInt64>.value(in: 0...UInt64.max), Gen.int(in: 0...9),
                               Gen.element(of: [16, 100, 1000, 4096, 65_536]))
        .map { Scenario(seed: $0, tensorCount: $1, chunk: $2!) }

    static func steps(for kind: Kind) -> Int { kind == .radam ? 8 : 3 }

    /// Runs a scenario and returns every parameter's and state tensor's bytes.
    static func run(_ scenario: Scenario, kind: Kind, execution: Execution,
                    implementation: Implementation) throws -> [[UInt8]] {
        var random = TestRandom(seed: scenario.seed)
        let chunk = scenario.chunk
        let sizeChoices = [0, 1, 2, 15, 16, 17, 31, 100, 1023, chunk - 1, chunk, chunk + 1, 2 * chunk + 5]
        let parameters = try (0..<scenario.tensorCount).map { _ -> Tensor in
            let size = max(0, sizeChoices[random.below(sizeChoices.count)])
            let dtype = DType.allCases[random.below(DType.allCases.count)]
            return try Tensor(random.values(size), shape: [size], dtype: dtype)
        }
        let groupCount = 1 + random.below(3)
        var members = Array(repeating: [Tensor](), count: groupCount)
        for parameter in parameters { members[random.below(groupCount)].append(parameter) }
        members = members.filter { !$0.isEmpty }
        if members.isEmpty { members = [[]] }

        let optimizer = try makeOptimizer(kind, groups: members, random: &random, execution: execution,
                                          implementation: implementation)
        for step in 0..<steps(for: kind) {
            for parameter in parameters {
                if random.below(5) == 0 {
                    parameter.grad = nil
                } else if let grad = parameter.grad, random.below(2) == 0 {
                    try grad.copy(from: Tensor(random.values(parameter.count), shape: parameter.shape, dtype: parameter.dtype))
                } else {
                    parameter.grad = try Tensor(random.values(parameter.count), shape: parameter.shape, dtype: parameter.dtype)
                }
            }
            try optimizer.step()
            if step == 1 { try optimizer.halveFirstLearningRate() }
        }
        return snapshot(parameters, state: optimizer.state)
    }

    struct Stepper {
        let step: () throws -> Void
        let state: (Tensor) -> ParameterState?
        let halveFirstLearningRate: () throws -> Void
    }

    static func makeOptimizer(_ kind: Kind, groups: [[Tensor]], random: inout TestRandom, execution: Execution,
                              implementation: Implementation) throws -> Stepper {
        func chance() -> Bool { random.below(2) == 0 }
        func unit() -> Double { (random.signed() + 1) / 2 }
        switch kind {
        case .sgd:
            let specs = groups.map { parameters -> ParameterGroupSpec<SGD.Options> in
                var o = SGD.Options(lr: 0.5 * unit())
                o.momentum = chance() ? 0 : unit()
                o.dampening = chance() ? 0 : unit()
                o.weightDecay = chance() ? 0 : unit()
                o.maximize = chance()
                o.nesterov = o.momentum > 0 && o.dampening == 0 && chance()
                return ParameterGroupSpec(parameters) { $0 = o }
            }
            let sgd = try SGD(groups: specs, execution: execution, implementation: implementation)
            return Stepper(step: sgd.step, state: sgd.state(for:)) {
                var o = sgd.paramGroups[0].options
                o.lr /= 2
                try sgd.setOptions(o, group: 0)
            }
        case .adam, .adamW:
            let specs = groups.map { parameters -> ParameterGroupSpec<Adam.Options> in
                var o = Adam.Options(lr: 0.1 * unit())
                o.betas = (0.99 * unit(), 0.5 + 0.4999 * unit())
                o.eps = chance() ? 1e-8 : 1e-3
                o.weightDecay = chance() ? 0 : unit()
                o.amsgrad = chance()
                o.maximize = chance()
                o.decoupledWeightDecay = kind == .adamW || chance()
                return ParameterGroupSpec(parameters) { $0 = o }
            }
            if kind == .adam {
                let adam = try Adam(groups: specs, execution: execution, implementation: implementation)
                return Stepper(step: adam.step, state: adam.state(for:)) {
                    var o = adam.paramGroups[0].options
                    o.lr /= 2
                    o.amsgrad.toggle()
                    try adam.setOptions(o, group: 0)
                }
            }
            let adamW = try AdamW(groups: specs, execution: execution, implementation: implementation)
            return stepper(adamW)
        case .rmsprop:
            return stepper(try RMSprop(groups: groups.map { parameters in
                let o = RMSprop.Options(lr: 0.1 * unit(), alpha: 0.5 + 0.5 * unit(), eps: chance() ? 1e-8 : 1e-3,
                                        weightDecay: chance() ? 0 : unit(), momentum: chance() ? 0 : unit(),
                                        centered: chance(), maximize: chance())
                return ParameterGroupSpec(parameters) { $0 = o }
            }, execution: execution, implementation: implementation))
        case .adagrad:
            return stepper(try Adagrad(groups: groups.map { parameters in
                let o = Adagrad.Options(lr: 0.1 * unit(), lrDecay: chance() ? 0 : unit(),
                                        weightDecay: chance() ? 0 : unit(),
                                        initialAccumulatorValue: chance() ? 0 : unit(), eps: chance() ? 1e-10 : 1e-3,
                                        maximize: chance())
                return ParameterGroupSpec(parameters) { $0 = o }
            }, execution: execution, implementation: implementation))
        case .adadelta:
            return stepper(try Adadelta(groups: groups.map { parameters in
                let o = Adadelta.Options(lr: unit(), rho: unit(), eps: chance() ? 1e-6 : 1e-3,
                                         weightDecay: chance() ? 0 : unit(), maximize: chance())
                return ParameterGroupSpec(parameters) { $0 = o }
            }, execution: execution, implementation: implementation))
        case .adamax:
            return stepper(try Adamax(groups: groups.map { parameters in
                let o = Adamax.Options(lr: 0.1 * unit(), betas: (0.99 * unit(), 0.5 + 0.4999 * unit()),
                                       eps: chance() ? 1e-8 : 1e-3, weightDecay: chance() ? 0 : unit(),
                                       maximize: chance())
                return ParameterGroupSpec(parameters) { $0 = o }
            }, execution: execution, implementation: implementation))
        case .asgd:
            return stepper(try ASGD(groups: groups.map { parameters in
                let o = ASGD.Options(lr: 0.1 * unit(), lambd: chance() ? 1e-4 : unit(), alpha: unit(),
                                     t0: Double(random.below(4)), weightDecay: chance() ? 0 : unit(),
                                     maximize: chance())
                return ParameterGroupSpec(parameters) { $0 = o }
            }, execution: execution, implementation: implementation))
        case .nadam:
            return stepper(try NAdam(groups: groups.map { parameters in
                let o = NAdam.Options(lr: 0.1 * unit(), betas: (0.99 * unit(), 0.5 + 0.4999 * unit()),
                                      eps: chance() ? 1e-8 : 1e-3, weightDecay: chance() ? 0 : unit(),
                                      momentumDecay: chance() ? 4e-3 : unit(), decoupledWeightDecay: chance(),
                                      maximize: chance())
                return ParameterGroupSpec(parameters) { $0 = o }
            }, execution: execution, implementation: implementation))
        case .radam:
            return stepper(try RAdam(groups: groups.map { parameters in
                // With beta2 in [0.8, 0.9] the variance becomes tractable at step 6 or 7, so the
                // eight steps of `steps(for: .radam)` run both branches.
                let o = RAdam.Options(lr: 0.1 * unit(), betas: (0.99 * unit(), 0.8 + 0.1 * unit()),
                                      eps: chance() ? 1e-8 : 1e-3, weightDecay: chance() ? 0 : unit(),
                                      decoupledWeightDecay: chance(), maximize: chance())
                return ParameterGroupSpec(parameters) { $0 = o }
            }, execution: execution, implementation: implementation))
        case .rprop:
            return stepper(try Rprop(groups: groups.map { parameters in
                let o = Rprop.Options(lr: 0.1 * unit(), etas: (0.1 + 0.8 * unit(), 1.01 + unit()),
                                      stepSizes: (chance() ? 1e-6 : 1e-2 * unit(), chance() ? 50 : 0.05),
                                      maximize: chance())
                return ParameterGroupSpec(parameters) { $0 = o }
            }, execution: execution, implementation: implementation))
        }
    }

    /// Steps, state and a learning-rate change of group 0 halfway through.
    static func stepper<Options>(_ optimizer: ElementwiseOptimizer<Options>) -> Stepper {
        Stepper(step: optimizer.step, state: optimizer.state(for:)) {
            var o = optimizer.paramGroups[0].options
            o.lr /= 2
            try optimizer.setOptions(o, group: 0)
        }
    }

    @Test(arguments: Kind.allCases)
    func multiTensorPathEqualsLoopPathBitForBit(kind: Kind) async throws {
        await propertyCheck(count: 12, input: Self.scenarios) { scenario in
            let reference = try Self.run(scenario, kind: kind,
                                         execution: Execution(threads: 1, backend: .serial, instructionSet: .baseline),
                                         implementation: .forLoop)
            var configurations: [(Int, Backend, InstructionSet, Implementation)] = []
            for threads in 1...8 {
                for backend in [Backend.dispatch, .openMP] {
                    configurations.append((threads, backend, .best, .multiTensor))
                }
            }
            for isa in InstructionSet.supported {
                for implementation in Implementation.allCases {
                    configurations.append((3, .dispatch, isa, implementation))
                }
            }
            for (threads, backend, isa, implementation) in configurations {
                let execution = try Execution(threads: threads, backend: backend, instructionSet: isa,
                                              serialThreshold: 0, chunkElements: scenario.chunk)
                let result = try Self.run(scenario, kind: kind, execution: execution, implementation: implementation)
                if result != reference {
                    let first = result.indices.first { $0 >= reference.count || result[$0] != reference[$0] } ?? result.count
                    Issue.record("""
                        \(kind) \(scenario): \(implementation), \(threads) threads, \(backend), \(isa) differs from \
                        the loop path, first in array \(first) of \(reference.count) (parameters and state tensors in order)
                        """)
                }
            }
        }
    }

    /// Every instruction-set tier gives the same bits on values that exercise rounding: half
    /// subnormals, values near the half range's top, large and tiny magnitudes.
    @Test(arguments: [DType.float16, .bfloat16, .float32, .float64])
    func everyTierGivesTheSameBitsOnEdgeValues(dtype: DType) throws {
        var random = TestRandom(seed: 7)
        let edges: [Double] = [0, -0.0, 1e-7, -6e-8, 6.1e-5, 65_000, -65_504, 1e30, 3e-39, 0.5, -2.75]
        let values = edges + random.values(1000, scale: 3)
        var results: [[[UInt8]]] = []
        for isa in InstructionSet.supported {
            let parameter = try Tensor(values, dtype: dtype)
            parameter.grad = try Tensor(values.reversed(), dtype: dtype)
            let adam = try Adam([parameter], options: .init(lr: 0.3, amsgrad: true),
                                execution: Execution(threads: 2, instructionSet: isa))
            for _ in 0..<4 { try adam.step() }
            results.append(snapshot([parameter], state: adam.state(for:)))
        }
        #expect(Set(results).count == 1, "tiers \(InstructionSet.supported) disagree for \(dtype)")
    }
}
