import ArgumentParser
import Foundation
import Optim

/// `optim train`: a small multilayer perceptron fitted to the 8x8 handwritten digits, with any
/// optimizer of the catalog: a real training run on shipped data.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a small multilayer perceptron on the 8x8 handwritten digits with an optimizer of the catalog.",
        discussion: """
            The network: 64 pixels → hidden units (ReLU) → 10 classes (softmax, cross-entropy), \
            forward and backward passes written by hand in float32. The data: the 1,797 images \
            of Benchmarks/data/digits/digits.csv, shuffled once with the seed, the last fifth \
            held out for testing. One line of progress per epoch; the last line is the test \
            accuracy.
            """)

    @Option(help: "The optimizer, by its catalog name (see `optim catalog`).")
    var optimizer = "adam"

    @Option(help: "The learning rate (default: the optimizer's).")
    var lr: Double?

    @Option(help: "Passes over the training images.")
    var epochs = 30

    @Option(help: "Images per step.")
    var batchSize = 32

    @Option(help: "Hidden units.")
    var hidden = 64

    @Option(help: "Seed of the initial weights, the split and the order of the images.")
    var seed: UInt64 = 0

    @Option(help: "The digits file (64 pixel values 0-16 and a label 0-9 per line, after a header).")
    var data = "Benchmarks/data/digits/digits.csv"

    func validate() throws {
        guard epochs > 0, epochs <= 100_000 else { throw ValidationError("--epochs must be in 1...100000") }
        guard batchSize > 0, batchSize <= 1_000_000 else { throw ValidationError("--batch-size must be in 1...1000000") }
        guard hidden > 0, hidden <= 4096 else { throw ValidationError("--hidden must be in 1...4096") }
        if let lr, !(lr.isFinite && lr >= 0) { throw ValidationError("--lr must be finite and >= 0") }
    }

    func run() throws {
        guard let entry = OptimizerCatalog.entry(named: optimizer) else {
            throw ValidationError("no optimizer named \(optimizer); `optim catalog` lists them")
        }
        guard entry.sparseGradients != .required else {
            throw ValidationError("\(entry.name) takes sparse gradients only; this network's are dense")
        }
        let digits = try Digits(contentsOf: data)
        var generator = SplitMix64(seed: seed)
        let order = digits.shuffledIndices(&generator)
        let testCount = digits.count / 5
        let trainIndices = Array(order[testCount...]), testIndices = Array(order[..<testCount])
        let network = try Perceptron(inputs: Digits.pixels, hidden: hidden, outputs: Digits.classes, &generator)
        let options: [String: StateValue] = lr.map { ["lr": .number($0)] } ?? [:]
        let optimizer = try entry.make(network.parameters, options: options)
        print("\(entry.name) on \(trainIndices.count) digits (\(testIndices.count) held out), "
              + "\(Digits.pixels)-\(hidden)-\(Digits.classes) perceptron, batches of \(batchSize), \(epochs) epochs")
        let start = Date()
        var shuffled = trainIndices
        for epoch in 1...epochs {
            shuffled.shuffle(using: &generator)
            var lossSum = 0.0, batches = 0
            for batchStart in stride(from: 0, to: shuffled.count, by: batchSize) {
                let batch = Array(shuffled[batchStart..<min(batchStart + batchSize, shuffled.count)])
                let loss: Double
                if entry.engine == .closure {
                    loss = try optimizer.step { network.lossAndGradients(digits, batch) }
                } else {
                    loss = network.lossAndGradients(digits, batch)
                    try optimizer.step()
                }
                guard loss.isFinite else {
                    throw TrainingError("the loss became \(loss) at epoch \(epoch): lower the learning rate")
                }
                lossSum += loss
                batches += 1
            }
            let seconds = Date().timeIntervalSince(start)
            print("epoch \(epoch)/\(epochs)  loss \(format(lossSum / Double(batches), 4))  "
                  + "train \(percent(network.accuracy(digits, trainIndices)))  "
                  + "test \(percent(network.accuracy(digits, testIndices)))  \(format(seconds, 2)) s")
        }
        let correct = network.correctCount(digits, testIndices)
        print("test accuracy \(percent(Double(correct) / Double(testIndices.count))) "
              + "(\(correct) of \(testIndices.count))")
    }

    private func format(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
    private func percent(_ fraction: Double) -> String { String(format: "%.1f%%", 100 * fraction) }
}

/// A training run that cannot go on: its data, or a loss that stopped being a number.
struct TrainingError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The digits: pixels scaled to [0, 1], and labels.
struct Digits {
    static let pixels = 64
    static let classes = 10
    let images: [Float]
    let labels: [Int]
    var count: Int { labels.count }

