import Optim
import PropertyBased
import Testing

/// The multi-tensor operations against a plain scalar loop, reductions bit for bit across
/// every execution, and the refusal of mismatched lists.
@Suite struct ForeachOpsTests {
    // MARK: Element-wise operations against a scalar reference

    /// An element-wise operation: how to run it, and its math on one element, in `Float` (for
    /// float32, float16, bfloat16) and in `Double` (for float64).
    struct ElementwiseCase: Sendable, CustomStringConvertible {
        let description: String
        let inputs: Int
        let run: @Sendable (_ x: [Tensor], _ inputs: [[Tensor]], Execution) throws -> Void
        let float: @Sendable (Float, Float, Float) -> Float
        let double: @Sendable (Double, Double, Double) -> Double
    }

    /// IEEE maximum: NaN if either is NaN, +0 above −0.
    static func ieeeMaximum<T: BinaryFloatingPoint>(_ a: T, _ b: T) -> T {
        if a.isNaN || b.isNaN { return .nan }
        if a == b { return a.sign == .minus ? b : a }
        return a > b ? a : b
    }

    static func clamp<T: BinaryFloatingPoint>(_ a: T, _ low: T, _ high: T) -> T {
        a.isNaN ? a : min(max(a, low), high)
    }

    static let elementwiseCases: [ElementwiseCase] = [
        ElementwiseCase(description: "add(alpha: -0.3)", inputs: 1,
                        run: { try Foreach.add($0, $1[0], alpha: -0.3, execution: $2) },
                        float: { x, y, _ in x.addingProduct(Float(-0.3), y) },
                        double: { x, y, _ in x.addingProduct(-0.3, y) }),
        ElementwiseCase(description: "add(scalar: 1.25)", inputs: 0,
                        run: { try Foreach.add($0, scalar: 1.25, execution: $2) },
                        float: { x, _, _ in x + 1.25 }, double: { x, _, _ in x + 1.25 }),
        ElementwiseCase(description: "scale(by: -1.7)", inputs: 0,
                        run: { try Foreach.scale($0, by: -1.7, execution: $2) },
                        float: { x, _, _ in x * Float(-1.7) }, double: { x, _, _ in x * -1.7 }),
        ElementwiseCase(description: "axpy(alpha: 0.6)", inputs: 1,
                        run: { try Foreach.axpy($0, alpha: 0.6, $1[0], execution: $2) },
                        float: { x, y, _ in x.addingProduct(Float(0.6), y) },
                        double: { x, y, _ in x.addingProduct(0.6, y) }),
        ElementwiseCase(description: "axpy(alpha: 0.6, beta: -2.3)", inputs: 1,
                        run: { try Foreach.axpy($0, alpha: 0.6, $1[0], beta: -2.3, execution: $2) },
                        float: { x, y, _ in Float(-2.3) * x + Float(0.6) * y },
                        double: { x, y, _ in -2.3 * x + 0.6 * y }),
        ElementwiseCase(description: "addcmul(value: 0.45)", inputs: 2,
                        run: { try Foreach.addcmul($0, $1[0], $1[1], value: 0.45, execution: $2) },
                        float: { x, y, z in x + (Float(0.45) * y) * z },
                        double: { x, y, z in x + (0.45 * y) * z }),
        ElementwiseCase(description: "addcdiv(value: -0.7)", inputs: 2,
                        run: { try Foreach.addcdiv($0, $1[0], $1[1], value: -0.7, execution: $2) },
                        float: { x, y, z in x + (Float(-0.7) * y) / z },
                        double: { x, y, z in x + (-0.7 * y) / z }),
        ElementwiseCase(description: "lerp(weight: 0.3)", inputs: 1,
                        run: { try Foreach.lerp($0, $1[0], weight: 0.3, execution: $2) },
                        float: { x, y, _ in x.addingProduct(Float(0.3), y - x) },
                        double: { x, y, _ in x.addingProduct(0.3, y - x) }),
        ElementwiseCase(description: "lerp(weight: 0.8)", inputs: 1,
                        run: { try Foreach.lerp($0, $1[0], weight: 0.8, execution: $2) },
                        float: { x, y, _ in y.addingProduct(Float(0.8) - 1, y - x) },
                        double: { x, y, _ in y.addingProduct(0.8 - 1, y - x) }),
        ElementwiseCase(description: "sqrt", inputs: 0,
                        run: { try Foreach.sqrt($0, execution: $2) },
                        float: { x, _, _ in x.squareRoot() }, double: { x, _, _ in x.squareRoot() }),
        ElementwiseCase(description: "maximum", inputs: 1,
                        run: { try Foreach.maximum($0, $1[0], execution: $2) },
                        float: { x, y, _ in ieeeMaximum(x, y) }, double: { x, y, _ in ieeeMaximum(x, y) }),
        ElementwiseCase(description: "clamp(min: -0.5, max: 0.75)", inputs: 0,
                        run: { try Foreach.clamp($0, min: -0.5, max: 0.75, execution: $2) },
                        float: { x, _, _ in clamp(x, -0.5, 0.75) }, double: { x, _, _ in clamp(x, -0.5, 0.75) }),
        ElementwiseCase(description: "copy", inputs: 1,
                        run: { try Foreach.copy($0, from: $1[0], execution: $2) },
                        float: { _, y, _ in y }, double: { _, y, _ in y }),
        ElementwiseCase(description: "zero", inputs: 0,
                        run: { try Foreach.zero($0, execution: $2) },
                        float: { _, _, _ in 0 }, double: { _, _, _ in 0 }),
    ]

