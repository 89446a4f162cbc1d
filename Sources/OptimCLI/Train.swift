import ArgumentParser
import Foundation
import Optim
import OptimWorkloads

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

    @Option(help: ArgumentHelp("An option by its torch name, as name=JSON value (momentum=0.9, betas=[0.9,0.99], nesterov=true); repeatable.",
                               valueName: "name=value"))
    var option: [String] = []

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

    @Flag(help: "Train with every optimizer of the catalog at its defaults (same seed) and write a table and a plot of loss against epoch.")
    var compare = false

    @Option(help: "Folder for --compare's table and plot.")
    var output = ".build/reports/digits"

    @Option(help: "Progress: table (one line per epoch) or json (one object per epoch, full precision).")
    var format: Bench.Format = .table

    func validate() throws {
        guard epochs > 0, epochs <= 100_000 else { throw ValidationError("--epochs must be in 1...100000") }
        guard batchSize > 0, batchSize <= 1_000_000 else { throw ValidationError("--batch-size must be in 1...1000000") }
        guard hidden > 0, hidden <= 4096 else { throw ValidationError("--hidden must be in 1...4096") }
        if let lr, !(lr.isFinite && lr >= 0) { throw ValidationError("--lr must be finite and >= 0") }
        if compare, lr != nil || !option.isEmpty {
            throw ValidationError("--compare trains each optimizer at its own defaults; drop --lr and --option")
        }
        _ = try torchOptions()
    }

    /// `--lr` and every `--option`, by torch's names.
    private func torchOptions() throws -> [String: StateValue] {
        var options: [String: StateValue] = [:]
        for item in option {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw ValidationError("--option \(item): expected name=value")
            }
            let name = String(item[..<equals]), text = String(item[item.index(after: equals)...])
            guard let value = try? JSONDecoder().decode(StateValue.self, from: Data(text.utf8)) else {
                throw ValidationError("--option \(item): \(text) is not a JSON value (a number, true, false or a list)")
            }
            options[name] = value
        }
        if let lr { options["lr"] = .number(lr) }
        return options
    }

    /// One epoch of a run.
    struct Epoch {
        let loss: Double, trainAccuracy: Double, testAccuracy: Double, seconds: Double
    }

    func run() throws {
        let digits = try Digits(contentsOf: data)
        if compare { return try compareAll(digits) }
        guard let entry = OptimizerCatalog.entry(named: optimizer) else {
            throw ValidationError("no optimizer named \(optimizer); `optim catalog` lists them")
        }
        if format == .table {
            print("\(entry.name) on \(digits.count - digits.count / 5) digits (\(digits.count / 5) held out), "
                  + "\(Digits.pixels)-\(hidden)-\(Digits.classes) perceptron, batches of \(batchSize), \(epochs) epochs")
        }
        let (_, correct, tested) = try train(entry, digits, options: try torchOptions()) { number, epoch in
            switch format {
            case .table:
                print("epoch \(number)/\(self.epochs)  loss \(Self.format(epoch.loss, 4))  "
                      + "train \(Self.percent(epoch.trainAccuracy))  test \(Self.percent(epoch.testAccuracy))  "
                      + "\(Self.format(epoch.seconds, 2)) s")
            case .json:
                print(#"{"epoch":\#(number),"loss":\#(epoch.loss),"train_accuracy":\#(epoch.trainAccuracy),"#
                      + #""test_accuracy":\#(epoch.testAccuracy),"seconds":\#(epoch.seconds)}"#)
            }
        }
        print("test accuracy \(Self.percent(Double(correct) / Double(tested))) (\(correct) of \(tested))")
    }

    /// Trains a fresh network with `entry`; reports each epoch; returns them and the test score.
    private func train(_ entry: OptimizerEntry, _ digits: Digits, options: [String: StateValue],
                       progress: (Int, Epoch) -> Void) throws -> (epochs: [Epoch], correct: Int, tested: Int) {
        guard entry.sparseGradients != .required else {
            throw TrainingError("\(entry.name) takes sparse gradients only; this network's are dense")
        }
        if let unknown = options.keys.sorted().first(where: { entry.defaults[$0] == nil }) {
            throw TrainingError("\(entry.name) has no option \(unknown); its options: "
                                + entry.defaults.keys.sorted().joined(separator: ", "))
        }
        var generator = SplitMix64(seed: seed)
        var order = Array(0..<digits.count)
        order.shuffle(&generator)
        let testCount = digits.count / 5
        let trainIndices = Array(order[testCount...]), testIndices = Array(order[..<testCount])
        let network = try Perceptron(inputs: Digits.pixels, hidden: hidden, outputs: Digits.classes, &generator)
        let optimizer = try entry.make(network.parameters, options: options)
        let start = Date()
        var shuffled = trainIndices
        var record: [Epoch] = []
        for number in 1...epochs {
            shuffled.shuffle(&generator)
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
                    throw TrainingError("the loss became \(loss) at epoch \(number): lower the learning rate")
                }
                lossSum += loss
                batches += 1
            }
            let epoch = Epoch(loss: lossSum / Double(batches), trainAccuracy: network.accuracy(digits, trainIndices),
                              testAccuracy: network.accuracy(digits, testIndices),
                              seconds: Date().timeIntervalSince(start))
            record.append(epoch)
            progress(number, epoch)
        }
        return (record, network.correctCount(digits, testIndices), testIndices.count)
    }

    /// Every catalog optimizer at its defaults: a table and a plot of the mean training loss.
    private func compareAll(_ digits: Digits) throws {
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        var rows: [String] = [], series: [LineChart.Series] = []
        let entries = OptimizerCatalog.entries
        for (number, entry) in entries.enumerated() {
            let label = "[\(number + 1)/\(entries.count)] \(entry.name)"
            if entry.sparseGradients == .required || entry.needsMatrices {
                let reason = entry.needsMatrices ? "takes matrices only; the biases need another optimizer"
                                                 : "takes sparse gradients only"
                print("\(label): skipped, \(reason)")
                rows.append("| \(entry.name) | skipped: \(reason) | | | |")
                continue
            }
            do {
                let run = try train(entry, digits, options: [:]) { _, _ in }
                let last = run.epochs[run.epochs.count - 1]
                let accuracy = Double(run.correct) / Double(run.tested)
                print("\(label): loss \(Self.format(last.loss, 4)), test \(Self.percent(accuracy)), \(Self.format(last.seconds, 2)) s")
                rows.append("| \(entry.name) | \(Self.format(last.loss, 4)) | \(Self.percent(last.trainAccuracy)) | "
                            + "\(Self.percent(accuracy)) | \(Self.format(last.seconds, 2)) |")
                series.append(.init(name: entry.name, points: run.epochs.enumerated().map { (x: Double($0.offset + 1), y: $0.element.loss) }))
            } catch let error as TrainingError {
                print("\(label): \(error)")
                rows.append("| \(entry.name) | \(error) | | | |")
            }
        }
        let subtitle = "\(Digits.pixels)-\(hidden)-\(Digits.classes) perceptron, batches of \(batchSize), seed \(seed), each optimizer at its defaults"
        let table = """
            # Every optimizer on the digits

            \(subtitle); \(epochs) epochs; `optim train --compare`.

            | optimizer | final loss | train accuracy | test accuracy | seconds |
            |---|---|---|---|---|
            \(rows.joined(separator: "\n"))

            """
        let tablePath = (output as NSString).appendingPathComponent("compare.md")
        try table.write(toFile: tablePath, atomically: true, encoding: .utf8)
        let chart = LineChart(title: "Training loss on the digits", subtitle: subtitle, xLabel: "epoch",
                              yLabel: "mean cross-entropy (log scale)", series: series, logarithmicY: true)
        let plotPath = (output as NSString).appendingPathComponent("loss.svg")
        try chart.svg().write(toFile: plotPath, atomically: true, encoding: .utf8)
        print("wrote \(tablePath) and \(plotPath)")
    }

    private static func format(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
    private static func percent(_ fraction: Double) -> String { String(format: "%.1f%%", 100 * fraction) }
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

    func pixel(_ image: Int, _ k: Int) -> Float { images[image * Digits.pixels + k] }
}

extension Array {
    /// Fisher-Yates from the last element down, drawing `next() % (i + 1)`: simple enough that
    /// a script in another language repeats it (Benchmarks/peers/train_digits_torch.py).
    mutating func shuffle(_ generator: inout SplitMix64) {
        guard count > 1 else { return }
        for i in stride(from: count - 1, to: 0, by: -1) {
            swapAt(i, Int(generator.next() % UInt64(i + 1)))
        }
    }
}

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
