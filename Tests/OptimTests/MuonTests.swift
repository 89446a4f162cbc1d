import Foundation
import Optim
import PropertyBased
import Testing

/// Muon against a scalar reference of torch's single-tensor path (bit for bit in float32),
/// orthogonalization, bit-for-bit identity across threads, backends and tiers, option and
/// shape checks, and state dicts.
@Suite struct MuonTests {
    /// Round to nearest-even bfloat16 (NaN stays NaN).
    static func bfloat16(_ x: Float) -> Float {
        if x.isNaN { return x }
        let bits = x.bitPattern
        let rounded = (bits &+ 0x7fff &+ ((bits >> 16) & 1)) & 0xffff_0000
        return Float(bitPattern: rounded)
    }

    /// torch.lerp: one fused multiply-add, anchored at the nearer end.
    static func lerp(_ start: Float, _ end: Float, _ weight: Float) -> Float {
        weight < 0.5 && weight > -0.5 ? start.addingProduct(weight, end - start)
            : end.addingProduct(weight - 1, end - start)
    }

    /// torch's `_single_tensor_muon` for a float32 parameter, operation by operation: the
    /// products accumulate in float in order of the inner index, addmm's epilogue in float with
    /// β·C fused into the add, every matrix rounded to bfloat16, the update added with one
    /// rounding.
    static func referenceStep(_ p: inout [Float], _ buffer: inout [Float], _ g: [Float], rows: Int, cols: Int,
                              _ o: Muon.Options) {
        let weight = Float(1 - o.momentum)
        for i in buffer.indices { buffer[i] = lerp(buffer[i], g[i], weight) }
        let u = o.nesterov ? buffer.indices.map { lerp(g[$0], buffer[$0], Float(o.momentum)) } : buffer
        let transposed = rows > cols
        let r = min(rows, cols), c = max(rows, cols)
        var x = [[Float]](repeating: [Float](repeating: 0, count: c), count: r)
        for i in 0..<rows {
            for j in 0..<cols {
                if transposed { x[j][i] = bfloat16(u[i * cols + j]) } else { x[i][j] = bfloat16(u[i * cols + j]) }
            }
        }
        var squares = 0.0
        for row in x { for v in row { squares += Double(v) * Double(v) } }
        let norm = max(bfloat16(Float(squares.squareRoot())), bfloat16(Float(o.eps)))
        x = x.map { $0.map { bfloat16($0 / norm) } }
        let (a, b, cc) = (Float(o.nsCoefficients.0), Float(o.nsCoefficients.1), Float(o.nsCoefficients.2))
        for _ in 0..<o.nsSteps {
            var gram = [[Float]](repeating: [Float](repeating: 0, count: r), count: r)
            for i in 0..<r {
                for j in 0..<r {
                    var s: Float = 0
                    for l in 0..<c { s += x[i][l] * x[j][l] }
                    gram[i][j] = bfloat16(s)
                }
            }
            var poly = gram
            for i in 0..<r {
                for j in 0..<r {
                    var s: Float = 0
                    for l in 0..<r { s += gram[i][l] * gram[l][j] }
                    poly[i][j] = bfloat16((cc * s).addingProduct(b, gram[i][j]))
                }
            }
            var y = x
            for i in 0..<r {
                for j in 0..<c {
                    var s: Float = 0
                    for l in 0..<r { s += poly[i][l] * x[l][j] }
                    y[i][j] = bfloat16(s.addingProduct(a, x[i][j]))
                }
            }
            x = y
        }
        let ratio = (o.adjustLR ?? .original).ratio(rows: rows, cols: cols)
        let decay = Float(1 - o.lr * o.weightDecay), stepSize = Float(-(o.lr * ratio))
        for i in 0..<rows {
            for j in 0..<cols {
                var value = p[i * cols + j]
                if decay != 1 { value = value * decay }
                p[i * cols + j] = value.addingProduct(stepSize, transposed ? x[j][i] : x[i][j])
            }
        }
    }

    static let shapes: [[Int]] = [[5, 9], [9, 5], [1, 4], [3, 3], [20, 33], [70, 17], [1, 1]]
    static let optionSets: [Muon.Options] = [
        .init(lr: 0.02),
        .init(lr: 0.05, weightDecay: 0, momentum: 0.8, nesterov: false, nsSteps: 3, adjustLR: .matchRMSAdamW),
        .init(lr: 0.01, momentum: 0.3, nsCoefficients: (2, -1.5, 0.5), eps: 1e-3, nsSteps: 7, adjustLR: .spectralUnclamped),
    ]

