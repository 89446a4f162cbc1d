import Optim
import Testing

/// Parameters cut one after another from one buffer (``Tensor/packedZeros(_:dtype:)``): the
/// engine lays their state out the same way and runs each stretch of adjacent tensors as one,
/// with the same bits as the same tensors allocated one by one.
@Suite struct PackedTensorTests {
    /// Sizes that end in partial vectors and cross the 64-element chunks of `threaded`.
    static let sizes = [1, 100, 37, 64, 3, 0, 129, 17, 8, 250, 5, 99]

    /// Two threads, no serial threshold, 64-element chunks: chunks cut runs and threads share them.
    static func threaded(_ tally: LaunchTally) throws -> Execution {
        try Execution(threads: 2, backend: .dispatch, serialThreshold: 0, chunkElements: 64, launchTally: tally)
    }

    /// Parameters of `sizes` holding `values`, with gradients holding `gradients`, packed or each
    /// allocated on its own.
    static func parameters(values: [[Double]], gradients: [[Double]], packed: Bool,
                           dtype: DType = .float32) throws -> [Tensor] {
        let shapes = values.map { [$0.count] }
        let parameters = try EquivalenceTests.zeros(shapes.map { ($0, dtype) }, packed: packed)
        let grads = try EquivalenceTests.zeros(shapes.map { ($0, dtype) }, packed: packed)
        for (index, parameter) in parameters.enumerated() {
            try parameter.copy(from: Tensor(values[index], dtype: dtype))
            try grads[index].copy(from: Tensor(gradients[index], dtype: dtype))
            parameter.grad = grads[index]
        }
        return parameters
    }

    @Test func packedZerosPutsEachTensorWhereThePreviousOneEnds() throws {
        let shapes = [[3], [0], [2, 5], [7], [1]]
        let tensors = try Tensor.packedZeros(shapes, dtype: .float16)
        #expect(tensors.map(\.shape) == shapes)
        #expect(Int(bitPattern: tensors[0].baseAddress) % 64 == 0)
        for (previous, next) in zip(tensors, tensors.dropFirst()) {
            #expect(previous.baseAddress + previous.byteCount == next.baseAddress)
        }
        #expect(tensors.allSatisfy { $0.dtype == .float16 && $0.toArray().allSatisfy { $0 == 0 } })
        #expect(try Tensor.packedZeros([]).isEmpty)
    }

    @Test func packedZerosRefusesBadShapesAndSizes() {
        #expect(throws: OptimError.self) { try Tensor.packedZeros([[4], [-1]]) }
        #expect(throws: OptimError.self) { try Tensor.packedZeros([[Int.max / 8], [Int.max / 8]], dtype: .float64) }
        #expect(throws: OptimError.self) { try Tensor.packedZeros([[1 << 40, 1 << 40]]) }
    }

    /// Every element-wise optimizer of the catalog runs packed parameters as one run per launch,
    /// threaded, and ends where the same parameters allocated one by one end on one thread.
    @Test(arguments: EquivalenceTests.entries)
    func packedParametersRunAsOneWithTheSameBits(entry: OptimizerEntry) throws {
        var random = TestRandom(seed: 41)
        let values = Self.sizes.map { random.values($0) }
        let gradients = Self.sizes.map { random.values($0, scale: 0.1) }
        let separate = try Self.parameters(values: values, gradients: gradients, packed: false)
        let packed = try Self.parameters(values: values, gradients: gradients, packed: true)
        let tally = LaunchTally()
        let reference = try entry.make(separate, options: entry.benchmarkOptions,
                                       execution: Execution(threads: 1, backend: .serial, instructionSet: .baseline))
        let optimizer = try entry.make(packed, options: entry.benchmarkOptions, execution: Self.threaded(tally))
        for _ in 0..<4 {
            try reference.step()
            try optimizer.step()
        }
        let same = snapshot(packed, state: optimizer.state(for:)) == snapshot(separate, state: reference.state(for:))
        #expect(same, "packed parameters end elsewhere than separate ones")
        let counts = tally.counts
        #expect(counts.launches >= 4)
        #expect(counts.runs == counts.launches, "\(counts)")
        #expect(counts.tensors == counts.launches * Self.sizes.filter { $0 > 0 }.count, "\(counts)")
        #expect(counts.boundariesInsideTensors > 0 && counts.threadedLaunches > 0)
    }