    /// Values that exercise rounding and special cases, then random ones.
    static func values(_ count: Int, _ random: inout TestRandom) -> [Double] {
        let edges: [Double] = [0, -0.0, 1, -2.5, .nan, .infinity, -.infinity, 6e-8, 65_000, 1e-30, 3.75]
        return (0..<count).map { index in
            random.below(6) == 0 ? edges[random.below(edges.count)] : random.signed() * 3
        }
    }

    /// A list of tensors of mixed dtypes and sizes, and matching input lists.
    static func lists(seed: UInt64, inputs: Int) throws -> (x: [Tensor], inputs: [[Tensor]]) {
        var random = TestRandom(seed: seed)
        let sizes = [0, 1, 3, 15, 16, 17, 100, 2047, 2049]
        var x: [Tensor] = [], others: [[Tensor]] = Array(repeating: [], count: inputs)
        for _ in 0..<(2 + random.below(5)) {
            let count = sizes[random.below(sizes.count)]
            let dtype = DType.allCases[random.below(DType.allCases.count)]
            let shape = count == 100 ? [10, 10] : [count]
            x.append(try Tensor(values(count, &random), shape: shape, dtype: dtype))
            for k in 0..<inputs { others[k].append(try Tensor(values(count, &random), shape: shape, dtype: dtype)) }
        }
        return (x, others)
    }

