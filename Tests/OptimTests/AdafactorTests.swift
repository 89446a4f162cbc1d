import Foundation
import Optim
import PropertyBased
import Testing

/// Configurations that must all give the bits of the loop path on one serial thread at the
/// baseline tier: 1 to 8 threads on both threaded backends, every tier with both paths. The
/// serial threshold is 0 so that even small steps spread over threads.
func perTensorConfigurations() throws -> [(Execution, Implementation)] {
    var result: [(Execution, Implementation)] = []
    for threads in 1...8 {
        for backend in [Backend.dispatch, .openMP] {
            result.append((try Execution(threads: threads, backend: backend, serialThreshold: 0), .multiTensor))
        }
    }
    for isa in InstructionSet.supported {
        for implementation in Implementation.allCases {
            result.append((try Execution(threads: 3, backend: .dispatch, instructionSet: isa, serialThreshold: 0),
                           implementation))
        }
    }
    return result
}

let serialBaseline = try! Execution(threads: 1, backend: .serial, instructionSet: .baseline)

/// Adafactor against a scalar reference of torch's single-tensor path, bit for bit across
/// threads, backends and tiers, option checks, and state dicts.
@Suite struct AdafactorTests {
    /// torch's `_single_tensor_adafactor` in `Double`, element by element: for float64
    /// parameters the library must agree to rounding (its sums accumulate in another order).
    final class Reference {
        var step = 0
        var rowVar: [Double] = [], colVar: [Double] = [], variance: [Double] = []
        let shape: [Int]
        let options: Adafactor.Options

        init(shape: [Int], options: Adafactor.Options) {
            self.shape = shape
            self.options = options
        }

        func update(_ p: inout [Double], _ gradient: [Double]) {
            let o = options
            let n = p.count
            let g = o.maximize ? gradient.map { -$0 } : gradient
            step += 1
            let t = Double(step)
            let w = pow(t, o.beta2Decay)
            let rho = min(o.lr, 1 / t.squareRoot())
            let eps1 = o.eps.0 ?? Double.ulpOfOne
            let rms = p.reduce(0) { $0 + $1 * $1 }.squareRoot() / Double(n).squareRoot()
            let alpha = max(o.eps.1, rms) * rho
            if o.weightDecay != 0 { p = p.map { $0 * (1 - o.lr * o.weightDecay) } }
            func lerp(_ a: Double, _ b: Double) -> Double { w < 0.5 ? a + w * (b - a) : b - (b - a) * (1 - w) }
            var estimate = [Double](repeating: 0, count: n)
            if shape.count >= 2 {
                let rows = shape[shape.count - 2], cols = shape[shape.count - 1], batches = n / (rows * cols)
                if rowVar.isEmpty {
                    rowVar = Array(repeating: 0, count: batches * rows)
                    colVar = Array(repeating: 0, count: batches * cols)
                }
                for b in 0..<batches {
                    for r in 0..<rows {
                        var s = 0.0
                        for c in 0..<cols { s += g[(b * rows + r) * cols + c] * g[(b * rows + r) * cols + c] }
                        rowVar[b * rows + r] = lerp(rowVar[b * rows + r], s / Double(cols))
                    }
                    for c in 0..<cols {
                        var s = 0.0
                        for r in 0..<rows { s += g[(b * rows + r) * cols + c] * g[(b * rows + r) * cols + c] }
                        colVar[b * cols + c] = lerp(colVar[b * cols + c], s / Double(rows))
                    }
                    let mean = max(rowVar[(b * rows)..<((b + 1) * rows)].reduce(0, +) / Double(rows), eps1)
                    for r in 0..<rows {
                        for c in 0..<cols {
                            estimate[(b * rows + r) * cols + c] = rowVar[b * rows + r] * colVar[b * cols + c] / mean
                        }
                    }
                }
            } else {
                if variance.isEmpty { variance = Array(repeating: 0, count: n) }
                for i in 0..<n { variance[i] = lerp(variance[i], g[i] * g[i]) }
                estimate = variance
            }
            let u = (0..<n).map { g[$0] / max(estimate[$0], eps1 * eps1).squareRoot() }
            let updateRMS = u.reduce(0) { $0 + $1 * $1 }.squareRoot() / (Double(n).squareRoot() * o.d)
            let denominator = max(1, updateRMS)
            for i in 0..<n { p[i] -= alpha / denominator * u[i] }
        }
    }

