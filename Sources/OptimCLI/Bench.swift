import ArgumentParser
import Foundation
import Optim
import OptimWorkloads

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Times optimizer steps on the benchmark workloads, beside a bandwidth probe.",
        discussion: """
            For every combination of the listed workloads, dtypes, thread counts, backends and \
            implementations: builds the workload's parameters and gradients (fixed seed), runs the \
            warm-up steps, times each of the measured steps, hashes the final parameters, then runs \
            the bandwidth probe (Adam's memory traffic, almost no arithmetic) over as many elements \
            with the same threads and backend.
            """
    )

    enum Format: String, ExpressibleByArgument { case table, json }
    @Option(help: """
        Optimizers of the catalog, comma-separated, or all: \
        \(OptimizerCatalog.entries.map { $0.name.lowercased() }.joined(separator: ", ")) \
        (each with its benchmark options: torch's defaults, SGD with momentum 0.9).
        """)
    var optimizer = CommaList<CatalogName>([CatalogName("adam")!])

    @Option(help: "Workloads: \(Workload.allCases.map(\.rawValue).joined(separator: ", ")) (comma-separated).")
    var workload = CommaList<Workload>([.tiny10k, .resnet50])

    @Option(help: "Thread counts (comma-separated; default 1 and every core).")
    var threads = CommaList<Int>(Array(Set([1, Execution.coreCount])).sorted())

    @Option(help: "Backends: serial, dispatch, openmp (comma-separated; default dispatch, and openmp when a runtime loads).")
    var backend = CommaList<Backend>(Bench.availableBackends)

    static var availableBackends: [Backend] {
        (try? Execution(threads: 1, backend: .openMP)) == nil ? [.dispatch] : [.dispatch, .openMP]
    }

    @Option(help: "Implementations: foreach, forloop (comma-separated).")
    var implementation = CommaList<Implementation>([.multiTensor, .forLoop])

    @Option(help: "Storage dtypes: float32, float64, float16, bfloat16 (comma-separated).")
    var dtype = CommaList<DType>([.float32])

    @Option(help: "Instruction-set tiers: baseline, avx2, avx512 (comma-separated; default: the best this CPU runs).")
    var isa = CommaList<InstructionSet>([.best])

    @Option(help: "Measured steps per configuration.")
    var steps = 10

    @Option(help: "Untimed steps first (the first one creates the state).")
    var warmup = 2

    @Option(help: "Output: table or json (one object per line).")
    var format: Format = .table

    @Flag(inversion: .prefixedNo, help: "Run the bandwidth probe after each configuration.")
    var probe = true

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative") }
        guard threads.values.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--threads must be positive") }
    }

    /// The optimizers asked for, in catalog order for `all`.
    var entries: [OptimizerEntry] {
        optimizer.values.flatMap { $0.entries }
    }

    func run() throws {
        let openMP: String
        do {
            openMP = try Execution(threads: 1, backend: .openMP).openMPRuntimeLibrary ?? "none"
        } catch {
            openMP = "unavailable"
        }
        print("# optim bench: element loops compiled for \(InstructionSet.allCases.map(\.rawValue).joined(separator: ", ")) "
              + "(x86-64 baseline, x86-64-v3, x86-64-v4), running \(isa.values.map(\.rawValue).joined(separator: ", ")) "
              + "(best on this CPU: \(InstructionSet.best)); "
              + "OpenMP runtime: \(openMP); \(Execution.coreCount) cores")
        var rows: [BenchRow] = []
        for entry in entries {
        for workload in workload.values {
            if entry.needsMatrices && !workload.shapes.contains(where: { $0.count >= 2 }) {
                print("# \(entry.name) needs matrices and \(workload) has none: skipped")
                continue
            }
            for dtype in dtype.values {
                for isa in isa.values {
                    for threads in threads.values {
                        for backend in backend.values {
                            for implementation in implementation.values {
                                let execution = try Execution(threads: threads, backend: backend, instructionSet: isa)
                                let row = try measure(entry, workload: workload, dtype: dtype, execution: execution,
                                                      implementation: implementation)
                                rows.append(row)
                                if format == .json { print(row.json) }
                                fflush(nil)
                            }
                        }
                    }
                }
            }
        }
        }
        if format == .table { print(BenchRow.table(rows)) }
    }

    func measure(_ entry: OptimizerEntry, workload: Workload, dtype: DType, execution: Execution,
                         implementation: Implementation) throws -> BenchRow {
        let parameters = try workload.makeParameters(steppedBy: entry, dtype: dtype)
        let optimizer = try entry.make(parameters, options: entry.benchmarkOptions, execution: execution,
                                       implementation: implementation)
        if entry.sparseGradients == .required { try Workload.moveGradientsToRowSparse(parameters) }
        let stepper: () throws -> Void = entry.engine == .closure
            ? { _ = try optimizer.step { 1 } }
            : { try optimizer.step() }
        let bytesPerElement = entry.arrayAccesses * dtype.byteWidth
        for _ in 0..<warmup { try stepper() }
        var times: [Double] = []
        for _ in 0..<steps {
            let start = monotonicNanoseconds()
            try stepper()
            times.append(Double(monotonicNanoseconds() - start) / 1e6)
        }
        times.sort()
        var checksum: UInt64 = 0
        for parameter in parameters { checksum = parameter.bitHash(seed: checksum) }
        let count = parameters.reduce(0) { $0 + $1.count }
        let medianMs = median(sorted: times)
        var probeResult: BandwidthProbe.Result?
        if probe {
            probeResult = try BandwidthProbe.measure(elements: count, execution: execution, repetitions: max(steps, 5))
        }
        return BenchRow(optimizer: entry.name.lowercased(), workload: workload.rawValue, dtype: dtype.rawValue,
                        threads: execution.threads, backend: execution.backend.rawValue,
                        implementation: implementation.rawValue, isa: execution.instructionSet.rawValue,
                        tensors: parameters.count, params: count, steps: steps,
                        msMedian: medianMs, msMin: times[0],
                        gbPerSecond: Double(bytesPerElement * count) / (medianMs * 1e6),
                        probeGBPerSecond: probeResult?.gigabytesPerSecond,
                        probeNsPerElement: probeResult?.nanosecondsPerElement,
                        checksum: String(format: "%016llx", checksum))
    }
}

