import ArgumentParser
import Foundation
import Optim

/// `optim study`, the main job: how the step scales with threads, on both backends, written up
/// as a report folder (Markdown, CSV and SVG plots).
struct Study: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "study",
        abstract: "The scaling study: each optimizer and workload over 1 to twice the cores' threads, on both backends, as a report.",
        discussion: """
            Every configuration is timed as `optim bench` times it (fixed-seed parameters and \
            gradients, warm-up steps, then the measured ones) beside the bandwidth probe over as \
            many elements with the same threads and backend. Per row: ms per step (median and \
            fastest), parameters per second, GB/s of the step's minimum traffic, that as a \
            percentage of the probe, the speedup over one thread and the parallel efficiency \
            (speedup / threads). The report folder holds the table as Markdown and CSV and, per \
            workload, plots of time and efficiency against threads and of bandwidth beside the \
            probe.
            """)

    @Option(help: "Optimizers of the catalog, comma-separated, or all.")
    var optimizer = CommaList<CatalogName>([CatalogName("adam")!, CatalogName("sgd")!])

    @Option(help: "Workloads: \(Workload.allCases.map(\.rawValue).joined(separator: ", ")) (comma-separated).")
    var workload = CommaList<Workload>([.tiny10k, .resnet50, .gpt2small])

    @Option(help: "The most threads; every count from 1 up to it is measured (default twice the cores).")
    var maxThreads = 2 * Execution.coreCount

    @Option(help: "Backends: dispatch, openmp (comma-separated; default both when an OpenMP runtime loads).")
    var backend = CommaList<Backend>(Bench.availableBackends)

    @Option(help: "Measured steps per configuration.")
    var steps = 10

    @Option(help: "Untimed steps first (the first one creates the state).")
    var warmup = 2

    @Option(help: "Folder for the report.")
    var output = ".build/reports/scaling"

    func validate() throws {
        guard maxThreads >= 1, maxThreads <= 1024 else { throw ValidationError("--max-threads must be in 1...1024") }
        guard steps >= 1, steps <= 1_000_000 else { throw ValidationError("--steps must be in 1...1000000") }
        guard warmup >= 0, warmup <= 1_000_000 else { throw ValidationError("--warmup must be in 0...1000000") }
    }

    /// One measured configuration with what the study derives from it.
    struct Row {
        let bench: BenchRow
        var speedup = 1.0
        var efficiency: Double { speedup / Double(bench.threads) }
        var parametersPerSecond: Double { Double(bench.params) / (bench.msMedian / 1000) }
        var percentOfProbe: Double? { bench.probeGBPerSecond.map { 100 * bench.gbPerSecond / $0 } }
    }

    func run() throws {
        let machine = Self.machine()
        print("# optim study: \(machine)")
        var plan: [(OptimizerEntry, Workload, Backend, Int)] = []
        for entry in optimizer.values.flatMap(\.entries) {
            for workload in workload.values {
                if entry.needsMatrices && !workload.shapes.contains(where: { $0.count >= 2 }) {
                    print("# \(entry.name) needs matrices and \(workload) has none: skipped")
                    continue
                }
                for backend in backend.values {
                    for threads in 1...maxThreads { plan.append((entry, workload, backend, threads)) }
                }
            }
        }
        let bench = try Bench.parse(["--steps", "\(steps)", "--warmup", "\(warmup)", "--probe"])
        var rows: [Row] = []
        let start = Date()
        for (number, (entry, workload, backend, threads)) in plan.enumerated() {
            let elapsed = Date().timeIntervalSince(start)
            let left = number == 0 ? "" : String(format: ", about %.0f s left", elapsed / Double(number) * Double(plan.count - number))
            Self.progress("[\(number + 1)/\(plan.count)] \(entry.name.lowercased()) \(workload) \(backend) \(threads) threads\(left)")
            let execution = try Execution(threads: threads, backend: backend)
            rows.append(Row(bench: try bench.measure(entry, workload: workload, dtype: .float32, execution: execution,
                                                     implementation: .multiTensor)))
        }
        Self.progress("")
        // Speedup against the same optimizer, workload and backend at one thread.
        for index in rows.indices {
            let row = rows[index].bench
            if let single = rows.first(where: {
                $0.bench.threads == 1 && $0.bench.optimizer == row.optimizer && $0.bench.workload == row.workload
                    && $0.bench.backend == row.backend
            }) {
                rows[index].speedup = single.bench.msMedian / row.msMedian
            }
        }
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        var written: [String] = []
        func write(_ name: String, _ text: String) throws {
            let path = (output as NSString).appendingPathComponent(name)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            written.append(name)
        }
        let table = Self.markdown(rows)
        print(table)
        try write("scaling.md", """
            # Scaling study

            \(machine); float32, multi-tensor path, \(steps) measured steps after \(warmup) warm-up \
            steps per row, in \(String(format: "%.0f", Date().timeIntervalSince(start))) s.

            \(table)

            Threads past the cores share them: there the efficiency measures oversubscription. \
            Plots: \(workload.values.map { "`time-\($0).svg`, `efficiency-\($0).svg`, `bandwidth-\($0).svg`" }.joined(separator: "; ")).

            """)
        try write("scaling.csv", Self.csv(rows))
        for workload in workload.values {
            let mine = rows.filter { $0.bench.workload == workload.rawValue }
            guard !mine.isEmpty else { continue }
            let curves = Dictionary(grouping: mine) { "\($0.bench.optimizer) \($0.bench.backend)" }.sorted { $0.key < $1.key }
            func series(_ value: (Row) -> Double?) -> [LineChart.Series] {
                curves.map { name, rows in
                    .init(name: name, points: rows.compactMap { row in value(row).map { (x: Double(row.bench.threads), y: $0) } },
                          marked: true)
                }
            }
            let subtitle = "\(workload), float32; \(machine)"
            try write("time-\(workload).svg", LineChart(title: "Time per step", subtitle: subtitle, xLabel: "threads",
                                                        yLabel: "ms per step (median)", series: series { $0.bench.msMedian }).svg())
            try write("efficiency-\(workload).svg", LineChart(title: "Parallel efficiency", subtitle: subtitle, xLabel: "threads",
                                                              yLabel: "speedup / threads", series: series(\.efficiency)).svg())
            var bandwidth = series { $0.bench.gbPerSecond }
            let probes = Dictionary(grouping: mine) { $0.bench.backend }.sorted { $0.key < $1.key }
            for (backend, rows) in probes {
                let points = Dictionary(grouping: rows) { $0.bench.threads }.sorted { $0.key < $1.key }
                    .compactMap { threads, rows in rows.compactMap(\.bench.probeGBPerSecond).max().map { (x: Double(threads), y: $0) } }
                bandwidth.append(.init(name: "probe \(backend)", points: points, dashed: true, marked: true))
            }
            try write("bandwidth-\(workload).svg", LineChart(title: "Bandwidth beside the probe", subtitle: subtitle, xLabel: "threads",
                                                             yLabel: "GB/s of minimum traffic", series: bandwidth).svg())
        }
        print("report: \(output)/ (\(written.joined(separator: ", ")))")
    }

    /// The line a terminal overwrites: what runs now and what is left.
    private static func progress(_ text: String) {
        let line = text.padding(toLength: max(text.count, 100), withPad: " ", startingAt: 0)
        FileHandle.standardError.write(Data(("\r" + line + (text.isEmpty ? "\r" : "")).utf8))
    }

    static func machine() -> String {
        let openMP = (try? Execution(threads: 1, backend: .openMP).openMPRuntimeLibrary ?? "none") ?? "unavailable"
        return "\(Execution.coreCount) cores, loops for \(InstructionSet.best.rawValue), OpenMP runtime \(openMP)"
    }

    private static let columns = ["optimizer", "workload", "backend", "threads", "ms median", "ms min", "Mparams/s",
                                  "GB/s", "% of probe", "speedup", "efficiency"]

    private static func cells(_ row: Row) -> [String] {
        let b = row.bench
        return [b.optimizer, b.workload, b.backend, "\(b.threads)", BenchRow.milliseconds(b.msMedian),
                BenchRow.milliseconds(b.msMin), String(format: "%.1f", row.parametersPerSecond / 1e6),
                String(format: "%.1f", b.gbPerSecond), row.percentOfProbe.map { String(format: "%.0f", $0) } ?? "-",
                String(format: "%.2f", row.speedup), String(format: "%.2f", row.efficiency)]
    }

    static func markdown(_ rows: [Row]) -> String {
        (["| " + columns.joined(separator: " | ") + " |", "|" + String(repeating: "---|", count: columns.count)]
            + rows.map { "| " + cells($0).joined(separator: " | ") + " |" }).joined(separator: "\n")
    }

    static func csv(_ rows: [Row]) -> String {
        ([columns.joined(separator: ",")] + rows.map { cells($0).joined(separator: ",") }).joined(separator: "\n") + "\n"
    }
}