    static let shapes: [[Int]] = [[7], [], [1], [5, 9], [1, 33], [17, 1], [3, 4, 19], [2, 2, 3, 5], [40]]
    static let optionSets: [Adafactor.Options] = [
        .init(),
        .init(lr: 0.05, beta2Decay: -0.5, eps: (1e-4, 1e-2), d: 1.5, weightDecay: 0.1, maximize: true),
        .init(lr: 1, eps: (0, 1e-3), d: 4),
    ]

    @Test(arguments: 0..<3)
    func matchesTheScalarReference(optionSet: Int) throws {
        let options = Self.optionSets[optionSet]
        var random = TestRandom(seed: 11 + UInt64(optionSet))
        let initial = Self.shapes.map { random.values($0.reduce(1, *), scale: 2) }
        let parameters = try zip(initial, Self.shapes).map { try Tensor($0, shape: $1, dtype: .float64) }
        let adafactor = try Adafactor(parameters, options: options, execution: Execution(threads: 2, serialThreshold: 0))
        let references = Self.shapes.map { Reference(shape: $0, options: options) }
        var expected = initial
        for _ in 0..<6 {
            for (index, parameter) in parameters.enumerated() {
                let gradient = random.values(parameter.count, scale: 3)
                parameter.grad = try Tensor(gradient, shape: parameter.shape, dtype: .float64)
                references[index].update(&expected[index], gradient)
            }
            try adafactor.step()
        }
        for (index, parameter) in parameters.enumerated() {
            for (got, want) in zip(parameter.toArray(), expected[index]) {
                #expect(abs(got - want) <= 1e-12 * max(1, abs(want)), "shape \(Self.shapes[index]): \(got) vs \(want)")
            }
            let state = try #require(adafactor.state(for: parameter))
            #expect(state.step == 6)
            if Self.shapes[index].count >= 2 {
                let shape = Self.shapes[index]
                #expect(state["row_var"]?.shape == Array(shape.dropLast()) + [1])
                #expect(state["col_var"]?.shape == Array(shape.dropLast(2)) + [1, shape.last!])
                #expect(state["variance"] == nil)
                for (got, want) in zip(state["row_var"]!.toArray(), references[index].rowVar) {
                    #expect(abs(got - want) <= 1e-12 * max(1, abs(want)))
                }
                for (got, want) in zip(state["col_var"]!.toArray(), references[index].colVar) {
                    #expect(abs(got - want) <= 1e-12 * max(1, abs(want)))
                }
            } else {
                #expect(state["variance"]?.shape == Self.shapes[index])
                #expect(state["row_var"] == nil)
            }
        }
    }

    /// Converges: a quadratic bowl, factored and not, gets within a small distance of its
    /// minimum.
    @Test func minimizesAQuadratic() throws {
        let target = try Tensor((0..<24).map { Double($0 % 5) - 2 }, shape: [4, 6], dtype: .float32)
        let vector = try Tensor([Double](repeating: 3, count: 10), dtype: .float32)
        let matrix = try Tensor.zeros([4, 6], dtype: .float32)
        let adafactor = try Adafactor([matrix, vector], options: .init(lr: 0.1))
        let goal = target.toArray()
        for _ in 0..<400 {
            matrix.grad = try Tensor(zip(matrix.toArray(), goal).map { 2 * ($0 - $1) }, shape: [4, 6], dtype: .float32)
            vector.grad = try Tensor(vector.toArray().map { 2 * ($0 + 1) }, dtype: .float32)
            try adafactor.step()
        }
        let matrixError = zip(matrix.toArray(), goal).map { abs($0 - $1) }.max()!
        let vectorError = vector.toArray().map { abs($0 + 1) }.max()!
        #expect(matrixError < 0.05 && vectorError < 0.05, "errors \(matrixError), \(vectorError)")
    }

