import ArgumentParser
import Foundation
import Optim
import OptimWorkloads

struct BenchCheckpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-checkpoint",
        abstract: "Times checkpoint files: saving and loading an optimizer's state, and its state dict.",
        discussion: """
            Builds the workload's parameters and gradients (fixed seed), steps the optimizer once \
            so that its state exists, then times, each repetition: stateDict() (a copy of the \
            state), Checkpoint.save (write, fsync, rename, folder fsync), Checkpoint.read of the \
            file just written (from the page cache) and Checkpoint.load into the optimizer (read \
            and loadStateDict). GB/s counts the state's bytes (the file holds those and a header \
            of a few kilobytes). The peak column is the most the process's resident memory grew \
            above its size before the operation (Linux's VmHWM, reset before each one).
            """
    )

    @Option(help: "Optimizers of the catalog, comma-separated, or all.")
    var optimizer = CommaList<CatalogName>([CatalogName("adam")!])

    @Option(help: "Workloads: \(Workload.allCases.map(\.rawValue).joined(separator: ", ")) (comma-separated).")
    var workload = CommaList<Workload>([.gpt2small])

    @Option(help: "Storage dtype of the parameters and state.")
    var dtype: DType = .float32

    @Option(help: "Folder for the checkpoint file (default: the system's temporary folder).")
    var folder: String?

    @Option(help: "Timed repetitions of each operation.")
    var repetitions = 5

    func validate() throws {
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
    }

    func run() throws {
        let directory = folder ?? FileManager.default.temporaryDirectory.path
        let path = (directory as NSString).appendingPathComponent("optim-bench-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        print("# optim bench-checkpoint: file \(path); medians of \(repetitions) repetitions; reads from the page cache")
        print("optimizer  workload   dtype     state MB  operation    ms median  ms min     GB/s    peak MB")
        for entry in optimizer.values.flatMap(\.entries) {
            for workload in workload.values {
                let parameters = try workload.makeParameters(steppedBy: entry, dtype: dtype)
                let optimizer = try entry.make(parameters, options: entry.benchmarkOptions)
                if entry.sparseGradients == .required { try Workload.moveGradientsToRowSparse(parameters) }
                if entry.engine == .closure { _ = try optimizer.step { 1 } } else { try optimizer.step() }
                let stateBytes = stateByteCount(optimizer.stateDict())

                let operations: [(String, () throws -> Void)] = [
                    ("stateDict", { _ = optimizer.stateDict() }),
                    ("save", { try Checkpoint.save(optimizer, to: path) }),
                    ("read", { _ = try Checkpoint.read(from: path) }),
                    ("load", { try Checkpoint.load(into: optimizer, from: path) }),
                ]
                for (name, operation) in operations {
                    var times: [Double] = []
                    var peak = 0
                    for _ in 0..<repetitions {
                        let before = residentBytes()
                        resetPeakResident()
                        let start = DispatchTime.now().uptimeNanoseconds
                        try operation()
                        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
                        peak = max(peak, peakResidentBytes() - before)
                    }
                    times.sort()
                    let median = times[times.count / 2]
                    func padded(_ text: String, _ width: Int) -> String {
                        text + String(repeating: " ", count: max(0, width - text.count))
                    }
                    print(padded(entry.name, 11) + padded(workload.rawValue, 11) + padded(dtype.rawValue, 10)
                          + String(format: "%-9.1f ", Double(stateBytes) / 1e6) + padded(name, 13)
                          + String(format: "%-10.1f %-9.1f %-7.2f %.1f", median, times[0],
                                   Double(stateBytes) / (median * 1e6), Double(peak) / 1e6))
                }
            }
        }
    }

    /// The bytes of the state dict's tensors, as the file holds them.
    func stateByteCount(_ dict: OptimizerStateDict) -> Int {
        func bytes(_ value: StateValue) -> Int {
            switch value {
            case .tensor(let tensor): tensor.count * tensor.dtype.byteWidth
            case .list(let items): items.map(bytes).reduce(0, +)
            case .dictionary(let entries): entries.values.map(bytes).reduce(0, +)
            default: 0
            }
        }
        return dict.state.values.flatMap(\.values).map(bytes).reduce(0, +)
    }

    /// A field of /proc/self/status, in bytes (0 where there is none).
    func statusBytes(_ field: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
              let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1024
    }

    func residentBytes() -> Int { statusBytes("VmRSS") }
    func peakResidentBytes() -> Int { statusBytes("VmHWM") }

    /// Sets VmHWM back to the current resident size (Linux: "5" to /proc/self/clear_refs).
    func resetPeakResident() {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }
}
