import Optim

/// The benchmark workloads: lists of parameter shapes (see Docs/benchmarks.md). `optim bench`,
/// `optim study` and the step benchmarks under `Benchmarks/StepBenchmarks` all step these.
public enum Workload: String, CaseIterable, Sendable {
    /// One tensor of 100 elements: what a step costs beyond its arithmetic.
    case one100
    /// 10,000 tensors of 100 elements: what a step costs per tensor.
    case tiny10k
    /// tiny10k's million elements in one tensor: beside tiny10k, what its 10,000 tensors cost
    /// beyond their elements.
    case flat1m
    /// tiny10k's tensors cut one after another from one buffer, and their gradients from
    /// another (``Tensor/packedZeros(_:dtype:)``): what a step costs per tensor when the engine
    /// can step adjacent tensors as one. Same values, so same checksums, as tiny10k.
    case tiny10kPacked = "tiny10k-packed"
    /// ResNet-50's parameters (``resnet50Shapes``).
    case resnet50
    /// GPT-2 small's parameters (``gpt2SmallShapes``).
    case gpt2small
    /// One tensor of 64 Mi elements: a step bound by memory bandwidth alone.
    case big64m

    /// The parameter shapes, in model order.
    public var shapes: [[Int]] {
        switch self {
        case .one100: [[100]]
        case .tiny10k, .tiny10kPacked: Array(repeating: [100], count: 10_000)
        case .flat1m: [[1_000_000]]
        case .big64m: [[67_108_864]]
        case .resnet50: Workload.resnet50Shapes
        case .gpt2small: Workload.gpt2SmallShapes
        }
    }

    /// ResNet-50's 161 parameter tensors (25,557,032 parameters), in model order (torchvision's
    /// `resnet50().parameters()`): the stem, four stages of bottleneck blocks, the classifier.
    public static var resnet50Shapes: [[Int]] {
        var shapes = [[64, 3, 7, 7], [64], [64]]
        func convolution(_ out: Int, _ in: Int, _ kernel: Int) {
            shapes += [[out, `in`, kernel, kernel], [out], [out]]  // its weights, then its batch norm's
        }
        var inputs = 64
        for (width, blocks) in [(64, 3), (128, 4), (256, 6), (512, 3)] {
            for block in 0..<blocks {
                convolution(width, inputs, 1)
                convolution(width, width, 3)
                convolution(4 * width, width, 1)
                if block == 0 { convolution(4 * width, inputs, 1) }  // the stage's downsampling shortcut
                inputs = 4 * width
            }
        }
        return shapes + [[1000, 2048], [1000]]
    }

    /// GPT-2 small's 148 parameter tensors (124,439,808 parameters), in model order (Hugging
    /// Face's `GPT2Model`): token and position embeddings, twelve transformer blocks, the final
    /// layer norm.
    public static var gpt2SmallShapes: [[Int]] {
        let width = 768
        let block = [[width], [width], [width, 3 * width], [3 * width], [width, width], [width],
                     [width], [width], [width, 4 * width], [4 * width], [4 * width, width], [width]]
        return [[50257, width], [1024, width]] + Array(repeating: block, count: 12).joined() + [[width], [width]]
    }

    /// The seed of the benchmarks' parameters and gradients, so that every run, whatever the
    /// tool, steps the same values and the checksums of the final parameters can be compared.
    public static let seed: UInt64 = 0x5EED

    /// The shapes `entry` steps: only the matrices (two dimensions or more) for an optimizer that
    /// needs them (Muon), every shape otherwise. Empty when the workload has no matrix.
    public func shapes(steppedBy entry: OptimizerEntry) -> [[Int]] {
        entry.needsMatrices ? shapes.filter { $0.count >= 2 } : shapes
    }

    /// Whether the workload cuts its parameters from one buffer and its gradients from another.
    public var packsTensors: Bool { self == .tiny10kPacked }

    /// The parameters and gradients `entry` steps on this workload (``shapes(steppedBy:)``),
    /// packed or not as the workload says.
    public func makeParameters(steppedBy entry: OptimizerEntry, dtype: DType = .float32) throws -> [Tensor] {
        try Workload.makeParameters(shapes: shapes(steppedBy: entry), dtype: dtype, packed: packsTensors)
    }

    /// Parameters of the given shapes, uniform in [-1, 1), each with a dense gradient uniform in
    /// [-0.01, 0.01), all drawn from one generator: every parameter first, then every gradient.
    /// `packed` cuts the parameters one after another from one buffer and the gradients from
    /// another; the values are the same either way.
    public static func makeParameters(shapes: [[Int]], dtype: DType = .float32,
                                      seed: UInt64 = Workload.seed, packed: Bool = false) throws -> [Tensor] {
        var generator = SplitMix64(seed: seed)
        func zeros(_ shapes: [[Int]]) throws -> [Tensor] {
            packed ? try Tensor.packedZeros(shapes, dtype: dtype) : try shapes.map { try Tensor.zeros($0, dtype: dtype) }
        }
        let parameters = try zeros(shapes)
        for parameter in parameters { try fillRandom(parameter, scale: 1, &generator) }
        for (parameter, grad) in zip(parameters, try zeros(shapes)) {
            try fillRandom(grad, scale: 1e-2, &generator)
            parameter.grad = grad
        }
        return parameters
    }

    /// Replaces each parameter's dense gradient by a row-sparse gradient that lists every row, for
    /// an optimizer that takes sparse gradients only (SparseAdam).
    public static func moveGradientsToRowSparse(_ parameters: [Tensor]) throws {
        for parameter in parameters {
            guard let dense = parameter.grad else { continue }
            // The dense gradient, read as one value row per parameter row.
            parameter.sparseGrad = try RowSparseGradient(indices: Array(0..<(parameter.shape.first ?? 0)),
                                                         values: dense)
            parameter.grad = nil
        }
    }
}

/// A fixed-seed generator (SplitMix64), so that every run sees the same parameters and gradients.
public struct SplitMix64: Sendable {
    /// The generator's state; each draw advances it.
    public var state: UInt64

    /// A generator whose draws are fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    public mutating func nextSigned() -> Double { Double(Int64(bitPattern: next()) >> 11) * 0x1p-52 }
}

/// Fills `tensor` with draws uniform in [-scale, scale), rounded to its dtype.
private func fillRandom(_ tensor: Tensor, scale: Double, _ generator: inout SplitMix64) throws {
    if tensor.dtype == .float32 {
        let values = tensor.baseAddress.bindMemory(to: Float.self, capacity: tensor.count)
        for index in 0..<tensor.count { values[index] = Float(generator.nextSigned() * scale) }
        return
    }
    let values = (0..<tensor.count).map { _ in generator.nextSigned() * scale }
    try tensor.copy(from: Tensor(values, shape: tensor.shape, dtype: tensor.dtype))
}