    struct Scenario: Sendable, CustomStringConvertible {
        let seed: UInt64
        let tensorCount: Int
        var description: String { "Scenario(seed: \(seed), tensors: \(tensorCount))" }
    }
    static let scenarios = zip(Gen<UInt64>.value(in: 0...UInt64.max), Gen.int(in: 1...6))
        .map { Scenario(seed: $0, tensorCount: $1) }

    static func run(_ scenario: Scenario, execution: Execution, implementation: Implementation) throws -> [[UInt8]] {
        var random = TestRandom(seed: scenario.seed)
        let shapeChoices: [[Int]] = [[0], [1], [17], [100], [0, 4], [3, 5], [16, 16], [33, 70], [2, 7, 17], [5, 1],
                                     [1, 300], [300, 3], []]
        let parameters = try (0..<scenario.tensorCount).map { _ -> Tensor in
            let shape = shapeChoices[random.below(shapeChoices.count)]
            let dtype = DType.allCases[random.below(DType.allCases.count)]
            return try Tensor(random.values(shape.reduce(1, *), scale: 2), shape: shape, dtype: dtype)
        }
        var o = Adafactor.Options(lr: random.below(2) == 0 ? 0.01 : 0.3)
        if random.below(2) == 0 { o.weightDecay = 0.2 }
        if random.below(2) == 0 { o.maximize = true }
        if random.below(2) == 0 { o.eps = (1e-5, 1e-2) }
        let half = parameters.count / 2
        let groups = [Array(parameters[..<half]), Array(parameters[half...])].filter { !$0.isEmpty }
        let adafactor = try Adafactor(groups: groups.enumerated().map { number, members in
            ParameterGroupSpec(members) { if number == 1 { $0.d = 1.5 } }
        }, defaults: o, execution: execution, implementation: implementation)
        for _ in 0..<3 {
            for parameter in parameters {
                parameter.grad = random.below(5) == 0 ? nil
                    : try Tensor(random.values(parameter.count, scale: 4), shape: parameter.shape, dtype: parameter.dtype)
            }
            try adafactor.step()
        }
        return snapshot(parameters, state: adafactor.state(for:))
    }

    @Test func everyThreadCountBackendAndTierGivesTheSameBits() async throws {
        let configurations = try perTensorConfigurations()
        await propertyCheck(count: propertyChecks(12), input: Self.scenarios) { scenario in
            let reference = try Self.run(scenario, execution: serialBaseline, implementation: .forLoop)
            for (execution, implementation) in configurations {
                let result = try Self.run(scenario, execution: execution, implementation: implementation)
                #expect(result == reference, "\(scenario): \(execution), \(implementation) differs from the loop path")
            }
        }
    }

    @Test(arguments: [
        Adafactor.Options(lr: -1), .init(lr: .nan), .init(beta2Decay: 0.1), .init(beta2Decay: -.infinity),
        .init(eps: (-1e-3, 1e-3)), .init(eps: (nil, -1)), .init(d: 0.5), .init(weightDecay: -0.1),
    ])
    func invalidOptionsAreRefused(options: Adafactor.Options) throws {
        let parameter = try Tensor([1, 2, 3], dtype: .float32)
        #expect(throws: OptimError.self) { try Adafactor([parameter], options: options) }
        let adafactor = try Adafactor([parameter])
        #expect(throws: OptimError.self) { try adafactor.setOptions(options, group: 0) }
        #expect(adafactor.paramGroups[0].options == Adafactor.Options())
    }

    @Test func aMismatchedGradientThrowsAndChangesNothing() throws {
        let good = try Tensor((0..<12).map(Double.init), shape: [3, 4], dtype: .float32)
        let bad = try Tensor([1, 2, 3], dtype: .float32)
        let adafactor = try Adafactor([good, bad])
        good.grad = try Tensor([Double](repeating: 1, count: 12), shape: [3, 4], dtype: .float32)
        bad.grad = try Tensor([1, 2, 3], dtype: .float64)
        let before = bytes(of: good)
        #expect(throws: OptimError.self) { try adafactor.step() }
        #expect(bytes(of: good) == before)
        #expect(adafactor.state(for: good) == nil)
        bad.grad = nil
        try adafactor.step()
        #expect(adafactor.state(for: good)?.step == 1)
    }

