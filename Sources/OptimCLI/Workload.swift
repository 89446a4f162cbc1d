/// The benchmark workloads: lists of parameter shapes (see Docs/benchmarks.md).
enum Workload: String, CaseIterable {
    /// One tensor of 100 elements: what a step costs beyond its arithmetic.
    case one100
    case tiny10k
    /// tiny10k's million elements in one tensor: beside tiny10k, what its 10,000 tensors cost
    /// beyond their elements.
    case flat1m
    case resnet50
    case gpt2small
    case big64m

    var shapes: [[Int]] {
        switch self {
        case .one100: [[100]]
        case .tiny10k: Array(repeating: [100], count: 10_000)
        case .flat1m: [[1_000_000]]
        case .big64m: [[67_108_864]]
        case .resnet50: Workload.resnet50Shapes
        case .gpt2small: Workload.gpt2SmallShapes
        }
    }

    /// ResNet-50's 161 parameter tensors (25,557,032 parameters), in model order (torchvision's
    /// `resnet50().parameters()`): the stem, four stages of bottleneck blocks, the classifier.
    static var resnet50Shapes: [[Int]] {
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
    static var gpt2SmallShapes: [[Int]] {
        let width = 768
        let block = [[width], [width], [width, 3 * width], [3 * width], [width, width], [width],
                     [width], [width], [width, 4 * width], [4 * width], [4 * width, width], [width]]
        return [[50257, width], [1024, width]] + Array(repeating: block, count: 12).joined() + [[width], [width]]
    }
}
