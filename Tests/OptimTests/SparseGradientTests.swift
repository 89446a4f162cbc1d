import Optim
import PropertyBased
import Testing

/// Row-sparse gradients: who takes them, who refuses them, how repeated rows add up, and that
/// the sparse updates give the same bits on every execution.
@Suite struct SparseGradientTests {
    static func sparse(_ indices: [Int], _ rows: [[Double]], dtype: DType = .float32) throws -> RowSparseGradient {
        try RowSparseGradient(indices: indices, values: Tensor(rows.flatMap { $0 }, shape: [indices.count, rows.first?.count ?? 0],
                                                              dtype: dtype))
    }

    @Test(arguments: OptimizerCatalog.entries.filter { $0.sparseGradients == .refused && $0.engine != .closure })
    func everyDenseOnlyOptimizerRefusesASparseGradientAndChangesNothing(entry: OptimizerEntry) throws {
        let name = entry.name
        let dense = try Tensor([1, 2, 3, 4], shape: [2, 2])
        let embedding = try Tensor([1, 2, 3, 4, 5, 6], shape: [3, 2])
        let optimizer = try entry.make([dense, embedding], options: ["lr": 0.1])
        dense.grad = try Tensor([1, 1, 1, 1], shape: [2, 2])
        embedding.sparseGrad = try Self.sparse([2], [[1, 1]])
        do {
            try optimizer.step()
            Issue.record("\(name) accepted a sparse gradient")
        } catch let error as OptimError {
            #expect(error.message.contains("does not support sparse gradients"), "\(name): \(error.message)")
        }
        #expect(dense.toArray() == [1, 2, 3, 4] && embedding.toArray() == [1, 2, 3, 4, 5, 6], "\(name) changed a parameter")
    }