    /// A run saved after three steps (through JSON) and restored into a fresh optimizer
    /// continues as the uninterrupted run, bit for bit; the dict has torch's keys and shapes.
    @Test(arguments: [DType.float32, .bfloat16])
    func aRestoredRunContinuesBitForBit(dtype: DType) throws {
        let shapes: [[Int]] = [[5], [3, 4], [2, 3, 2]]
        func parameters() throws -> [Tensor] {
            try shapes.map { shape in try Tensor((0..<shape.reduce(1, *)).map { sin(Double($0)) }, shape: shape, dtype: dtype) }
        }
        func apply(_ step: Int, _ parameters: [Tensor]) throws {
            for (index, parameter) in parameters.enumerated() {
                parameter.grad = step == 4 && index == 1 ? nil
                    : try Tensor((0..<parameter.count).map { cos(Double($0 * (step + 1) + index)) },
                                 shape: parameter.shape, dtype: dtype)
            }
        }
        func make(_ parameters: [Tensor]) throws -> Adafactor {
            try Adafactor(groups: [ParameterGroupSpec([parameters[0]]),
                                   ParameterGroupSpec(Array(parameters[1...])) { $0.weightDecay = 0.1; $0.eps = (1e-3, 1e-3) }],
                          execution: Execution(threads: 2, serialThreshold: 0))
        }
        let straight = try parameters(), resumed = try parameters()
        let first = try make(straight), second = try make(resumed)
        for step in 0..<3 {
            try apply(step, straight)
            try first.step()
            try apply(step, resumed)
            try second.step()
        }
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity",
                                                                      negativeInfinity: "-Infinity", nan: "NaN")
        let saved = try encoder.encode(second.stateDict())
        let dict = try JSONDecoder().decode(OptimizerStateDict.self, from: saved)
        #expect(Set(dict.state[0]!.keys) == ["step", "variance"])
        #expect(Set(dict.state[2]!.keys) == ["step", "row_var", "col_var"])
        if case .tensor(let rowVar)? = dict.state[2]!["row_var"] { #expect(rowVar.shape == [2, 3, 1]) }
        else { Issue.record("row_var is not a tensor") }
        if case .tensor(let colVar)? = dict.state[2]!["col_var"] { #expect(colVar.shape == [2, 1, 2]) }
        else { Issue.record("col_var is not a tensor") }
        #expect(dict.paramGroups[0]["eps"] == .list([.null, .number(1e-3)]))
        #expect(dict.paramGroups[1]["eps"] == .list([.number(1e-3), .number(1e-3)]))

        let restoredParameters = try resumed.map { try $0.clone() }
        let restored = try make(restoredParameters)
        try restored.loadStateDict(dict)
        #expect(restored.paramGroups[1].options.weightDecay == 0.1)
        for step in 3..<6 {
            try apply(step, straight)
            try first.step()
            try apply(step, restoredParameters)
            try restored.step()
        }
        #expect(snapshot(straight, state: first.state(for:)) == snapshot(restoredParameters, state: restored.state(for:)))

        var wrongShape = dict
        wrongShape.state[1]!["row_var"] = .tensor(TensorValue(dtype: dtype, shape: [3, 4], data: Array(repeating: 0, count: 12)))
        let before = restored.stateDict()
        #expect(throws: OptimError.self) { try restored.loadStateDict(wrongShape) }
        #expect(restored.stateDict() == before)
    }

    @Test func torchNamedOptionsRoundTrip() throws {
        let options = Adafactor.Options(lr: 0.2, beta2Decay: -0.5, eps: (nil, 0.01), d: 2, weightDecay: 0.3, maximize: true)
        #expect(try Adafactor.Options().applying(torchValues: options.torchValues) == options)
        let explicit = try Adafactor.Options().applying(torchValues: ["eps": .list([.number(1e-6), .number(2e-3)])])
        #expect(explicit.eps.0 == 1e-6 && explicit.eps.1 == 2e-3)
        #expect(throws: OptimError.self) { try Adafactor.Options().applying(torchValues: ["eps": .number(1e-3)]) }
    }
}
