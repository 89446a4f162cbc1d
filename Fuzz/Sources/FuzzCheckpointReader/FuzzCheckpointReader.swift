import CFuzz
import Foundation
import FuzzSupport
import Optim

/// The input, written to a file, is read as a checkpoint; when that succeeds it is loaded into
/// a fresh optimizer of the type it names, which then steps once. Since a mutated file seldom
/// keeps hashes that match, the input is then tried a second time with both hashes of its
/// header recomputed, so that the checks past them are reached too. Errors are expected; a
/// crash is a bug.
/// SwiftPM renames an executable's `main`, so libFuzzer's cannot be used: its driver is called.
@main struct FuzzCheckpointReader {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzCheckpointReader))
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpointReader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    readAndLoad(bytes)
    if let repaired = withRepairedHashes(bytes), repaired != bytes { readAndLoad(repaired) }
    return 0
}

/// One file per process, reused for every input.
let path = "/dev/shm/fuzz-checkpoint-reader-\(getpid()).safetensors"

func readAndLoad(_ bytes: [UInt8]) {
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
        fatalError("cannot write \(path)")
    }
    guard let contents = try? Checkpoint.read(from: path) else { return }
    // An optimizer of the type the file names, or Adam.
    let entries = OptimizerCatalog.entries
    let index = FuzzSupport.typeNames.firstIndex(of: contents.optimizer)
        ?? entries.firstIndex { $0.name == "Adam" } ?? 0
    let entry = entries[index]
    do {
        let parameters = try FuzzSupport.parameters(FuzzSupport.shapes(entry, set: 0))
        let optimizer = try entry.make(parameters, execution: FuzzSupport.execution)
        try Checkpoint.load(into: optimizer, from: path)
        try FuzzSupport.step(entry, optimizer, parameters, round: 1)
        _ = optimizer.stateDict()
    } catch {}
}

/// `bytes` with the header's `state_dict_hash` and `data_hash` set to what the reader computes,
/// when the header is a JSON object with metadata; nil otherwise.
func withRepairedHashes(_ bytes: [UInt8]) -> [UInt8]? {
    guard bytes.count >= 8 else { return nil }
    let declared = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    guard declared <= UInt64(bytes.count - 8) else { return nil }
    let headerEnd = 8 + Int(declared)
    guard var header = try? JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd])) as? [String: Any],
          var metadata = header["__metadata__"] as? [String: Any] else { return nil }
    let payload = Array(bytes[headerEnd...])
    if let stateDict = metadata["state_dict"] as? String {
        let text = Array(stateDict.utf8)
        metadata["state_dict_hash"] = hex(text.withUnsafeBytes { optim_hash_bytes($0.baseAddress, Int64($0.count), 0) })
    }
    // The data hash chains the entries' bytes in the order of their offsets, each entry in
    // blocks of 1 MiB (the last one shorter).
    var spans: [(begin: Int, end: Int)] = []
    for (name, value) in header where name != "__metadata__" {
        guard let fields = value as? [String: Any], let offsets = fields["data_offsets"] as? [Any], offsets.count == 2,
              let begin = (offsets[0] as? NSNumber)?.intValue, let end = (offsets[1] as? NSNumber)?.intValue,
              begin >= 0, begin <= end, end <= payload.count else { continue }
        spans.append((begin, end))
    }
    spans.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
    var dataHash: UInt64 = 0
    payload.withUnsafeBytes { raw in
        for span in spans {
            for start in stride(from: span.begin, to: span.end, by: 1 << 20) {
                dataHash = optim_hash_bytes(raw.baseAddress.map { $0 + start }, Int64(min(1 << 20, span.end - start)), dataHash)
            }
        }
    }
    metadata["data_hash"] = hex(dataHash)
    header["__metadata__"] = metadata
    guard JSONSerialization.isValidJSONObject(header),
          let text = try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]) else { return nil }
    var result: [UInt8] = []
    var length = UInt64(text.count).littleEndian
    withUnsafeBytes(of: &length) { result.append(contentsOf: $0) }
    result.append(contentsOf: text)
    result.append(contentsOf: payload)
    return result
}

func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}
