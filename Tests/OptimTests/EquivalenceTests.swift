import Optim
import PropertyBased
import Testing

/// The multi-tensor path, on any thread count, backend, instruction-set tier and chunk size,
/// gives the same bits as the per-tensor loop on one thread at the baseline tier.
@Suite struct EquivalenceTests {
    /// The catalog's element-wise optimizers that take dense gradients.
    static let entries = OptimizerCatalog.entries.filter {
        ($0.engine == .builtInRule || $0.engine == .swiftRule) && $0.sparseGradients != .required
    }

    /// A random training situation: tensor sizes (empty, one element, odd, around vector and
    /// chunk boundaries), dtypes, parameter groups with random valid options, and gradients
    /// that go missing, get replaced or change in place between steps.
    /// With `packed`, each stretch of parameters of one dtype is cut from one buffer
    /// (``Tensor/packedZeros(_:dtype:)``), and so is each step's set of new gradients: the engine
    /// then runs adjacent tensors as one, and splits the run again where a gradient kept from an
    /// earlier step, or a missing one, breaks it. The values are those of the unpacked scenario.
    struct Scenario: Sendable, CustomStringConvertible {
        let seed: UInt64
        let tensorCount: Int
        let chunk: Int
        let packed: Bool

        var description: String {
            "Scenario(seed: \(seed), tensors: \(tensorCount), chunk: \(chunk)\(packed ? ", packed" : ""))"
        }
    }

    static let scenarios = zip(Gen<UInt64>.value(in: 0...UInt64.max), Gen.int(in: 0...9),
                               Gen.element(of: [16, 100, 1000, 4096, 65_536]), Gen.bool)
        .map { Scenario(seed: $0, tensorCount: $1, chunk: $2!, packed: $3) }

    /// Zeroed tensors of these shapes and dtypes: each stretch of one dtype cut from one buffer
    /// when `packed`, each allocated on its own otherwise.
    static func zeros(_ specs: [(shape: [Int], dtype: DType)], packed: Bool) throws -> [Tensor] {
        guard packed else { return try specs.map { try Tensor.zeros($0.shape, dtype: $0.dtype) } }
        var tensors: [Tensor] = []
        var start = 0
        while start < specs.count {
            var end = start + 1
            while end < specs.count && specs[end].dtype == specs[start].dtype { end += 1 }
            tensors += try Tensor.packedZeros(specs[start..<end].map(\.shape), dtype: specs[start].dtype)
            start = end
        }
        return tensors
    }

    /// Eight steps: RAdam's variance becomes tractable after a few (with β₂ 0.8), so both of
    /// its branches run.
    static let steps = 8

    /// Runs a scenario and returns every parameter's and state tensor's bytes.
    static func run(_ scenario: Scenario, entry: OptimizerEntry, execution: Execution,
                    implementation: Implementation, packed: Bool? = nil) throws -> [[UInt8]] {
        let packed = packed ?? scenario.packed
        var random = TestRandom(seed: scenario.seed)
        let chunk = scenario.chunk
        let sizeChoices = [0, 1, 2, 15, 16, 17, 31, 100, 1023, chunk - 1, chunk, chunk + 1, 2 * chunk + 5]
        let initial = (0..<scenario.tensorCount).map { _ -> (shape: [Int], dtype: DType, values: [Double]) in
            let size = max(0, sizeChoices[random.below(sizeChoices.count)])
            let dtype = DType.allCases[random.below(DType.allCases.count)]
            return ([size], dtype, random.values(size))
        }
        let specs = initial.map { ($0.shape, $0.dtype) }
        let parameters = try zeros(specs, packed: packed)
        for (parameter, start) in zip(parameters, initial) {
            try parameter.copy(from: Tensor(start.values, shape: start.shape, dtype: start.dtype))
        }
        let groupCount = 1 + random.below(3)
        var members = Array(repeating: [Tensor](), count: groupCount)
        for parameter in parameters { members[random.below(groupCount)].append(parameter) }
        members = members.filter { !$0.isEmpty }
        if members.isEmpty { members = [[]] }

        // Each group takes one of the entry's sample option sets, at a random learning rate.
        let groups = members.map { parameters -> OptimizerEntry.Group in
            var options = entry.sampleOptions[random.below(entry.sampleOptions.count)]
            options["lr"] = .number(0.1 * (random.signed() + 1) / 2)
            return (parameters, options)
        }
        let optimizer = try entry.make(groups: groups, execution: execution, implementation: implementation)
        for step in 0..<steps {
            let newGradients = try zeros(specs, packed: packed)
            for (parameter, newGradient) in zip(parameters, newGradients) {
                if random.below(5) == 0 {
                    parameter.grad = nil
                } else if let grad = parameter.grad, random.below(2) == 0 {
                    try grad.copy(from: Tensor(random.values(parameter.count), shape: parameter.shape, dtype: parameter.dtype))
                } else {
                    try newGradient.copy(from: Tensor(random.values(parameter.count), shape: parameter.shape, dtype: parameter.dtype))
                    parameter.grad = newGradient
                }
            }
            try optimizer.step()
            if step == 1 { try halveFirstLearningRate(optimizer) }
        }
        return snapshot(parameters, state: optimizer.state(for:))
    }

