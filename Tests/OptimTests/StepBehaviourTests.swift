import Optim
import Testing

@Suite struct StepBehaviourTests {
    @Test func aParameterWithoutGradientIsSkippedAndItsStateUntouched() throws {
        let a = try Tensor([1, 2, 3])
        let b = try Tensor([4, 5])
        let adam = try Adam([a, b], options: .init(lr: 0.1))
        a.grad = try Tensor([1, 1, 1])
        b.grad = try Tensor([1, 1])
        try adam.step()
        let bBefore = b.toArray()
        let bState = adam.state(for: b)!.tensors.mapValues { $0.toArray() }
        b.grad = nil
        try adam.step()
        #expect(b.toArray() == bBefore)
        #expect(adam.state(for: b)!.tensors.mapValues { $0.toArray() } == bState)
        #expect(adam.state(for: b)!.step == 1)
        #expect(adam.state(for: a)!.step == 2)
        let fresh = try Tensor([7])
        let sgd = try SGD([fresh], options: .init(momentum: 0.9))
        try sgd.step()
        #expect(sgd.state(for: fresh) == nil)
        #expect(fresh.toArray() == [7])
    }

    @Test func stepWithClosureReturnsItsLossAndCallsItOnce() throws {
        let x = try Tensor([3])
        let sgd = try SGD([x], options: .init(lr: 0.25))
        var calls = 0
        let loss = try sgd.step {
            calls += 1
            let value = x.toArray()[0]
            x.grad = try Tensor([2 * value])
            return value * value
        }
        #expect(loss == 9)
        #expect(calls == 1)
        #expect(x.toArray() == [1.5])
    }

    @Test func aThrowingClosureChangesNothing() throws {
        struct Stop: Error {}
        let x = try Tensor([3])
        x.grad = try Tensor([1])
        let adam = try Adam([x])
        #expect(throws: Stop.self) { try adam.step { throw Stop() } }
        #expect(x.toArray() == [3])
        #expect(adam.state(for: x) == nil)
    }

    @Test func zeroGradDropsOrZeroesGradients() throws {
        let x = try Tensor([1, 2])
        let sgd = try SGD([x])
        x.grad = try Tensor([3, 4])
        sgd.zeroGrad(setToNone: false)
        #expect(x.grad?.toArray() == [0, 0])
        sgd.zeroGrad()
        #expect(x.grad == nil)
    }

    /// A mismatched gradient anywhere refuses the whole step before anything changes, even
    /// after earlier steps built and reused the launch.
    @Test(arguments: Implementation.allCases)
    func aMismatchedGradientChangesNothing(implementation: Implementation) throws {
        let a = try Tensor([1, 2, 3])
        let b = try Tensor([4, 5, 6, 7], shape: [2, 2])
        let adam = try Adam([a, b], options: .init(lr: 0.1, amsgrad: true), implementation: implementation)
        a.grad = try Tensor([1, -1, 1])
        b.grad = try Tensor([1, 2, 3, 4], shape: [2, 2])
        try adam.step()
        try adam.step()
        let before = snapshot([a, b], state: adam.state(for:))
        for bad in [try Tensor([1, 2, 3, 4], shape: [4]), try Tensor([1, 2, 3, 4], shape: [2, 2], dtype: .float64)] {
            b.grad = bad
            #expect(throws: OptimError.self) { try adam.step() }
            #expect(snapshot([a, b], state: adam.state(for:)) == before)
        }
        b.grad = try Tensor([1, 2, 3, 4], shape: [2, 2])
        try adam.step()
        #expect(adam.state(for: b)!.step == 3)
    }

    /// A gradient released after a step and replaced by a new tensor is read from the new
    /// tensor's memory, even when the new tensor object takes the released one's address.
    @Test(arguments: Implementation.allCases)
    func aReplacedGradientIsReadFromItsOwnMemory(implementation: Implementation) throws {
        let first = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        let second = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        defer { first.deallocate(); second.deallocate() }
        first.initializeMemory(as: Float.self, repeating: 1, count: 16)
        second.initializeMemory(as: Float.self, repeating: -2, count: 16)
        let x = try Tensor(Array(repeating: 0.0, count: 16))
        let sgd = try SGD([x], options: .init(lr: 0.5), implementation: implementation)
        for _ in 0..<3 {
            x.grad = try Tensor(wrapping: first, shape: [16], dtype: .float32)
            try sgd.step()
            x.grad = nil
            x.grad = try Tensor(wrapping: second, shape: [16], dtype: .float32)
            try sgd.step()
            x.grad = nil
        }
        // Each pair of steps moves x by -0.5 * 1 + 0.5 * 2 = 0.5.
        #expect(x.toArray() == Array(repeating: 1.5, count: 16))
    }

    /// Replacing gradient tensors between steps, or writing into them, updates the same way.
    @Test func replacedAndInPlaceGradientsGiveTheSameResult() throws {
        var random = TestRandom(seed: 3)
        let gradients = (0..<4).map { _ in random.values(50) }
        func run(replacing: Bool) throws -> [UInt8] {
            let x = try Tensor(Array(repeating: 0.5, count: 50))
            let sgd = try SGD([x], options: .init(lr: 0.1, momentum: 0.9))
            x.grad = try Tensor(gradients[0])
            for g in gradients {
                if replacing { x.grad = try Tensor(g) } else { try x.grad!.copy(from: Tensor(g)) }
                try sgd.step()
            }
            return bytes(of: x)
        }
        #expect(try run(replacing: true) == run(replacing: false))
    }