struct BenchRow {
    let optimizer, workload, dtype: String
    let threads: Int
    let backend, implementation, isa: String
    let tensors, params, steps: Int
    let msMedian, msMin, gbPerSecond: Double
    let probeGBPerSecond, probeNsPerElement: Double?
    let checksum: String

    var json: String {
        func number(_ value: Double?) -> String {
            guard let value, value.isFinite else { return "null" }
            return String(format: "%.6g", value)
        }
        return """
            {"optimizer":"\(optimizer)","workload":"\(workload)","dtype":"\(dtype)","threads":\(threads),\
            "backend":"\(backend)","implementation":"\(implementation)","isa":"\(isa)","tensors":\(tensors),\
            "params":\(params),"steps":\(steps),"ms_per_step_median":\(number(msMedian)),\
            "ms_per_step_min":\(number(msMin)),"gb_per_s":\(number(gbPerSecond)),\
            "probe_gb_per_s":\(number(probeGBPerSecond)),"probe_ns_per_element":\(number(probeNsPerElement)),\
            "checksum":"\(checksum)"}
            """
    }

    /// Three decimals, or five below 0.1 ms, so that a step of a microsecond still shows.
    static func milliseconds(_ value: Double) -> String { String(format: value < 0.1 ? "%.5f" : "%.3f", value) }

    static func table(_ rows: [BenchRow]) -> String {
        let header = ["optimizer", "workload", "dtype", "threads", "backend", "impl", "tensors", "params",
                      "ms median", "ms min", "GB/s", "probe GB/s", "checksum"]
        let cells = rows.map { r in
            [r.optimizer, r.workload, r.dtype, "\(r.threads)", r.backend, r.implementation, "\(r.tensors)",
             "\(r.params)", milliseconds(r.msMedian), milliseconds(r.msMin),
             String(format: "%.1f", r.gbPerSecond), r.probeGBPerSecond.map { String(format: "%.1f", $0) } ?? "-",
             r.checksum]
        }
        let widths = header.indices.map { column in
            ([header[column]] + cells.map { $0[column] }).map(\.count).max()!
        }
        func line(_ values: [String]) -> String {
            zip(values, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        return ([line(header)] + cells.map(line)).joined(separator: "\n")
    }
}

/// An optimizer of the catalog by its name (any case), or `all`.
struct CatalogName: ExpressibleByArgument {
    let entries: [OptimizerEntry]

    init?(argument: String) {
        if argument == "all" {
            entries = OptimizerCatalog.entries
        } else if let entry = OptimizerCatalog.entry(named: argument) {
            entries = [entry]
        } else {
            return nil
        }
    }

    init?(_ name: String) { self.init(argument: name) }

    var defaultValueDescription: String { entries.map { $0.name.lowercased() }.joined(separator: ",") }
}