    /// Reads the file `export_digits.py` writes; throws, naming the line, on anything else.
    init(contentsOf path: String) throws {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw TrainingError("cannot read the digits from \(path): \(error.localizedDescription)")
        }
        var images: [Float] = [], labels: [Int] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            if number == 0, line.hasPrefix("pixel") { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == Digits.pixels + 1 else {
                throw TrainingError("\(path), line \(number + 1): \(fields.count) fields; 65 expected")
            }
            for field in fields.dropLast() {
                guard let value = Int(field.trimmingCharacters(in: .whitespaces)), (0...16).contains(value) else {
                    throw TrainingError("\(path), line \(number + 1): pixel \(field) is not a whole number in 0...16")
                }
                images.append(Float(value) / 16)
            }
            guard let label = Int(fields[Digits.pixels].trimmingCharacters(in: .whitespaces)),
                  (0..<Digits.classes).contains(label) else {
                throw TrainingError("\(path), line \(number + 1): label \(fields[Digits.pixels]) is not a digit")
            }
            labels.append(label)
        }
        guard labels.count >= 5 else { throw TrainingError("\(path) holds \(labels.count) images; 5 at least are needed") }
        self.images = images
        self.labels = labels
    }

    func shuffledIndices(_ generator: inout SplitMix64) -> [Int] {
        var indices = Array(0..<count)
        indices.shuffle(using: &generator)
        return indices
    }

    func pixel(_ image: Int, _ k: Int) -> Float { images[image * Digits.pixels + k] }
}

extension SplitMix64: RandomNumberGenerator {}

/// One hidden layer: `z = W₂ · relu(W₁ · x + b₁) + b₂`, softmax cross-entropy, in float32.
/// Weights and biases start uniform in ±1/√fan_in, as torch's `nn.Linear` starts them.
final class Perceptron {
    let inputs: Int, hidden: Int, outputs: Int
    let w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor
    var parameters: [Tensor] { [w1, b1, w2, b2] }

    init(inputs: Int, hidden: Int, outputs: Int, _ generator: inout SplitMix64) throws {
        (self.inputs, self.hidden, self.outputs) = (inputs, hidden, outputs)
        func uniform(_ shape: [Int], fanIn: Int) throws -> Tensor {
            let bound = 1 / Double(fanIn).squareRoot()
            let count = shape.reduce(1, *)
            return try Tensor((0..<count).map { _ in bound * generator.nextSigned() }, shape: shape)
        }
        w1 = try uniform([hidden, inputs], fanIn: inputs)
        b1 = try uniform([hidden], fanIn: inputs)
        w2 = try uniform([outputs, hidden], fanIn: hidden)
        b2 = try uniform([outputs], fanIn: hidden)
        for parameter in parameters { parameter.grad = try Tensor.zeros(parameter.shape) }
    }

    private func floats(_ tensor: Tensor) -> UnsafeMutablePointer<Float> {
        tensor.baseAddress.assumingMemoryBound(to: Float.self)
    }

    /// Hidden activations and class scores of one image.
    private func forward(_ digits: Digits, _ image: Int, hiddenOut h: inout [Float], scores z: inout [Float]) {
        let (w1, b1, w2, b2) = (floats(w1), floats(b1), floats(w2), floats(b2))
        for j in 0..<hidden {
            var sum = b1[j]
            for k in 0..<inputs { sum += w1[j * inputs + k] * digits.pixel(image, k) }
            h[j] = max(sum, 0)
        }
        for c in 0..<outputs {
            var sum = b2[c]
            for j in 0..<hidden { sum += w2[c * hidden + j] * h[j] }
            z[c] = sum
        }
    }

    /// The batch's mean cross-entropy; writes its gradients into each parameter's `grad`.
    func lossAndGradients(_ digits: Digits, _ batch: [Int]) -> Double {
        let (w2, gw1, gb1, gw2, gb2) = (floats(w2), floats(w1.grad!), floats(b1.grad!), floats(w2.grad!), floats(b2.grad!))
        for (pointer, count) in [(gw1, w1.count), (gb1, b1.count), (gw2, self.w2.count), (gb2, b2.count)] {
            pointer.update(repeating: 0, count: count)
        }
        var h = [Float](repeating: 0, count: hidden), z = [Float](repeating: 0, count: outputs)
        var dh = [Float](repeating: 0, count: hidden)
        let scale = 1 / Float(batch.count)
        var loss = 0.0
        for image in batch {
            forward(digits, image, hiddenOut: &h, scores: &z)
            let top = z.max() ?? 0
            var total: Float = 0
            for c in 0..<outputs { z[c] = expf(z[c] - top); total += z[c] }
            let label = digits.labels[image]
            loss -= Double(logf(z[label] / total))
            // dLoss/dz = (softmax − one-hot) / batch size.
            for c in 0..<outputs { z[c] = (z[c] / total - (c == label ? 1 : 0)) * scale }
            for j in 0..<hidden { dh[j] = 0 }
            for c in 0..<outputs {
                gb2[c] += z[c]
                for j in 0..<hidden {
                    gw2[c * hidden + j] += z[c] * h[j]
                    dh[j] += z[c] * w2[c * hidden + j]
                }
            }
            for j in 0..<hidden where h[j] > 0 {
                gb1[j] += dh[j]
                for k in 0..<inputs { gw1[j * inputs + k] += dh[j] * digits.pixel(image, k) }
            }
        }
        return loss / Double(batch.count)
    }

    func correctCount(_ digits: Digits, _ indices: [Int]) -> Int {
        var h = [Float](repeating: 0, count: hidden), z = [Float](repeating: 0, count: outputs)
        var correct = 0
        for image in indices {
            forward(digits, image, hiddenOut: &h, scores: &z)
            if let best = z.indices.max(by: { z[$0] < z[$1] }), best == digits.labels[image] { correct += 1 }
        }
        return correct
    }

    func accuracy(_ digits: Digits, _ indices: [Int]) -> Double {
        indices.isEmpty ? 0 : Double(correctCount(digits, indices)) / Double(indices.count)
    }
}