    /// A learning-rate change of group 0 halfway through, as a scheduler makes it.
    static func halveFirstLearningRate<O: Optimizer>(_ optimizer: O) throws {
        var options = optimizer.paramGroups[0].options
        options.lr /= 2
        try optimizer.setOptions(options, group: 0)
    }

    @Test(arguments: EquivalenceTests.entries)
    func multiTensorPathEqualsLoopPathBitForBit(entry: OptimizerEntry) async throws {
        await propertyCheck(count: propertyChecks(12), input: Self.scenarios) { scenario in
            let reference = try Self.run(scenario, entry: entry,
                                         execution: Execution(threads: 1, backend: .serial, instructionSet: .baseline),
                                         implementation: .forLoop, packed: false)
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
                let result = try Self.run(scenario, entry: entry, execution: execution, implementation: implementation)
                if result != reference {
                    let first = result.indices.first { $0 >= reference.count || result[$0] != reference[$0] } ?? result.count
                    Issue.record("""
                        \(entry) \(scenario): \(implementation), \(threads) threads, \(backend), \(isa) differs from \
                        the loop path, first in array \(first) of \(reference.count) (parameters and state tensors in order)
                        """)
                }
            }
        }
    }

    /// Every instruction-set tier gives the same bits on values that exercise rounding: half
    /// subnormals, values near the half range's top, large and tiny magnitudes. The 1011
    /// elements end in a partial vector at every width, and the last elements get nonzero
    /// gradients (the edge values, zeros among them, sit before them), so a tier that lost a
    /// tail lane would leave a parameter unchanged that the others move.
    @Test(arguments: [DType.float16, .bfloat16, .float32, .float64])
    func everyTierGivesTheSameBitsOnEdgeValues(dtype: DType) throws {
        var random = TestRandom(seed: 7)
        let edges: [Double] = [0, -0.0, 1e-7, -6e-8, 6.1e-5, 65_000, -65_504, 1e30, 3e-39, 0.5, -2.75]
        let values = edges + random.values(1000, scale: 3)
        // The values reversed (edges last), then rotated so that three random values end it.
        let reversed = Array(values.reversed())
        let gradient = Array(reversed.dropFirst(3) + reversed.prefix(3))
        #expect(gradient.suffix(3).allSatisfy { $0 != 0 })
        var results: [[[UInt8]]] = []
        for isa in InstructionSet.supported {
            let parameter = try Tensor(values, dtype: dtype)
            let initial = parameter.toArray()
            parameter.grad = try Tensor(gradient, dtype: dtype)
            let adam = try Adam([parameter], options: .init(lr: 0.3, amsgrad: true),
                                execution: Execution(threads: 2, instructionSet: isa))
            for _ in 0..<4 { try adam.step() }
            let final = parameter.toArray()
            for index in final.indices.suffix(3) {
                #expect(final[index] != initial[index], "\(isa) left tail element \(index) of \(dtype) unchanged")
            }
            results.append(snapshot([parameter], state: adam.state(for:)))
        }
        #expect(Set(results).count == 1, "tiers \(InstructionSet.supported) disagree for \(dtype)")
    }
}