    @Test func lbfgsRefusesASparseGradientAndChangesNothing() throws {
        let x = try Tensor([1, 2, 3, 4, 5, 6], shape: [3, 2], dtype: .float64)
        let lbfgs = try LBFGS([x])
        #expect(throws: OptimError.self) {
            try lbfgs.step {
                x.sparseGrad = try Self.sparse([0], [[1, 1]], dtype: .float64)
                return 1
            }
        }
        #expect(x.toArray() == [1, 2, 3, 4, 5, 6])
    }

    @Test func sparseAdamRefusesDenseGradientsAndBothKindsAtOnce() throws {
        let embedding = try Tensor([1, 2, 3, 4], shape: [2, 2])
        let adam = try SparseAdam([embedding])
        embedding.grad = try Tensor([1, 1, 1, 1], shape: [2, 2])
        #expect(throws: OptimError.self) { try adam.step() }
        embedding.sparseGrad = try Self.sparse([0], [[1, 1]])
        #expect(throws: OptimError.self) { try adam.step() }
        embedding.grad = nil
        try adam.step()
        #expect(adam.state(for: embedding)?.step == 1)
        #expect(throws: OptimError.self) { try SparseAdam([embedding], options: .init(eps: 0)) }
    }

    @Test func zeroGradClearsSparseGradients() throws {
        let embedding = try Tensor([1, 2, 3, 4], shape: [2, 2])
        let adagrad = try Adagrad([embedding])
        embedding.sparseGrad = try Self.sparse([1], [[3, 4]])
        adagrad.zeroGrad(setToNone: false)
        #expect(embedding.sparseGrad?.indices == [1] && embedding.sparseGrad?.values.toArray() == [0, 0])
        adagrad.zeroGrad()
        #expect(embedding.sparseGrad == nil && embedding.grad == nil)
    }

    @Test func badSparseGradientsAreRefusedAndChangeNothing() throws {
        #expect(throws: OptimError.self) { try RowSparseGradient(indices: [0, 1], values: Tensor([1, 2], shape: [1, 2])) }
        #expect(throws: OptimError.self) { try RowSparseGradient(indices: [-1], values: Tensor([1, 2], shape: [1, 2])) }
        let embedding = try Tensor([1, 2, 3, 4, 5, 6], shape: [3, 2])
        let adagrad = try Adagrad([embedding], options: .init(lr: 0.1))
        for bad in [try Self.sparse([3], [[1, 1]]), try Self.sparse([0], [[1, 1, 1]]), try Self.sparse([0], [[1, 1]], dtype: .float64)] {
            embedding.sparseGrad = bad
            #expect(throws: OptimError.self) { try adagrad.step() }
            #expect(embedding.toArray() == [1, 2, 3, 4, 5, 6])
            // The state made with the optimizer, untouched.
            let state = adagrad.state(for: embedding)
            #expect(state?.step == 0 && state?["sum"]?.toArray() == [0, 0, 0, 0, 0, 0])
        }
        let decaying = try Adagrad([embedding], options: .init(weightDecay: 0.1))
        embedding.sparseGrad = try Self.sparse([0], [[1, 1]])
        #expect(throws: OptimError.self) { try decaying.step() }
    }

    /// Repeated rows are summed before the update: the same as one row holding their sum.
    @Test(arguments: [DType.float32, .float64])
    func repeatedRowsAreSummed(dtype: DType) throws {
        func run(_ gradient: RowSparseGradient) throws -> [Double] {
            let embedding = try Tensor([1, 2, 3, 4, 5, 6], shape: [3, 2], dtype: dtype)
            let adam = try SparseAdam([embedding], options: .init(lr: 0.1))
            embedding.sparseGrad = gradient
            try adam.step()
            try adam.step()
            return embedding.toArray() + adam.state(for: embedding)!["exp_avg"]!.toArray()
        }
        let repeated = try run(Self.sparse([2, 0, 2], [[0.5, 1], [1, 1], [0.25, -2]], dtype: dtype))
        let summed = try run(Self.sparse([0, 2], [[1, 1], [0.75, -1]], dtype: dtype))
        #expect(repeated == summed)
        // Row 1 received nothing: parameter and state unchanged there.
        #expect(repeated[2] == 3 && repeated[3] == 4 && repeated[8] == 0 && repeated[9] == 0)
    }

    /// Sparse Adagrad against the formula in Double: sum += g², p += -clr · g / (√sum + ε), on
    /// the touched rows only, with the accumulator starting at its initial value everywhere.
    @Test func sparseAdagradFollowsTheFormula() throws {
        let embedding = try Tensor([1, 2, 3, 4, 5, 6], shape: [3, 2], dtype: .float64)
        let options = Adagrad.Options(lr: 0.1, lrDecay: 0.5, initialAccumulatorValue: 0.2, eps: 1e-10)
        let adagrad = try Adagrad([embedding], options: options)
        var expected = embedding.toArray()
        var sum = [Double](repeating: 0.2, count: 6)
        let steps: [([Int], [[Double]])] = [([0, 2], [[1, -1], [0.5, 2]]), ([2], [[-3, 1]]), ([1, 1], [[1, 2], [3, 4]])]
        for (t, (indices, rows)) in steps.enumerated() {
            embedding.sparseGrad = try Self.sparse(indices, rows, dtype: .float64)
            try adagrad.step()
            let clr = 0.1 / (1 + Double(t) * 0.5)
            var touched: [Int: [Double]] = [:]
            for (row, values) in zip(indices, rows) { touched[row] = zip(touched[row] ?? [0, 0], values).map(+) }
            for (row, g) in touched {
                for j in 0..<2 {
                    let k = row * 2 + j
                    sum[k] += g[j] * g[j]
                    expected[k] += -clr * (g[j] / (sum[k].squareRoot() + 1e-10))
                }
            }
        }
        #expect(embedding.toArray() == expected)
        #expect(adagrad.state(for: embedding)!["sum"]!.toArray() == sum)
        #expect(adagrad.state(for: embedding)!.step == 3)
    }

    /// Random options and random sparse patterns (rows repeated, missing, out of order, empty
    /// gradients): the multi-tensor path on any thread count and backend gives the bits of the
    /// loop path on one thread.
    @Test func sparseUpdatesWithRandomOptionsMatchTheLoopPath() async throws {
        let scenarios = zip(Gen<UInt64>.value(in: 0...UInt64.max), Gen.element(of: [DType.float32, .float64, .float16, .bfloat16]))
        await propertyCheck(count: propertyChecks(10), input: scenarios) { seed, elementType in
            let dtype = elementType!
            func run(_ execution: Execution, _ implementation: Implementation) throws -> [[UInt8]] {
                var random = TestRandom(seed: seed)
                let shapes = (0..<3).map { _ in [1 + random.below(40), 1 + random.below(20)] }
                let adamParameters = try shapes.map { try Tensor(random.values($0[0] * $0[1]), shape: $0, dtype: dtype) }
                let adagradParameters = try adamParameters.map { try Tensor($0.toArray(), shape: $0.shape, dtype: dtype) }
                func unit() -> Double { (random.signed() + 1) / 2 }
                let adam = try SparseAdam(groups: adamParameters.map { parameter in
                    let o = SparseAdam.Options(lr: 0.1 * unit(), betas: Pair(0.99 * unit(), 0.5 + 0.4999 * unit()),
                                               eps: random.below(2) == 0 ? 1e-8 : 1e-3, maximize: random.below(2) == 0)
                    return ParameterGroupSpec([parameter]) { $0 = o }
                }, execution: execution, implementation: implementation)
                let adagrad = try Adagrad(groups: adagradParameters.map { parameter in
                    let o = Adagrad.Options(lr: 0.1 * unit(), lrDecay: random.below(2) == 0 ? 0 : unit(),
                                            initialAccumulatorValue: random.below(2) == 0 ? 0 : unit(),
                                            eps: random.below(2) == 0 ? 1e-10 : 1e-3, maximize: random.below(2) == 0)
                    return ParameterGroupSpec([parameter]) { $0 = o }
                }, execution: execution, implementation: implementation)
                for _ in 0..<3 {
                    for (a, b) in zip(adamParameters, adagradParameters) {
                        if random.below(5) == 0 {
                            a.sparseGrad = nil
                            b.sparseGrad = nil
                            continue
                        }
                        let count = random.below(2 * a.shape[0] + 1)
                        let indices = (0..<count).map { _ in random.below(a.shape[0]) }
                        let gradient = try RowSparseGradient(
                            indices: indices,
                            values: Tensor(random.values(count * a.shape[1]), shape: [count, a.shape[1]], dtype: dtype))
                        a.sparseGrad = gradient
                        b.sparseGrad = gradient
                    }
                    try adam.step()
                    try adagrad.step()
                }
                return snapshot(adamParameters, state: adam.state(for:)) + snapshot(adagradParameters, state: adagrad.state(for:))
            }
            let reference = try run(Execution(threads: 1, backend: .serial, instructionSet: .baseline), .forLoop)
            for threads in 1...8 {
                for backend in [Backend.dispatch, .openMP] {
                    let execution = try Execution(threads: threads, backend: backend, serialThreshold: 0, chunkElements: 16)
                    #expect(try run(execution, .multiTensor) == reference, "seed \(seed) \(dtype) \(threads) \(backend)")
                }
            }
        }
    }

    /// The sparse updates give the same bits on every thread count, backend, tier and path.
    @Test(arguments: [DType.float32, .float64, .float16, .bfloat16])
    func sparseUpdatesAreTheSameOnEveryExecution(dtype: DType) throws {
        var random = TestRandom(seed: 5)
        let rows = 300, width = 37
        let initial = random.values(rows * width)
        let gradients = try (0..<3).map { _ -> RowSparseGradient in
            let indices = (0..<200).map { _ in random.below(rows) }
            return try RowSparseGradient(indices: indices,
                                         values: Tensor(random.values(200 * width), shape: [200, width], dtype: dtype))
        }
        func run(_ execution: Execution, _ implementation: Implementation) throws -> [[UInt8]] {
            let a = try Tensor(initial, shape: [rows, width], dtype: dtype)
            let b = try Tensor(initial, shape: [rows, width], dtype: dtype)
            let adam = try SparseAdam([a], options: .init(lr: 0.01, maximize: true), execution: execution,
                                      implementation: implementation)
            let adagrad = try Adagrad([b], options: .init(lr: 0.1, initialAccumulatorValue: 0.1), execution: execution,
                                      implementation: implementation)
            for gradient in gradients {
                a.sparseGrad = gradient
                b.sparseGrad = gradient
                try adam.step()
                try adagrad.step()
            }
            return snapshot([a], state: adam.state(for:)) + snapshot([b], state: adagrad.state(for:))
        }
        let reference = try run(Execution(threads: 1, backend: .serial, instructionSet: .baseline), .forLoop)
        for threads in [1, 2, 3, 8] {
            for backend in [Backend.dispatch, .openMP] {
                for isa in InstructionSet.supported {
                    for implementation in Implementation.allCases {
                        let execution = try Execution(threads: threads, backend: backend, instructionSet: isa,
                                                      serialThreshold: 0, chunkElements: 64)
                        #expect(try run(execution, implementation) == reference,
                                "\(dtype) \(threads) threads \(backend) \(isa) \(implementation)")
                    }
                }
            }
        }
    }
}