    /// A gradient allocated elsewhere splits the run around its tensor, a missing one drops the
    /// tensor from it, and the results stay those of separate tensors.
    @Test func aGradientFromElsewhereSplitsTheRun() throws {
        var random = TestRandom(seed: 5)
        let sizes = [10, 20, 30, 40, 50]
        let values = sizes.map { random.values($0) }
        let gradients = sizes.map { random.values($0, scale: 0.1) }
        let separate = try Self.parameters(values: values, gradients: gradients, packed: false)
        let packed = try Self.parameters(values: values, gradients: gradients, packed: true)
        let tally = LaunchTally()
        let reference = try Adam(separate, options: .init(lr: 0.05, amsgrad: true))
        let adam = try Adam(packed, options: .init(lr: 0.05, amsgrad: true), execution: Self.threaded(tally))
        func step(expectingRuns runs: Int, tensors: Int) throws {
            let before = tally.counts
            try reference.step()
            try adam.step()
            #expect(tally.counts.runs - before.runs == runs)
            #expect(tally.counts.tensors - before.tensors == tensors)
            let same = snapshot(packed, state: adam.state(for:)) == snapshot(separate, state: reference.state(for:))
            #expect(same, "packed parameters end elsewhere than separate ones")
        }
        try step(expectingRuns: 1, tensors: 5)
        try step(expectingRuns: 1, tensors: 5)
        let (packedKept, separateKept) = (packed[2].grad, separate[2].grad)
        let elsewhere = try Tensor(random.values(30, scale: 0.1))
        packed[2].grad = elsewhere
        separate[2].grad = try elsewhere.clone()
        try step(expectingRuns: 3, tensors: 5)
        packed[2].grad = nil
        separate[2].grad = nil
        try step(expectingRuns: 2, tensors: 4)
        // Back in its place, the tensor has made one update fewer than its neighbours: its
        // scalars differ, and it runs on its own.
        packed[2].grad = packedKept
        separate[2].grad = separateKept
        try step(expectingRuns: 3, tensors: 5)
    }

    /// The state of packed parameters is packed too, and stays so when a state dict is loaded:
    /// the loaded optimizer still runs them as one, and goes on as the saved one does.
    @Test func theStateIsPackedAndStaysPackedThroughAStateDict() throws {
        var random = TestRandom(seed: 9)
        let values = Self.sizes.map { random.values($0) }
        let gradients = Self.sizes.map { random.values($0, scale: 0.1) }
        let first = try Self.parameters(values: values, gradients: gradients, packed: true)
        let adam = try Adam(first, options: .init(lr: 0.01, amsgrad: true))
        try adam.step()
        for name in ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"] {
            let state = try first.map { try #require(adam.state(for: $0)?[name]) }
            for (previous, next) in zip(state, state.dropFirst()) {
                #expect(previous.baseAddress + previous.byteCount == next.baseAddress, "\(name)")
            }
        }

        let second = try Self.parameters(values: first.map { $0.toArray() }, gradients: gradients, packed: true)
        let tally = LaunchTally()
        let loaded = try Adam(second, options: .init(lr: 0.01, amsgrad: true), execution: Self.threaded(tally))
        try loaded.loadStateDict(adam.stateDict())
        try adam.step()
        try loaded.step()
        #expect(tally.counts.runs == 1 && tally.counts.launches == 1, "\(tally.counts)")
        let same = snapshot(second, state: loaded.state(for:)) == snapshot(first, state: adam.state(for:))
        #expect(same, "the loaded optimizer went elsewhere than the saved one")
    }
}
