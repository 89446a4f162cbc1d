import Foundation
import FuzzSupport
import Optim

/// Writes seed corpora for the fuzz targets: for every optimizer of the catalog and each of its
/// sample option sets, the state dict after two steps (`<folder>/load-state-dict/`, a byte
/// that picks the optimizer, then JSON) and a checkpoint file with a model tensor beside it
/// (`<folder>/checkpoint-reader/`).
@main struct MakeSeeds {
    static func main() throws {
        let folder = CommandLine.arguments.dropFirst().first ?? "corpus"
        let stateDicts = folder + "/load-state-dict"
        let checkpoints = folder + "/checkpoint-reader"
        for path in [stateDicts, checkpoints] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let entries = OptimizerCatalog.entries
        var written = 0
        for (index, entry) in entries.enumerated() {
            for (number, options) in entry.sampleOptions.enumerated() {
                // The first byte: this entry, and a variant (path, shapes) that varies with the options.
                let variant = number % (256 / entries.count)
                let choice = UInt8(index + entries.count * variant)
                let shapeSet = variant / 2
                let parameters = try FuzzSupport.parameters(FuzzSupport.shapes(entry, set: shapeSet))
                let optimizer = try entry.make(parameters, options: options, execution: FuzzSupport.execution,
                                               implementation: variant % 2 == 0 ? .multiTensor : .forLoop)
                for round in 0..<2 { try FuzzSupport.step(entry, optimizer, parameters, round: round) }
                let json = try encoder.encode(optimizer.stateDict())
                let name = "\(entry.name)-\(number)"
                try (Data([choice]) + json).write(to: URL(fileURLWithPath: "\(stateDicts)/\(name).json"))
                // The seed loads as the fuzz target loads it: into an optimizer built with the defaults.
                let decoder = JSONDecoder()
                decoder.nonConformingFloatDecodingStrategy = .convertFromString(
                    positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
                let fresh = try FuzzSupport.parameters(FuzzSupport.shapes(entry, set: shapeSet))
                try entry.make(fresh, execution: FuzzSupport.execution)
                    .loadStateDict(decoder.decode(OptimizerStateDict.self, from: json))

                // Checkpoints are loaded over the first shape set.
                let checkpointParameters = try FuzzSupport.parameters(FuzzSupport.shapes(entry, set: 0))
                let saved = try entry.make(checkpointParameters, options: options, execution: FuzzSupport.execution)
                for round in 0..<2 { try FuzzSupport.step(entry, saved, checkpointParameters, round: round) }
                try Checkpoint.save(saved, to: "\(checkpoints)/\(name).safetensors",
                                    tensors: number == 0 ? ["weight": checkpointParameters[0]] : [:])
                let loaded = try FuzzSupport.parameters(FuzzSupport.shapes(entry, set: 0))
                try Checkpoint.load(into: entry.make(loaded, execution: FuzzSupport.execution),
                                    from: "\(checkpoints)/\(name).safetensors")
                written += 2
            }
        }
        print("wrote \(written) seeds under \(folder)")
    }
}
