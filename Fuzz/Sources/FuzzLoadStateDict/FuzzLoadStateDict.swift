import CFuzz
import Foundation
import FuzzSupport
import Optim

/// The first byte picks an optimizer of the catalog (modulo its size), the for-loop or
/// multi-tensor path and a set of parameter shapes; the rest is a JSON state dict. The dict is
/// loaded into a fresh optimizer over parameters with gradients; when the load succeeds, the
/// optimizer steps once and gives its state dict. Errors are expected; a crash is a bug.
/// SwiftPM renames an executable's `main`, so libFuzzer's cannot be used: its driver is called.
@main struct FuzzLoadStateDict {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzLoadStateDict))
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLoadStateDict(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size >= 1 else { return 0 }
    let entries = OptimizerCatalog.entries
    let choice = Int(data[0])
    let entry = entries[choice % entries.count]
    let variant = choice / entries.count
    let implementation: Implementation = variant % 2 == 0 ? .multiTensor : .forLoop
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(
        positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    guard let dict = try? decoder.decode(OptimizerStateDict.self, from: Data(bytes: data + 1, count: size - 1))
    else { return 0 }
    do {
        let parameters = try FuzzSupport.parameters(FuzzSupport.shapes(entry, set: variant / 2))
        let optimizer = try entry.make(parameters, execution: FuzzSupport.execution, implementation: implementation)
        try FuzzSupport.setGradients(entry, parameters, round: 0)
        try optimizer.loadStateDict(dict)
        try FuzzSupport.step(entry, optimizer, parameters, round: 1)
        _ = optimizer.stateDict()
    } catch {}
    return 0
}
