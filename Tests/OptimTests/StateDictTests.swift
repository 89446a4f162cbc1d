import Foundation
import Optim
import Testing

/// State dicts: what torch 2.15 writes is read and written back the same, and a run saved and
/// restored mid-way continues bit for bit as if never interrupted.
@Suite struct StateDictTests {
    /// State tensors are cut from one allocation per slot: each must still start on a cache
    /// line, own its bytes (empty ones too), and outlive the optimizer that made them.
    @Test func stateTensorsAreAlignedDisjointAndOutliveTheirOptimizer() throws {
        let counts = [0, 3, 17, 100, 0, 1]
        let parameters = try counts.map { try Tensor.zeros([$0], dtype: .float32) }
        for (k, parameter) in parameters.enumerated() {
            parameter.grad = try Tensor((0..<counts[k]).map { Double($0 + k) * 0.25 - 1 })
        }
        var adam: Adam? = try Adam(parameters, options: .init(lr: 0.1))
        try adam?.step()
        let states = try parameters.map { try #require(adam?.state(for: $0)) }
        var ranges: [Range<Int>] = []
        for state in states {
            for name in ["exp_avg", "exp_avg_sq"] {
                let tensor = try #require(state[name])
                let start = Int(bitPattern: tensor.baseAddress)
                #expect(start % 64 == 0)
                ranges.append(start..<(start + max(tensor.byteCount, 1)))
            }
        }
        for (i, a) in ranges.enumerated() {
            for b in ranges[(i + 1)...] { #expect(!a.overlaps(b)) }
        }
        let before = states.map { $0.tensors.mapValues { $0.toArray() } }
        #expect(before[3]["exp_avg"]?.count == 100 && before[3]["exp_avg"]?.contains { $0 != 0 } == true)
        adam = nil
        #expect(states.map { $0.tensors.mapValues { $0.toArray() } } == before)
    }

    struct GoldenFile: Decodable {
        struct Case: Decodable {
            struct Parameter: Decodable { let shape: [Int] }
            let id: String
            let optimizer: String
            let params: [Parameter]
            let stateDict: OptimizerStateDict

            enum CodingKeys: String, CodingKey {
                case id, optimizer, params
                case stateDict = "state_dict"
            }
        }
        let cases: [Case]
    }

    static let golden = try! JSONDecoder().decode(
        GoldenFile.self, from: Data(contentsOf: fixtures.appendingPathComponent("state_dicts.json")))

    /// The catalog's optimizer `name` over `parameters` split into groups of `groupSizes`, with
    /// its defaults.
    static func make(_ entry: OptimizerEntry, _ parameters: [Tensor], groupSizes: [Int]) throws -> any Optimizer {
        var groups: [OptimizerEntry.Group] = []
        var first = 0
        for size in groupSizes {
            groups.append((Array(parameters[first..<(first + size)]), [:]))
            first += size
        }
        return try entry.make(groups: groups, execution: Execution(threads: 1))
    }

    static let elementwise = golden.cases.filter { $0.optimizer != "LBFGS" }

    /// The catalog's optimizers that torch has, but for the per-tensor ones (their suites
    /// check their state dicts) and LBFGS (below).
    static let torchElementwise = OptimizerCatalog.entries.filter { $0.engine == .builtInRule }

    @Test func theFixtureHasACaseForEveryElementwiseOptimizerOfTorch() {
        #expect(Set(Self.elementwise.map(\.optimizer)) == Set(Self.torchElementwise.map(\.name)))
    }

    /// torch's state dict, loaded and written back, is the same dict (torch's keys that choose
    /// an implementation, such as `foreach`, are not options here and are not written).
    @Test(arguments: elementwise.map(\.id))
    func torchsStateDictReadsAndWritesBack(id: String) throws {
        let golden = Self.golden.cases.first { $0.id == id }!
        let parameters = try golden.params.map { try Tensor.zeros($0.shape) }
        let sizes = golden.stateDict.paramGroups.map { group -> Int in
            if case .list(let ids)? = group["params"] { ids.count } else { 0 }
        }
        let entry = try #require(OptimizerCatalog.entry(named: golden.optimizer))
        let optimizer = try Self.make(entry, parameters, groupSizes: sizes)
        try optimizer.loadStateDict(golden.stateDict)
        let written = optimizer.stateDict()
        #expect(written.state == golden.stateDict.state)
        for (ours, theirs) in zip(written.paramGroups, golden.stateDict.paramGroups) {
            for (key, value) in ours {
                #expect(Self.sameNumbers(value, theirs[key] ?? .null),
                        "\(id) option \(key): wrote \(value), torch has \(theirs[key] ?? .null)")
            }
        }
    }

    /// Equal values, numbers compared as numbers (torch writes 50 where this library has 50.0).
    static func sameNumbers(_ a: StateValue, _ b: StateValue) -> Bool {
        switch (a, b) {
        case (.list(let x), .list(let y)): x.count == y.count && zip(x, y).allSatisfy { sameNumbers($0, $1) }
        default: a.doubleValue.map { $0 == b.doubleValue } ?? (a == b)
        }
    }

    /// A run saved after three steps, encoded to JSON and restored into a new optimizer
    /// continues exactly as the run that was never interrupted.
    @Test(arguments: OptimizerCatalog.entries.filter {
        $0.engine != .closure && $0.sparseGradients != .required && !$0.needsMatrices
    })
    func aRestoredRunContinuesBitForBit(entry: OptimizerEntry) throws {
        var random = TestRandom(seed: 11)
        let initial = [random.values(7), random.values(12), random.values(5)]
        let gradients = (0..<6).map { _ in [random.values(7), random.values(12), random.values(5)] }
        func parameters() throws -> [Tensor] {
            try [Tensor(initial[0], dtype: .float64), Tensor(initial[1], shape: [3, 4]), Tensor(initial[2], dtype: .bfloat16)]
        }
        func apply(_ step: Int, to parameters: [Tensor]) throws {
            for (index, parameter) in parameters.enumerated() where !(step == 1 && index == 2) {
                parameter.grad = try Tensor(gradients[step][index], shape: parameter.shape, dtype: parameter.dtype)
            }
        }
        let straight = try parameters()
        let uninterrupted = try Self.make(entry, straight, groupSizes: [2, 1])
        for step in 0..<6 {
            try apply(step, to: straight)
            try uninterrupted.step()
            straight.forEach { $0.grad = nil }
        }

        let first = try parameters()
        let before = try Self.make(entry, first, groupSizes: [2, 1])
        for step in 0..<3 {
            try apply(step, to: first)
            try before.step()
            first.forEach { $0.grad = nil }
        }
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let saved = try encoder.encode(before.stateDict())
        let resumed = try first.map { try $0.clone() }
        let after = try Self.make(entry, resumed, groupSizes: [2, 1])
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        try after.loadStateDict(decoder.decode(OptimizerStateDict.self, from: saved))
        for step in 3..<6 {
            try apply(step, to: resumed)
            try after.step()
            resumed.forEach { $0.grad = nil }
        }
        #expect(resumed.map { bytes(of: $0) } == straight.map { bytes(of: $0) })
        #expect(after.stateDict() == uninterrupted.stateDict())
    }

    /// torch's `load_state_dict` pairs the ids of a saved group's `params` with the
    /// optimizer's parameters by position, whatever the ids are: groups listing `[3, 1]` and
    /// `[0, 2]` give the first parameter the state saved under id 3, and so on.
    @Test(arguments: OptimizerCatalog.entries.filter { $0.engine != .closure && $0.sparseGradients != .required })
    func savedIDsArePairedWithParametersByPosition(entry: OptimizerEntry) throws {
        var random = TestRandom(seed: 5)
        let parameters = try (0..<4).map { _ in try Tensor(random.values(12), shape: [3, 4]) }
        let optimizer = try Self.make(entry, parameters, groupSizes: [2, 2])
        for _ in 0..<2 {
            for parameter in parameters { parameter.grad = try Tensor(random.values(12), shape: [3, 4]) }
            try optimizer.step()
        }
        let saved = optimizer.stateDict()
        let idAtPosition = [3, 1, 0, 2]
        var renumbered = saved
        renumbered.paramGroups[0]["params"] = .list([.integer(3), .integer(1)])
        renumbered.paramGroups[1]["params"] = .list([.integer(0), .integer(2)])
        renumbered.state = Dictionary(uniqueKeysWithValues: saved.state.map { (idAtPosition[$0.key], $0.value) })

        let copies = try parameters.map { try $0.clone() }
        let restored = try Self.make(entry, copies, groupSizes: [2, 2])
        try restored.loadStateDict(renumbered)
        #expect(restored.stateDict() == saved)
        for (original, copy) in zip(parameters, copies) {
            let expected = try #require(optimizer.state(for: original))
            let state = try #require(restored.state(for: copy))
            // torch keeps no count for SGD and Muon: a loaded state has made one update at least.
            if saved.state.values.contains(where: { $0["step"] != nil }) { #expect(state.step == expected.step) }
            #expect(state.values == expected.values)
            #expect(state.tensors.mapValues { $0.bitHash() } == expected.tensors.mapValues { $0.bitHash() })
        }
    }

    /// torch's LBFGS state dict (history, direction, step length) reads and writes back.
    @Test func lbfgsStateDictReadsAndWritesBack() throws {
        let golden = try #require(Self.golden.cases.first { $0.optimizer == "LBFGS" })
        let parameters = try golden.params.map { try Tensor.zeros($0.shape, dtype: .float64) }
        let lbfgs = try LBFGS(parameters)
        try lbfgs.loadStateDict(golden.stateDict)
        let written = lbfgs.stateDict()
        let theirs = golden.stateDict.state[0]!
        for (key, value) in written.state[0]! {
            #expect(Self.sameNumbers(value, theirs[key] ?? .null), "LBFGS state \(key): wrote \(value), torch has \(theirs[key] ?? .null)")
        }
        #expect(Set(written.state[0]!.keys) == Set(theirs.keys))
        for (key, value) in written.paramGroups[0] {
            #expect(Self.sameNumbers(value, golden.stateDict.paramGroups[0][key] ?? .null), "LBFGS option \(key)")
        }
    }

    /// LBFGS saved mid-run and restored continues bit for bit.
    @Test func aRestoredLBFGSRunContinuesBitForBit() throws {
        func rosenbrock(_ x: Tensor) throws -> Double {
            let v = x.toArray()
            var loss = 0.0
            var grad = [Double](repeating: 0, count: v.count)
            for i in 0..<(v.count - 1) {
                let a = 1 - v[i], b = v[i + 1] - v[i] * v[i]
                loss += a * a + 100 * b * b
                grad[i] += -2 * a - 400 * v[i] * b
                grad[i + 1] += 200 * b
            }
            x.grad = try Tensor(grad, dtype: .float64)
            return loss
        }
        let options = LBFGS.Options(maxIter: 4, historySize: 3, lineSearch: .strongWolfe)
        let straight = try Tensor([-1.2, 1, 0.5, -0.3], dtype: .float64)
        let uninterrupted = try LBFGS([straight], options: options)
        for _ in 0..<4 { try uninterrupted.step { try rosenbrock(straight) } }

        let first = try Tensor([-1.2, 1, 0.5, -0.3], dtype: .float64)
        let before = try LBFGS([first], options: options)
        for _ in 0..<2 { try before.step { try rosenbrock(first) } }
        let saved = try JSONEncoder().encode(before.stateDict())
        let resumed = try first.clone()
        let after = try LBFGS([resumed], options: .init())
        try after.loadStateDict(JSONDecoder().decode(OptimizerStateDict.self, from: saved))
        #expect(after.paramGroups[0].options == before.paramGroups[0].options)
        for _ in 0..<2 { try after.step { try rosenbrock(resumed) } }
        #expect(bytes(of: resumed) == bytes(of: straight))
    }

    @Test func aDictThatDoesNotFitIsRefusedAndChangesNothing() throws {
        let a = try Tensor([1, 2, 3])
        let b = try Tensor([1, 2])
        let adam = try Adam(groups: [.init([a]), .init([b])], defaults: .init(lr: 0.1))
        a.grad = try Tensor([1, 1, 1])
        b.grad = try Tensor([1, 1])
        try adam.step()
        let good = adam.stateDict()
        var broken: [OptimizerStateDict] = []
        var oneGroup = good
        oneGroup.paramGroups.removeLast()
        broken.append(oneGroup)
        var wrongShape = good
        wrongShape.state[0]!["exp_avg"] = .tensor(TensorValue(dtype: .float32, shape: [2], data: [0, 0]))
        broken.append(wrongShape)
        var unknownKey = good
        unknownKey.state[1]!["momentum_buffer"] = .tensor(TensorValue(dtype: .float32, shape: [2], data: [0, 0]))
        broken.append(unknownKey)
        var badOption = good
        badOption.paramGroups[1]["betas"] = .list([.number(1.5), .number(0.9)])
        broken.append(badOption)
        var strayState = good
        strayState.state[7] = ["step": .tensor(.scalar(1))]
        broken.append(strayState)
        var noStep = good
        noStep.state[0]!["step"] = nil
        broken.append(noStep)
        for dict in broken {
            #expect(throws: OptimError.self) { try adam.loadStateDict(dict) }
            #expect(adam.stateDict() == good)
        }
    }
}