    /// Both NaN, or the same value (and, for zeros, the same sign).
    static func sameValues(_ a: [Double], _ b: [Double]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.isNaN && $1.isNaN || $0.bitPattern == $1.bitPattern }
    }

    @Test(arguments: ForeachOpsTests.elementwiseCases)
    func elementwiseOperationMatchesAScalarLoop(operation: ElementwiseCase) throws {
        for seed in UInt64(1)...6 {
            let (x, inputs) = try Self.lists(seed: seed, inputs: operation.inputs)
            let expected = try x.indices.map { index -> [Double] in
                let xs = x[index].toArray()
                let ys = operation.inputs >= 1 ? inputs[0][index].toArray() : xs
                let zs = operation.inputs >= 2 ? inputs[1][index].toArray() : xs
                let results: [Double] = xs.indices.map { i in
                    x[index].dtype == .float64
                        ? operation.double(xs[i], ys[i], zs[i])
                        : Double(operation.float(Float(xs[i]), Float(ys[i]), Float(zs[i])))
                }
                // Rounded to the storage dtype, as the kernel stores.
                return try Tensor(results, shape: x[index].shape, dtype: x[index].dtype).toArray()
            }
            try operation.run(x, inputs, Execution(threads: 3, serialThreshold: 0, chunkElements: 64))
            for index in x.indices {
                #expect(Self.sameValues(x[index].toArray(), expected[index]),
                        "\(operation) seed \(seed): tensor \(index) (\(x[index].dtype), \(x[index].count) elements) differs")
            }
        }
    }

    /// float16 storage widens and rounds with integer code in the baseline tier and with F16C's
    /// conversions in the others: every half (NaNs and subnormals included), times factors whose
    /// exact float products need each kind of rounding back (ties, subnormal results, overflow),
    /// gives the same bits on every tier this CPU runs.
    @Test func float16ConversionsGiveTheSameBitsOnEveryTier() throws {
        var halves = (0..<65536).map { UInt16($0) }
        let factors: [Double] = [1, 1 + 0x1p-10, 1.5, 0x1p-10, 0x1p-24, 3, 65504, 0.5 + 0x1p-11, -0.75]
        func products(_ isa: InstructionSet) throws -> [[UInt8]] {
            try halves.withUnsafeMutableBytes { raw in
                let base = try #require(raw.baseAddress)
                let y = try Tensor(wrapping: base, shape: [raw.count / 2], dtype: .float16)
                return try factors.map { factor in
                    let z = try Tensor(Array(repeating: factor, count: y.count), dtype: .float16)
                    let x = try Tensor.zeros(y.shape, dtype: .float16)
                    try Foreach.addcmul([x], [y], [z], execution: Execution(threads: 1, instructionSet: isa))
                    return bytes(of: x)
                }
            }
        }
        let baseline = try products(.baseline)
        for isa in InstructionSet.supported.dropFirst() {
            #expect(try products(isa) == baseline, "\(isa)")
        }
    }

    @Test func copyKeepsEveryBitAndZeroWritesPositiveZeros() throws {
        let source = try Tensor(wrappingBits: [0x7fc1_2345, 0xffa0_0001, 0x8000_0000, 0x3f80_0000])
        let target = try Tensor.zeros([4])
        try Foreach.copy([target], from: [source], execution: Execution(threads: 1))
        #expect(bytes(of: target) == bytes(of: source))
        try Foreach.zero([target], execution: Execution(threads: 1))
        #expect(bytes(of: target) == [UInt8](repeating: 0, count: 16))
    }

    // MARK: Reductions

    /// Plain Double loops: Σ x·y, and Σ |x|^p or max |x|.
    static func referenceDot(_ x: [Tensor], _ y: [Tensor]) -> (value: Double, scale: Double) {
        var sum = 0.0, scale = 0.0
        for (a, b) in zip(x, y) {
            for (u, v) in zip(a.toArray(), b.toArray()) {
                sum += u * v
                scale += abs(u * v)
            }
        }
        return (sum, scale)
    }

    static func referenceNorm(_ values: [Double], p: Double) -> Double {
        if p == .infinity { return values.reduce(0) { $1.isNaN || $0.isNaN ? .nan : max($0, abs($1)) } }
        return pow(values.reduce(0) { $0 + pow(abs($1), p) }, 1 / p)
    }

    static func finiteLists(seed: UInt64, count: Int) throws -> [[Tensor]] {
        var random = TestRandom(seed: seed)
        let sizes = [0, 1, 7, 16, 33, 2047, 2048, 2049, 5000]
        var lists: [[Tensor]] = Array(repeating: [], count: count)
        for _ in 0..<(1 + random.below(6)) {
            let size = sizes[random.below(sizes.count)]
            let dtype = DType.allCases[random.below(DType.allCases.count)]
            for k in 0..<count { lists[k].append(try Tensor(random.values(size, scale: 4), dtype: dtype)) }
        }
        return lists
    }

    /// A float64 dot product of one tensor of up to one reduction block (4,096 elements) is
    /// summed as the BLAS that torch calls on x86 sums it: products (not fused) into four
    /// two-lane accumulators over blocks of eight, the tail's pairs and a last odd element into
    /// the first, then ((a0 + a1) + a2) + a3 lane by lane and the two lanes. LBFGS's reference
    /// trajectories depend on that order to the last bit.
    @Test func aFloat64DotProductFollowsTheBLASOrder() throws {
        func blasOrderDot(_ x: [Double], _ y: [Double]) -> Double {
            var accumulators = [[Double]](repeating: [0, 0], count: 4)
            let full = x.count / 8 * 8
            for block in stride(from: 0, to: full, by: 8) {
                for j in 0..<4 {
                    for lane in 0..<2 { accumulators[j][lane] += x[block + 2 * j + lane] * y[block + 2 * j + lane] }
                }
            }
            var index = full
            while index + 2 <= x.count {
                for lane in 0..<2 { accumulators[0][lane] += x[index + lane] * y[index + lane] }
                index += 2
            }
            if index < x.count { accumulators[0][0] += x[index] * y[index] }
            var lanes = accumulators[0]
            for j in 1..<4 { for lane in 0..<2 { lanes[lane] += accumulators[j][lane] } }
            return lanes[0] + lanes[1]
        }
        var random = TestRandom(seed: 77)
        for count in Array(1...80) + [255, 1000, 4095, 4096] {
            // Magnitudes from 1e-3 to 1e3, so that a different order gives different bits.
            let x = (0..<count).map { _ in random.signed() * Double(sign: .plus, exponent: random.below(20) - 10, significand: 1) }
            let y = random.values(count)
            let tensorX = try Tensor(x, dtype: .float64), tensorY = try Tensor(y, dtype: .float64)
            for threads in [1, 2] {
                let got = try Foreach.dot([tensorX], [tensorY], execution: try Execution(threads: threads, serialThreshold: 0))
                #expect(got.bitPattern == blasOrderDot(x, y).bitPattern, "\(count) elements, \(threads) threads")
            }
        }
    }

    @Test func reductionsMatchPlainDoubleLoops() throws {
        let execution = try Execution(threads: 2, serialThreshold: 0, chunkElements: 100)
        for seed in UInt64(10)...20 {
            let lists = try Self.finiteLists(seed: seed, count: 2)
            let (x, y) = (lists[0], lists[1])
            let (dot, scale) = Self.referenceDot(x, y)
            #expect(abs(try Foreach.dot(x, y, execution: execution) - dot) <= 1e-13 * scale, "seed \(seed)")
            let dots = try Foreach.dots(x, y, execution: execution)
            for index in x.indices {
                let (single, singleScale) = Self.referenceDot([x[index]], [y[index]])
                #expect(abs(dots[index] - single) <= 1e-13 * singleScale, "seed \(seed) tensor \(index)")
            }
            for p in [1, 2, 3, 0.5, .infinity] {
                let all = x.flatMap { $0.toArray() }
                let expected = Self.referenceNorm(all, p: p)
                let got = try Foreach.norm(x, p: p, execution: execution)
                #expect(abs(got - expected) <= 1e-12 * expected, "seed \(seed) p \(p): \(got) vs \(expected)")
                let norms = try Foreach.norms(x, p: p, execution: execution)
                for index in x.indices {
                    let one = Self.referenceNorm(x[index].toArray(), p: p)
                    #expect(abs(norms[index] - one) <= 1e-12 * one, "seed \(seed) p \(p) tensor \(index)")
                }
            }
        }
    }

    @Test func emptyListsAndNonFiniteValuesReduceAsDefined() throws {
        let execution = try Execution(threads: 2)
        #expect(try Foreach.dot([], [], execution: execution) == 0)
        #expect(try Foreach.norm([], p: .infinity, execution: execution) == 0)
        #expect(try Foreach.norms([try Tensor.zeros([0])], execution: execution) == [0])
        let withNaN = try Tensor([1, Double.nan, -3])
        let withInfinity = try Tensor([1, -Double.infinity, 2], dtype: .bfloat16)
        #expect(try Foreach.norm([withNaN], p: .infinity, execution: execution).isNaN)
        #expect(try Foreach.norm([withNaN], p: 2, execution: execution).isNaN)
        #expect(try Foreach.norm([withInfinity], p: .infinity, execution: execution) == .infinity)
        #expect(try Foreach.norms([withInfinity, withNaN], p: 1, execution: execution)[0] == .infinity)
        for p in [0, -1, Double.nan] {
            #expect(throws: OptimError.self) { try Foreach.norm([withNaN], p: p, execution: execution) }
        }
    }

    /// Random lists: empty, one element, odd sizes, sizes around the 4,096-element blocks, and
    /// every dtype; the reductions must give the same bits on every configuration.
    struct ReductionInput: Sendable, CustomStringConvertible {
        let seed: UInt64
        let sizes: [Int]
        var description: String { "ReductionInput(seed: \(seed), sizes: \(sizes))" }
    }

    static let reductionInputs = zip(Gen<UInt64>.value(in: 0...UInt64.max),
                                     Gen.element(of: [0, 1, 2, 15, 17, 2047, 4095, 4096, 4097, 9001]).array(of: 0...7))
        .map { ReductionInput(seed: $0, sizes: $1.compactMap { $0 }) }

    static func reductionResults(_ input: ReductionInput, execution: Execution) throws -> [UInt64] {
        var random = TestRandom(seed: input.seed)
        var x: [Tensor] = [], y: [Tensor] = []
        for size in input.sizes {
            let dtype = DType.allCases[random.below(DType.allCases.count)]
            x.append(try Tensor(random.values(size, scale: 5), dtype: dtype))
            y.append(try Tensor(random.values(size, scale: 5), dtype: dtype))
        }
        var results = [try Foreach.dot(x, y, execution: execution)]
        results += try Foreach.dots(x, y, execution: execution)
        for p in [1, 2, 2.5, .infinity] {
            results.append(try Foreach.norm(x, p: p, execution: execution))
            results += try Foreach.norms(x, p: p, execution: execution)
        }
        return results.map(\.bitPattern)
    }

    @Test func reductionsGiveTheSameBitsOnEveryThreadCountBackendTierAndChunkSize() async throws {
        await propertyCheck(count: propertyChecks(15), input: Self.reductionInputs) { input in
            let reference = try Self.reductionResults(
                input, execution: Execution(threads: 1, backend: .serial, instructionSet: .baseline))
            var configurations: [(Int, Backend, InstructionSet, Int)] = []
            for threads in 1...8 {
                for backend in [Backend.dispatch, .openMP] {
                    for isa in InstructionSet.supported {
                        configurations.append((threads, backend, isa, [1, 100, 2048, 65_536][threads % 4]))
                    }
                }
            }
            for (threads, backend, isa, chunk) in configurations {
                let execution = try Execution(threads: threads, backend: backend, instructionSet: isa,
                                              serialThreshold: 0, chunkElements: chunk)
                let results = try Self.reductionResults(input, execution: execution)
                #expect(results == reference, "\(input): \(threads) threads, \(backend), \(isa), chunk \(chunk)")
            }
        }
    }

    @Test func elementwiseOperationsGiveTheSameBitsOnEveryConfiguration() throws {
        func run(_ execution: Execution) throws -> [[UInt8]] {
            let (x, inputs) = try Self.lists(seed: 99, inputs: 2)
            try Foreach.addcdiv(x, inputs[0], inputs[1], value: 0.3, execution: execution)
            try Foreach.lerp(x, inputs[0], weight: 0.9, execution: execution)
            try Foreach.add(x, inputs[1], alpha: 1.1, execution: execution)
            return x.map(bytes(of:))
        }
        let reference = try run(Execution(threads: 1, backend: .serial, instructionSet: .baseline))
        for threads in [2, 5, 8] {
            for backend in [Backend.dispatch, .openMP] {
                for isa in InstructionSet.supported {
                    let execution = try Execution(threads: threads, backend: backend, instructionSet: isa,
                                                  serialThreshold: 0, chunkElements: 50)
                    #expect(try run(execution) == reference, "\(threads) threads, \(backend), \(isa)")
                }
            }
        }
    }

    // MARK: Refusals

    @Test func mismatchedListsThrowAndChangeNothing() throws {
        let execution = try Execution(threads: 2)
        let a = try Tensor([1, 2, 3]), b = try Tensor([4, 5], dtype: .float16)
        let before = [a, b].map(bytes(of:))
        let attempts: [(String, () throws -> Void)] = [
            ("shorter second list", { try Foreach.add([a, b], [try Tensor([1, 1, 1])], execution: execution) }),
            ("shape", { try Foreach.maximum([a, b], [try Tensor([1, 1, 1]), try Tensor([1, 1, 1], dtype: .float16)], execution: execution) }),
            ("dtype", { try Foreach.copy([a, b], from: [try Tensor([1, 1, 1]), try Tensor([1, 1])], execution: execution) }),
            ("third list", { try Foreach.addcmul([a, b], [a.clone(), b.clone()], [a.clone()], execution: execution) }),
            ("a tensor written twice", { try Foreach.scale([a, b, a], by: 2, execution: execution) }),
            ("a written tensor read at another index", { try Foreach.lerp([a, b], [try Tensor([0, 0, 0]), a], weight: 0.5, execution: execution) }),
            ("dot lengths", { _ = try Foreach.dot([a], [a, b], execution: execution) }),
            ("clamp bounds", { try Foreach.clamp([a, b], min: 1, max: 0, execution: execution) }),
        ]
        for (what, attempt) in attempts {
            #expect(throws: OptimError.self, "\(what)") { try attempt() }
            #expect([a, b].map(bytes(of:)) == before, "\(what) changed a tensor")
        }
        // The same tensor at the same index of both lists is an in-place operation.
        try Foreach.add([a], [a], alpha: 1, execution: execution)
        #expect(a.toArray() == [2, 4, 6])
    }
}

extension Tensor {
    /// A float32 tensor holding exactly these bit patterns.
    convenience init(wrappingBits bits: [UInt32]) throws {
        try self.init([Double](repeating: 0, count: bits.count))
        bits.withUnsafeBytes { baseAddress.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
