import Optim
import Testing

/// Behaviour every element-wise optimizer shares, checked on each: options torch refuses are
/// refused, a failed step changes nothing, defaults are torch's, and state is kept by torch's
/// names.
@Suite struct OptimizerFamilyTests {
    /// The catalog's optimizers stepped by dense gradients alone (LBFGS evaluates a closure,
    /// SparseAdam takes sparse gradients, Muon needs matrices: their own suites cover them).
    static let entries = OptimizerCatalog.entries.filter {
        $0.engine != .closure && $0.sparseGradients != .required && !$0.needsMatrices
    }

    @Test(arguments: OptimizerFamilyTests.entries)
    func aMismatchedGradientChangesNothing(entry: OptimizerEntry) throws {
        let a = try Tensor([1, 2, 3])
        let b = try Tensor([4, 5, 6, 7], shape: [2, 2])
        // The last sample option set turns on the most state.
        let optimizer = try entry.make([a, b], options: entry.sampleOptions.last ?? [:])
        a.grad = try Tensor([1, -1, 1])
        b.grad = try Tensor([1, 2, 3, 4], shape: [2, 2])
        try optimizer.step()
        try optimizer.step()
        let read = { (t: Tensor) in optimizer.state(for: t) }
        let before = snapshot([a, b], state: read)
        b.grad = try Tensor([1, 2, 3, 4], shape: [4])
        #expect(throws: OptimError.self) { try optimizer.step() }
        #expect(snapshot([a, b], state: read) == before)
        b.grad = try Tensor([1, 2, 3, 4], shape: [2, 2])
        try optimizer.step()
        #expect(read(b)?.step == 3)
        let names = Set(read(b)!.tensors.keys).union(read(b)!.values.keys)
        #expect(names.isSubset(of: entry.stateNames), "\(entry) keeps \(names), not all of them its state")
    }

    /// Every optimizer refuses its catalog entry's invalid option sets, at construction.
    @Test(arguments: OptimizerCatalog.entries)
    func invalidOptionSetsAreRefused(entry: OptimizerEntry) throws {
        #expect(!entry.invalidOptions.isEmpty)
        for options in entry.invalidOptions {
            let x = try Tensor([1, 2, 3, 4], shape: [2, 2], dtype: .float64)
            #expect(throws: OptimError.self, "\(entry) accepted \(options)") { _ = try entry.make([x], options: options) }
        }
        for options in entry.sampleOptions {
            let x = try Tensor([1, 2, 3, 4], shape: [2, 2], dtype: .float64)
            _ = try entry.make([x], options: options)
        }
    }

    @Test func setOptionsRefusesInvalidOptionsAndKeepsTheOldOnes() throws {
        let x = try Tensor([1])
        let rmsprop = try RMSprop([x])
        var options = rmsprop.paramGroups[0].options
        options.alpha = -1
        #expect(throws: OptimError.self) { try rmsprop.setOptions(options, group: 0) }
        #expect(rmsprop.paramGroups[0].options.alpha == 0.99)
    }

    /// Adam's first moment is torch's `lerp_`: with β₁ ≤ 0.5 its weight 1 − β₁ is at least 0.5,
    /// and torch then computes `g − (g − m)·β₁`, not `m + (1 − β₁)(g − m)`; the two differ in
    /// the last bit for some gradients, which this one-step check (m starts at 0) sees.
    @Test(arguments: ["Adam", "SwiftAdam"])
    func adamsFirstMomentIsTorchsLerp(name: String) throws {
        let entry = try #require(OptimizerCatalog.entry(named: name))
        let gradient = (1...64).map { Float($0) * 0.0137 - 0.3 }
        let x = try Tensor([Float](repeating: 1, count: gradient.count))
        x.grad = try Tensor(gradient)
        let adam = try entry.make([x], options: ["betas": [0.3, 0.999]])
        try adam.step()
        let weight = Float(1 - 0.3)
        let torchLerp = gradient.map { $0 - ($0 - 0) * (1 - weight) }
        #expect(try #require(adam.state(for: x)?["exp_avg"]).toFloatArray() == torchLerp)
        #expect(torchLerp != gradient.map { 0 + weight * ($0 - 0) }, "the gradients no longer tell the two apart")
    }

    /// ASGD's average is the mean of the iterates once averaging has started.
    @Test func asgdAveragesTheIterates() throws {
        let x = try Tensor([1.0, -2.0], dtype: .float64)
        let asgd = try ASGD([x], options: .init(lr: 0.1, lambd: 0, t0: 0))
        var iterates: [[Double]] = []
        for step in 1...6 {
            x.grad = try Tensor([Double(step), -1], dtype: .float64)
            try asgd.step()
            iterates.append(x.toArray())
        }
        // With t0 = 0 the t-th step uses mu = 1/(t - 1) (1 on the first two): the average is the
        // mean of the iterates from the second on. mu is kept in float32, hence the tolerance.
        let averaged = iterates.dropFirst()
        let mean = (0..<2).map { i in averaged.map { $0[i] }.reduce(0, +) / Double(averaged.count) }
        let average = asgd.state(for: x)!["ax"]!.toArray()
        for i in 0..<2 { #expect(abs(average[i] - mean[i]) < 1e-6, "ax \(average) mean \(mean)") }
        #expect(asgd.state(for: x)!.values["mu"] == Double(Float(1.0 / 6)))
    }

    /// RAdam steps as momentum SGD while the variance is intractable and adapts afterwards.
    @Test func radamRectifiesOnlyWhenTheVarianceIsTractable() throws {
        let x = try Tensor([0.0], dtype: .float64)
        let radam = try RAdam([x], options: .init(lr: 0.1))
        var updates: [Double] = []
        for _ in 1...7 {
            x.grad = try Tensor([4.0], dtype: .float64)
            let before = x.toArray()[0]
            try radam.step()
            updates.append(before - x.toArray()[0])
        }
        // beta2 = 0.999: rho_t exceeds 5 from step 6. Before, the update is lr times the
        // bias-corrected average, the gradient itself: 0.1 * 4.
        for update in updates.prefix(5) { #expect(abs(update - 0.4) < 1e-12) }
        #expect(abs(updates[5] - 0.4) > 0.05)
    }
}