    @Test func parametersAppearOnceAndGroupsAreNotEmpty() throws {
        let x = try Tensor([1])
        #expect(throws: OptimError.self) { try Adam([x, x]) }
        #expect(throws: OptimError.self) { try SGD(groups: [.init([x]), .init([x])]) }
        #expect(throws: OptimError.self) { try Adam(groups: []) }
        // torch: "optimizer got an empty parameter list".
        #expect(throws: OptimError.self) { try Adam([]) }
        #expect(throws: OptimError.self) { try LBFGS([]) }
    }

    @Test func groupsKeepTheirOwnOptions() throws {
        let a = try Tensor([1])
        let b = try Tensor([1])
        let sgd = try SGD(groups: [.init([a]), .init([b]) { $0.lr = 0.5 }], defaults: .init(lr: 0.1))
        #expect(sgd.learningRates == [0.1, 0.5])
        a.grad = try Tensor([1])
        b.grad = try Tensor([1])
        try sgd.step()
        #expect(a.toArray() == [Double(Float(1) - Float(0.1))])
        #expect(b.toArray() == [0.5])
        var options = sgd.paramGroups[1].options
        options.lr = -1
        #expect(throws: OptimError.self) { try sgd.setOptions(options, group: 1) }
        #expect(sgd.learningRates == [0.1, 0.5])
        #expect(throws: OptimError.self) { try sgd.setOptions(options, group: 5) }
    }

    @Test func invalidOptionsAreRefusedWithAMessage() throws {
        let x = try Tensor([1])
        let sgdCases: [SGD.Options] = [
            .init(lr: -1), .init(lr: .nan), .init(momentum: -0.5), .init(weightDecay: -1),
            .init(momentum: 0, nesterov: true), .init(momentum: 0.9, dampening: 0.1, nesterov: true),
            .init(dampening: .infinity),
        ]
        for options in sgdCases {
            #expect(throws: OptimError.self, "\(options)") { try SGD([x], options: options) }
        }
        let adamCases: [Adam.Options] = [
            .init(lr: -1), .init(betas: Pair(1, 0.999)), .init(betas: Pair(0.9, -0.1)), .init(betas: Pair(.nan, 0.9)),
            .init(eps: -1), .init(weightDecay: -0.1), .init(lr: .infinity),
        ]
        for options in adamCases {
            #expect(throws: OptimError.self) { try Adam([x], options: options) }
            #expect(throws: OptimError.self) { try AdamW([x], options: options) }
        }
        #expect(throws: OptimError.self) { try AdamW([x], options: .init(decoupledWeightDecay: false)) }
        do {
            _ = try Adam([x], options: .init(betas: Pair(1, 0.999)))
        } catch let error as OptimError {
            #expect(error.kind == .invalidOption)
            #expect(error.message.contains("beta parameter at index 0"))
        }
    }

    @Test func executionRefusesWhatItCannotRun() {
        #expect(throws: OptimError.self) { try Execution(threads: 0) }
        #expect(throws: OptimError.self) { try Execution(chunkElements: 0) }
        do {
            try Execution.openOpenMPRuntime(libraries: ["libno-such-openmp.so"])
            Issue.record("a missing OpenMP runtime was reported as loaded")
        } catch let error as OptimError {
            #expect(error.kind == .unavailable)
            #expect(error.message.contains("libomp-dev"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    /// Each optimizer reaches the minimum of the Rosenbrock function and of a quadratic bowl
    /// under its catalog entry's convergence options: a rule can agree with itself and still be
    /// wrong. Steps go through the closure, as LBFGS needs; SparseAdam gets its gradient as
    /// rows. Only an optimizer of matrices (Muon) has no such options.
    @Test(arguments: OptimizerCatalog.entries)
    func reachesTheMinimum(_ entry: OptimizerEntry) throws {
        guard let options = entry.convergenceOptions else {
            #expect(entry.needsMatrices, "\(entry) has no convergence options")
            return
        }
        func minimize(from start: [Double], dtype: DType, steps: Int,
                      _ function: ([Double]) -> (value: Double, gradient: [Double])) throws -> [Double] {
            let x = try Tensor(start, dtype: dtype)
            let optimizer = try entry.make([x], options: options)
            for _ in 0..<steps {
                _ = try optimizer.step {
                    let (value, gradient) = function(x.toArray())
                    if entry.sparseGradients == .required {
                        x.sparseGrad = try RowSparseGradient(indices: Array(gradient.indices),
                                                             values: Tensor(gradient, dtype: dtype))
                    } else {
                        x.grad = try Tensor(gradient, dtype: dtype)
                    }
                    return value
                }
            }
            return x.toArray()
        }
        let rosenbrock = try minimize(from: [-1.2, 1], dtype: .float64, steps: 20_000) { x in
            let (a, b) = (1 - x[0], x[1] - x[0] * x[0])
            return (a * a + 100 * b * b, [-2 * a - 400 * x[0] * b, 200 * b])
        }
        #expect(abs(rosenbrock[0] - 1) < 0.05 && abs(rosenbrock[1] - 1) < 0.1, "\(entry) ended at \(rosenbrock)")
        let bowl = try minimize(from: [3, -4, 5], dtype: .float32, steps: 5_000) { x in
            (x.map { $0 * $0 }.reduce(0, +), x.map { 2 * $0 })
        }
        #expect(bowl.allSatisfy { abs($0) < 0.05 }, "\(entry) on the bowl ended at \(bowl)")
    }

    /// `maximize` climbs: the same problem with the gradient's sign flipped.
    @Test func maximizeClimbs() throws {
        let x = try Tensor([2])
        let adam = try Adam([x], options: .init(lr: 0.05, maximize: true))
        for _ in 0..<2_000 {
            x.grad = try Tensor([-2 * x.toArray()[0]])  // gradient of -x^2
            try adam.step()
        }
        #expect(abs(x.toArray()[0]) < 0.05)
    }
}