    @Test(arguments: 0..<3)
    func matchesTheScalarReferenceBitForBit(optionSet: Int) throws {
        let options = Self.optionSets[optionSet]
        var random = TestRandom(seed: 21 + UInt64(optionSet))
        let initial = Self.shapes.map { random.values($0[0] * $0[1]).map(Float.init) }
        let parameters = try zip(initial, Self.shapes).map { try Tensor($0, shape: $1, dtype: .float32) }
        let muon = try Muon(parameters, options: options, execution: Execution(threads: 2, serialThreshold: 0))
        var expected = initial
        var buffers = initial.map { [Float](repeating: 0, count: $0.count) }
        for _ in 0..<5 {
            for (index, parameter) in parameters.enumerated() {
                let gradient = random.values(parameter.count, scale: 2).map(Float.init)
                parameter.grad = try Tensor(gradient, shape: parameter.shape, dtype: .float32)
                Self.referenceStep(&expected[index], &buffers[index], gradient, rows: parameter.shape[0],
                                   cols: parameter.shape[1], options)
            }
            try muon.step()
        }
        for (index, parameter) in parameters.enumerated() {
            let got = parameter.toFloatArray()
            let differing = zip(got, expected[index]).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "shape \(parameter.shape): \(differing) of \(got.count) values differ")
            #expect(muon.state(for: parameter)?["momentum_buffer"]?.toFloatArray() == buffers[index])
        }
    }

    /// With the cubic Newton–Schulz polynomial (1.5, −0.5, 0), which converges to the
    /// orthogonal factor, the update of a wide matrix has orthonormal rows (to bfloat16
    /// precision): O Oᵀ ≈ I.
    @Test(arguments: [[4, 11], [12, 5]])
    func theUpdateIsOrthogonalized(shape: [Int]) throws {
        var random = TestRandom(seed: 5)
        let parameter = try Tensor.zeros(shape, dtype: .float64)
        parameter.grad = try Tensor(random.values(shape[0] * shape[1]), shape: shape, dtype: .float64)
        let options = Muon.Options(lr: 1, weightDecay: 0, momentum: 0, nesterov: false,
                                   nsCoefficients: (1.5, -0.5, 0), nsSteps: 40, adjustLR: .spectralUnclamped)
        let muon = try Muon([parameter], options: options)
        try muon.step()
        let ratio = Muon.LRAdjustment.spectralUnclamped.ratio(rows: shape[0], cols: shape[1])
        let update = parameter.toArray().map { -$0 / ratio }
        let (rows, cols) = (shape[0], shape[1])
        // The Gram matrix of the short side.
        let short = min(rows, cols), long = max(rows, cols)
        func element(_ i: Int, _ l: Int) -> Double { rows <= cols ? update[i * cols + l] : update[l * cols + i] }
        for i in 0..<short {
            for j in 0..<short {
                let dot = (0..<long).reduce(0.0) { $0 + element(i, $1) * element(j, $1) }
                #expect(abs(dot - (i == j ? 1 : 0)) < 0.05, "(\(i), \(j)): \(dot)")
            }
        }
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
        let shapeChoices: [[Int]] = [[0, 3], [1, 1], [3, 17], [17, 3], [16, 16], [33, 70], [90, 20], [2, 65]]
        let parameters = try (0..<scenario.tensorCount).map { _ -> Tensor in
            let shape = shapeChoices[random.below(shapeChoices.count)]
            let dtype = DType.allCases[random.below(DType.allCases.count)]
            return try Tensor(random.values(shape[0] * shape[1]), shape: shape, dtype: dtype)
        }
        var o = Muon.Options(lr: 0.02)
        if random.below(2) == 0 { o.nesterov = false }
        if random.below(2) == 0 { o.weightDecay = 0 }
        o.adjustLR = [nil, .original, .matchRMSAdamW, .spectralUnclamped][random.below(4)]
        let half = parameters.count / 2
        let groups = [Array(parameters[..<half]), Array(parameters[half...])].filter { !$0.isEmpty }
        let muon = try Muon(groups: groups.enumerated().map { number, members in
            ParameterGroupSpec(members) { if number == 1 { $0.nsSteps = 3; $0.momentum = 0.5 } }
        }, defaults: o, execution: execution, implementation: implementation)
        for _ in 0..<3 {
            for parameter in parameters {
                parameter.grad = random.below(5) == 0 ? nil
                    : try Tensor(random.values(parameter.count), shape: parameter.shape, dtype: parameter.dtype)
            }
            try muon.step()
        }
        return snapshot(parameters, state: muon.state(for:))
    }

    @Test func everyThreadCountBackendAndTierGivesTheSameBits() async throws {
        let configurations = try perTensorConfigurations()
        await propertyCheck(count: propertyChecks(10), input: Self.scenarios) { scenario in
            let reference = try Self.run(scenario, execution: serialBaseline, implementation: .forLoop)
            for (execution, implementation) in configurations {
                let result = try Self.run(scenario, execution: execution, implementation: implementation)
                #expect(result == reference, "\(scenario): \(execution), \(implementation) differs from the loop path")
            }
        }
    }

    @Test(arguments: [[4], [], [2, 3, 4], [1, 1, 1]])
    func parametersThatAreNot2DAreRefused(shape: [Int]) throws {
        let matrix = try Tensor.zeros([2, 3])
        let other = try Tensor.zeros(shape)
        do {
            _ = try Muon([matrix, other])
            Issue.record("a parameter of shape \(shape) was accepted")
        } catch let error as OptimError {
            #expect(error.kind == .invalidArgument)
            #expect(error.message.contains("2-D") && error.message.contains("\(shape)"))
        }
        let muon = try Muon([matrix])
        #expect(throws: OptimError.self) { try muon.addParamGroup(ParameterGroupSpec([other])) }
        #expect(muon.paramGroups.count == 1)
    }

    @Test(arguments: [
        Muon.Options(lr: -1), .init(weightDecay: -0.1), .init(momentum: -0.5), .init(momentum: .nan), .init(eps: -1),
        .init(nsSteps: 100), .init(nsSteps: -1), .init(nsCoefficients: (.infinity, 0, 0)),
    ])
    func invalidOptionsAreRefused(options: Muon.Options) throws {
        let parameter = try Tensor.zeros([2, 2])
        #expect(throws: OptimError.self) { try Muon([parameter], options: options) }
        let muon = try Muon([parameter])
        #expect(throws: OptimError.self) { try muon.setOptions(options, group: 0) }
        #expect(muon.paramGroups[0].options == Muon.Options())
    }

    @Test func torchNamedOptionsRoundTrip() throws {
        let options = Muon.Options(lr: 0.2, weightDecay: 0, momentum: 0.9, nesterov: false, nsCoefficients: (1, 2, 3),
                                   eps: 1e-5, nsSteps: 7, adjustLR: .matchRMSAdamW)
        #expect(try Muon.Options().applying(torchValues: options.torchValues) == options)
        #expect(Muon.Options().torchValues["adjust_lr_fn"] == .null)
        #expect(throws: OptimError.self) {
            try Muon.Options().applying(torchValues: ["adjust_lr_fn": .string("cosine")])
        }
        #expect(throws: OptimError.self) {
            try Muon.Options().applying(torchValues: ["ns_coefficients": .list([.number(1), .number(2)])])
        }
    }

    @Test func aMismatchedGradientThrowsAndChangesNothing() throws {
        let good = try Tensor((0..<6).map(Double.init), shape: [2, 3], dtype: .float32)
        let bad = try Tensor.zeros([3, 2], dtype: .float32)
        let muon = try Muon([good, bad])
        good.grad = try Tensor([Double](repeating: 1, count: 6), shape: [2, 3], dtype: .float32)
        bad.grad = try Tensor.zeros([2, 3], dtype: .float32)
        let before = bytes(of: good)
        #expect(throws: OptimError.self) { try muon.step() }
        #expect(bytes(of: good) == before)
        #expect(muon.state(for: good) == nil)
    }

    /// A run saved after three steps and restored into a fresh optimizer continues bit for bit;
    /// the dict holds torch's keys (no `step`) and options.
    @Test func aRestoredRunContinuesBitForBit() throws {
        let shapes: [[Int]] = [[3, 4], [6, 2]]
        func parameters() throws -> [Tensor] {
            try shapes.map { shape in try Tensor((0..<(shape[0] * shape[1])).map { sin(Double($0)) }, shape: shape) }
        }
        func apply(_ step: Int, _ parameters: [Tensor]) throws {
            for (index, parameter) in parameters.enumerated() {
                parameter.grad = step == 4 && index == 1 ? nil
                    : try Tensor((0..<parameter.count).map { cos(Double($0 * (step + 1) + index)) }, shape: parameter.shape)
            }
        }
        func make(_ parameters: [Tensor]) throws -> Muon {
            try Muon(groups: [ParameterGroupSpec([parameters[0]]),
                              ParameterGroupSpec([parameters[1]]) { $0.adjustLR = .matchRMSAdamW; $0.lr = 0.05 }],
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
        let dict = try JSONDecoder().decode(OptimizerStateDict.self, from: JSONEncoder().encode(second.stateDict()))
        #expect(Set(dict.state[0]!.keys) == ["momentum_buffer"])
        #expect(dict.paramGroups[1]["adjust_lr_fn"] == .string("match_rms_adamw"))
        #expect(dict.paramGroups[0]["ns_coefficients"] == .list([.number(3.4445), .number(-4.775), .number(2.0315)]))
        let restoredParameters = try resumed.map { try $0.clone() }
        let restored = try make(restoredParameters)
        try restored.loadStateDict(dict)
        #expect(restored.paramGroups[1].options.adjustLR == .matchRMSAdamW)
        for step in 3..<6 {
            try apply(step, straight)
            try first.step()
            try apply(step, restoredParameters)
            try restored.step()
        }
        #expect(straight.map(bytes(of:)) == restoredParameters.map(bytes(of:)))
        #expect(straight.map { bytes(of: first.state(for: $0)!["momentum_buffer"]!) }
                    == restoredParameters.map { bytes(of: restored.state(for: $0)!["momentum_buffer"]!) })
    }
}
