import ArgumentParser
import Foundation
import Optim
import OptimWorkloads

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

            Unless --no-model: a model of the step at more cores (--model-cores), fitted to \
            figures measured in the same run, t(c) = L(c) + (T - 1) * tau / c + B / min(c * b1, \
            cap): L(c) the step of one 100-element tensor launched on c threads, tau the cost of \
            a tensor beyond its elements (tiny10k against flat1m at one thread), b1 the \
            one-thread bandwidth probe over the workload's elements, cap the machine's memory \
            bandwidth (--model-bandwidth-cap, an assumption). It is drawn dashed in the time \
            plots, checked against the measured points up to the cores, and written as rows \
            marked "model".
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

    @Flag(inversion: .prefixedNo, help: "Model the step at more cores from figures measured in the same run (about a second more).")
    var model = true

    @Option(help: "Core counts the model predicts, beside 1 to the cores (comma-separated, each in 1...1024).")
    var modelCores = CommaList<Int>([4, 8, 16, 32, 64])

    @Option(help: """
        The model's memory bandwidth cap in GB/s: what the whole machine moves at most, however \
        many cores (an assumption, not a measurement; the default is about what one socket of \
        8 DDR4-3200 channels, 204.8 GB/s peak, sustains).
        """)
    var modelBandwidthCap = StepModel.defaultBandwidthCap

    func validate() throws {
        guard maxThreads >= 1, maxThreads <= 1024 else { throw ValidationError("--max-threads must be in 1...1024") }
        guard steps >= 1, steps <= 1_000_000 else { throw ValidationError("--steps must be in 1...1000000") }
        guard warmup >= 0, warmup <= 1_000_000 else { throw ValidationError("--warmup must be in 0...1000000") }
        if let bad = modelCores.values.first(where: { !(1...1024).contains($0) }) {
            throw ValidationError("--model-cores must list core counts in 1...1024, got \(bad)")
        }
        guard modelBandwidthCap.isFinite, modelBandwidthCap > 0, modelBandwidthCap <= 1_000_000 else {
            throw ValidationError("--model-bandwidth-cap must be a bandwidth in GB/s above 0 and at most 1000000, got \(modelBandwidthCap)")
        }
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
        // The model's own measurements, per optimizer: one100, tiny10k and flat1m at one thread
        // (the calling thread whatever the backend; tiny10k and flat1m alternate over rounds, so
        // that a swing of the machine falls on both), then per backend one100 with its launch
        // sent to 2 to the cores' threads.
        let modelled = model ? StepModel.modelled(optimizer.values.flatMap(\.entries)) : []
        var calibration: [(OptimizerEntry, Workload, Backend, Execution)] = []
        for entry in modelled {
            calibration.append((entry, .one100, .dispatch, try StepModel.launchExecution(threads: 1, backend: .dispatch)))
            for _ in 0..<StepModel.rounds {
                for workload in [Workload.tiny10k, .flat1m] {
                    calibration.append((entry, workload, .dispatch, try Execution(threads: 1, backend: .dispatch)))
                }
            }
            for backend in backend.values where Execution.coreCount > 1 {
                for threads in 2...Execution.coreCount {
                    calibration.append((entry, .one100, backend, try StepModel.launchExecution(threads: threads, backend: backend)))
                }
            }
        }
        let bench = try Bench.parse(["--steps", "\(steps)", "--warmup", "\(warmup)", "--probe"])
        // Steps of one 100-element tensor take microseconds: more of them, no probe.
        let launchBench = try Bench.parse(["--steps", "\(max(steps, StepModel.launchSteps))", "--warmup", "\(max(warmup, 10))", "--no-probe"])
        let oneThreadBench = try Bench.parse(["--steps", "\(steps)", "--warmup", "\(warmup)", "--no-probe"])
        var rows: [Row] = []
        var calibrationRows: [BenchRow] = []
        let start = Date()
        let total = plan.count + calibration.count
        func progress(_ number: Int, _ text: String) {
            // The model's measurements take about a second in all: the estimate counts the plan's.
            let elapsed = Date().timeIntervalSince(start)
            let left = number == 0 || number >= plan.count ? ""
                : String(format: ", about %.0f s left", elapsed / Double(number) * Double(plan.count - number))
            Self.progress("[\(number + 1)/\(total)] \(text)\(left)")
        }
        for (number, (entry, workload, backend, threads)) in plan.enumerated() {
            progress(number, "\(entry.name.lowercased()) \(workload) \(backend) \(threads) threads")
            let execution = try Execution(threads: threads, backend: backend)
            rows.append(Row(bench: try bench.measure(entry, workload: workload, dtype: .float32, execution: execution,
                                                     implementation: .multiTensor)))
        }
        let planSeconds = Date().timeIntervalSince(start)
        for (number, (entry, workload, backend, execution)) in calibration.enumerated() {
            progress(plan.count + number, "model: \(entry.name.lowercased()) \(workload) \(backend) \(execution.threads) threads")
            calibrationRows.append(try (workload == .one100 ? launchBench : oneThreadBench)
                .measure(entry, workload: workload, dtype: .float32, execution: execution, implementation: .multiTensor))
        }
        Self.progress("")
        let seconds = Date().timeIntervalSince(start)
        let modelSeconds = seconds - planSeconds
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
        let fits = modelled.flatMap { entry in
            backend.values.compactMap { backend in
                StepModel.Fit(entry: entry, backend: backend, calibration: calibrationRows, measured: rows.map(\.bench),
                              workloads: workload.values)
            }
        }
        let cores = Array(Set(Array(1...Execution.coreCount) + modelCores.values)).sorted()
        let modelRows = fits.flatMap { fit in
            workload.values.flatMap { workload in cores.compactMap { fit.row(workload, cores: $0, cap: modelBandwidthCap) } }
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
        let modelReport = model ? StepModel.report(fits: fits, measured: rows.map(\.bench), modelRows: modelRows,
                                                   workloads: workload.values, cores: cores, bandwidthCap: modelBandwidthCap,
                                                   skipped: optimizer.values.flatMap(\.entries).filter { !modelled.map(\.name).contains($0.name) },
                                                   seconds: modelSeconds)
            : nil
        if let modelReport { print("\n" + modelReport.summary) }
        let plots = workload.values.map { "`time-\($0).svg`, `efficiency-\($0).svg`, `bandwidth-\($0).svg`" }.joined(separator: "; ")
        try write("scaling.md", """
            # Scaling study

            \(machine); float32, multi-tensor path, \(steps) measured steps after \(warmup) warm-up \
            steps per row, in \(String(format: "%.0f", seconds)) s.

            \(table)

            Threads past the cores share them: there the efficiency measures oversubscription. \
            Plots: \(plots).

            \(modelReport.map { $0.markdown + "\n" } ?? "")
            """)
        try write("scaling.csv", Self.csv(rows, model: modelRows))
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
            var time = LineChart(title: "Time per step", subtitle: subtitle, xLabel: "threads",
                                 yLabel: "ms per step (median)", series: series { $0.bench.msMedian })
            let modelCurves = curves.enumerated().compactMap { number, curve -> LineChart.Series? in
                let points = modelRows.filter { "\($0.optimizer) \($0.backend)" == curve.key && $0.workload == workload.rawValue }
                    .map { (x: Double($0.cores), y: $0.milliseconds) }
                return points.isEmpty ? nil : .init(name: "\(curve.key) (model)", points: points, dashed: true, colorIndex: number)
            }
            if !modelCurves.isEmpty {
                time.series += modelCurves
                time.logarithmicX = true
                time.xLabel = "threads (measured) and cores (model)"
                time.caption = StepModel.caption(bandwidthCap: modelBandwidthCap)
            }
            try write("time-\(workload).svg", time.svg())
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
        print("study: \(String(format: "%.0f", Date().timeIntervalSince(start))) s")
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

    static let columns = ["optimizer", "workload", "backend", "threads", "ms median", "ms min", "Mparams/s",
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

    /// The measured rows, then the model's, each marked in a last column (`measured` or `model`).
    static func csv(_ rows: [Row], model: [StepModel.Prediction]) -> String {
        let measured = rows.map { (cells($0) + ["measured"]).joined(separator: ",") }
        let modelled = model.map { (StepModel.cells($0) + ["model"]).joined(separator: ",") }
        return ([(columns + ["source"]).joined(separator: ",")] + measured + modelled).joined(separator: "\n") + "\n"
    }
}

/// The model of `optim study`: the step time at c cores, from figures measured in the same run,
///
///     t(c) = L(c) + (T - 1) * tau / c + B / min(c * b1, max(cap, b1))
///
/// with T the workload's tensors and B its bytes of minimum traffic; L(c) the step of one
/// 100-element tensor whose launch goes to c threads (measured from 1 to the cores, then growing
/// by the measured increment per thread); tau what a tensor costs beyond its elements (tiny10k
/// against flat1m, the same million elements in one tensor, at one thread); b1 the bandwidth
/// probe over the workload's elements at one thread; cap the machine's memory bandwidth, an
/// assumption. c is the threads a launch of the workload uses: 1 below the backend's serial
/// threshold, at most one per chunk, and at most 64 on the Dispatch backend.
struct StepModel {
    /// GB/s: about what one socket of 8 DDR4-3200 channels (204.8 GB/s peak) sustains.
    static let defaultBandwidthCap = 150.0
    /// Steps of one100 per thread count (each takes microseconds).
    static let launchSteps = 200
    /// Alternating rounds of tiny10k and flat1m at one thread.
    static let rounds = 3
    /// Threads of a Dispatch launch at most: the caller and 63 helpers (OPTIM_TEAM_MAX_HELPERS).
    static let dispatchMaxThreads = 64

    /// The optimizers the model covers: those whose step is one launch of an element-wise rule.
    static func modelled(_ entries: [OptimizerEntry]) -> [OptimizerEntry] {
        var seen = Set<String>()
        return entries.filter {
            ($0.engine == .builtInRule || $0.engine == .swiftRule) && $0.sparseGradients != .required
                && seen.insert($0.name).inserted
        }
    }

    /// one100's launch sent to `threads` threads: no serial threshold, and chunks small enough
    /// that each thread can claim one (100 elements in `threads` chunks or more).
    static func launchExecution(threads: Int, backend: Backend) throws -> Execution {
        try Execution(threads: threads, backend: backend, serialThreshold: 0, chunkElements: max(1, 100 / threads))
    }

    /// One predicted step.
    struct Prediction {
        let optimizer, workload, backend: String
        let cores, threads, tensors, params: Int
        let bytes: Double
        /// Milliseconds of the three terms.
        let launch, perTensor, traffic: Double
        /// The model's step at one core, for the speedup.
        let oneCore: Double
        var milliseconds: Double { launch + perTensor + traffic }
        var speedup: Double { oneCore / milliseconds }
    }

    static func cells(_ p: Prediction) -> [String] {
        [p.optimizer, p.workload, p.backend, "\(p.cores)", BenchRow.milliseconds(p.milliseconds), "-",
         String(format: "%.1f", Double(p.params) / (p.milliseconds / 1000) / 1e6),
         String(format: "%.1f", p.bytes / (p.milliseconds * 1e6)), "-", String(format: "%.2f", p.speedup),
         String(format: "%.2f", p.speedup / Double(p.cores))]
    }

    /// The terms fitted for one optimizer on one backend.
    struct Fit {
        let entry: OptimizerEntry
        let backend: Backend
        /// one100's median step, ms, at 1 to the cores' threads.
        let launch: [Double]
        /// tiny10k's and flat1m's median steps at one thread, ms.
        let tiny10k, flat1m: Double
        /// ms per tensor beyond its elements.
        let tensorCost: Double
        /// The one-thread probe over each workload's elements, GB/s.
        let oneThreadBandwidth: [String: Double]
        /// The best probe over each workload's elements at 1 to the cores' threads: this
        /// machine's cap, for checking the model's other terms.
        let measuredBandwidth: [String: Double]

        init?(entry: OptimizerEntry, backend: Backend, calibration: [BenchRow], measured: [BenchRow],
              workloads: [Workload]) {
            let name = entry.name.lowercased()
            let mine = calibration.filter { $0.optimizer == name }
            // One thread runs on the calling thread whatever the backend: measured once.
            let launch = mine.filter { $0.workload == Workload.one100.rawValue && ($0.threads == 1 || $0.backend == backend.rawValue) }
                .sorted { $0.threads < $1.threads }.map(\.msMedian)
            func oneThread(_ workload: Workload) -> Double? {
                let rounds = mine.filter { $0.workload == workload.rawValue && $0.threads == 1 }.map(\.msMedian).sorted()
                return rounds.isEmpty ? nil : median(sorted: rounds)
            }
            guard launch.count == Execution.coreCount, let tiny = oneThread(.tiny10k), let flat = oneThread(.flat1m) else { return nil }
            self.entry = entry
            self.backend = backend
            self.launch = launch
            tiny10k = tiny
            flat1m = flat
            let extraTensors = Double(Workload.tiny10k.shapes.count - Workload.flat1m.shapes.count)
            tensorCost = max(0, (tiny - flat) / extraTensors)
            var bandwidth: [String: Double] = [:]
            var best: [String: Double] = [:]
            for workload in workloads {
                let rows = measured.filter {
                    $0.optimizer == name && $0.workload == workload.rawValue && $0.backend == backend.rawValue
                }
                if let probe = rows.first(where: { $0.threads == 1 })?.probeGBPerSecond, probe > 0 {
                    bandwidth[workload.rawValue] = probe
                }
                if let probe = rows.filter({ $0.threads <= Execution.coreCount }).compactMap(\.probeGBPerSecond).max() {
                    best[workload.rawValue] = probe
                }
            }
            oneThreadBandwidth = bandwidth
            measuredBandwidth = best
        }

        /// What L grows by per thread past the cores measured: the mean increment from one
        /// thread to the cores (none when only one thread was measured).
        var launchPerThread: Double {
            launch.count > 1 ? max(0, (launch[launch.count - 1] - launch[0]) / Double(launch.count - 1)) : 0
        }

        func launchCost(threads: Int) -> Double {
            threads <= launch.count ? launch[threads - 1]
                : launch[launch.count - 1] + launchPerThread * Double(threads - launch.count)
        }

        /// The threads a launch of `workload` uses on `cores` cores.
        func threadsUsed(_ workload: Workload, cores: Int) -> Int {
            let elements = workload.shapes.reduce(0) { $0 + $1.reduce(1, *) }
            guard cores > 1, elements >= Execution.defaultSerialThreshold(for: backend) else { return 1 }
            let chunks = (elements + Execution.defaultChunkElements - 1) / Execution.defaultChunkElements
            return min(cores, chunks, backend == .dispatch ? StepModel.dispatchMaxThreads : Int.max)
        }

        /// The model's step of `workload` on `cores` cores under a bandwidth cap of `cap` GB/s.
        func row(_ workload: Workload, cores: Int, cap: Double) -> Prediction? {
            guard let oneThread = oneThreadBandwidth[workload.rawValue] else { return nil }
            let shapes = workload.shapes
            let elements = shapes.reduce(0) { $0 + $1.reduce(1, *) }
            let bytes = Double(entry.arrayAccesses * DType.float32.byteWidth * elements)
            func terms(_ cores: Int) -> (launch: Double, perTensor: Double, traffic: Double) {
                let threads = Double(threadsUsed(workload, cores: cores))
                // The cap never lowers what one thread measured (a working set that one core
                // runs from its caches).
                let bandwidth = min(threads * oneThread, max(cap, oneThread))
                return (launchCost(threads: Int(threads)), Double(shapes.count - 1) * tensorCost / threads,
                        bytes / (bandwidth * 1e6))
            }
            let one = terms(1), these = terms(cores)
            return Prediction(optimizer: entry.name.lowercased(), workload: workload.rawValue, backend: backend.rawValue,
                              cores: cores, threads: threadsUsed(workload, cores: cores), tensors: shapes.count,
                              params: elements, bytes: bytes, launch: these.launch, perTensor: these.perTensor,
                              traffic: these.traffic, oneCore: one.launch + one.perTensor + one.traffic)
        }
    }

    static let formula = "t(c) = L(c) + (T − 1) × τ / c + B / min(c × β₁, cap)"

    static func caption(bandwidthCap: Double) -> [String] {
        ["Solid, dotted: measured (threads past the cores share them). Dashed: the model, not a measurement,",
         "\(formula), fitted in this run; cap = \(String(format: "%g", bandwidthCap)) GB/s assumed (scaling.md, Model)."]
    }

    /// The report's model section and the lines printed after the table.
    static func report(fits: [Fit], measured: [BenchRow], modelRows: [Prediction], workloads: [Workload], cores: [Int],
                       bandwidthCap: Double, skipped: [OptimizerEntry], seconds: Double) -> (markdown: String, summary: String) {
        let coreCount = Execution.coreCount
        func microseconds(_ ms: Double) -> String { String(format: "%.2f", ms * 1000) }
        var lines: [String] = []
        lines.append("""
            ## Model: the step at more cores

            Dashed in the time plots and marked `model` in scaling.csv: what the figures measured \
            in this run predict at \(cores.map(String.init).joined(separator: ", ")) cores. A model, \
            not a measurement; its own measurements took \(String(format: "%.1f", seconds)) s.

                \(formula)

            - **T**: the workload's tensors; **B**: its bytes of minimum traffic (elements × 4 bytes × \
            the arrays the rule reads and writes per element: Adam 7, SGD with momentum 5).
            - **L(c)**: one step of one100 (one tensor of 100 elements) with its launch sent to c \
            threads (no serial threshold, at least one chunk per thread), measured at 1 to \(coreCount) \
            threads; past \(coreCount), L grows by the mean increment per thread measured from 1 to \
            \(coreCount) (linear: a Dispatch launch offers its plan to each helper in turn).
            - **τ**: what a tensor costs beyond its elements: (tiny10k − flat1m) / 9,999 at one thread \
            (the same million elements in 10,000 tensors and in one), divided among the threads.
            - **β₁**: the bandwidth probe over the workload's elements at one thread (per-core \
            bandwidth).
            - **cap = \(String(format: "%g", bandwidthCap)) GB/s**: the whole machine's memory bandwidth, \
            which does not grow with cores. **An assumption, not a measurement** \
            (`--model-bandwidth-cap`; the default is about what one socket of 8 DDR4-3200 channels, \
            204.8 GB/s peak, sustains). It never lowers β₁ (a working set one core runs from its \
            caches), and caches are not modelled past that.
            - **c**: the threads a launch uses on c cores: 1 below the backend's serial threshold \
            (Dispatch 600,000 elements, OpenMP 48,000), at most one per chunk of 65,536 elements \
            (tiny10k: 16), at most 64 on Dispatch.

            The terms, fitted in this run:

            | optimizer | backend | L(1…\(coreCount)), µs | L per thread past \(coreCount), µs | tiny10k, 1 thread, ms | flat1m, 1 thread, ms | τ, ns per tensor |
            |---|---|---|---:|---:|---:|---:|
            """)
        for fit in fits {
            lines.append("| \(fit.entry.name.lowercased()) | \(fit.backend) | \(fit.launch.map(microseconds).joined(separator: ", ")) | "
                         + "\(microseconds(fit.launchPerThread)) | \(BenchRow.milliseconds(fit.tiny10k)) | "
                         + "\(BenchRow.milliseconds(fit.flat1m)) | \(String(format: "%.1f", fit.tensorCost * 1e6)) |")
        }
        // Against the measured points up to the cores: with the assumed cap, as projected, and
        // with this machine's (its best probe), which checks the other terms.
        var checks: [(row: BenchRow, model: Double, error: Double, machineCap: Double, machineModel: Double, machineError: Double)] = []
        for fit in fits {
            for row in measured where row.optimizer == fit.entry.name.lowercased() && row.backend == fit.backend.rawValue
                && row.threads <= coreCount {
                guard let workload = Workload(rawValue: row.workload),
                      let predicted = fit.row(workload, cores: row.threads, cap: bandwidthCap),
                      let machineCap = fit.measuredBandwidth[workload.rawValue],
                      let onThisMachine = fit.row(workload, cores: row.threads, cap: machineCap) else { continue }
                checks.append((row, predicted.milliseconds, 100 * (predicted.milliseconds / row.msMedian - 1),
                               machineCap, onThisMachine.milliseconds, 100 * (onThisMachine.milliseconds / row.msMedian - 1)))
            }
        }
        func summary(_ threads: Int?, _ error: (_ check: (row: BenchRow, model: Double, error: Double, machineCap: Double,
                                                            machineModel: Double, machineError: Double)) -> Double) -> String? {
            let mine = checks.filter { threads == nil || $0.row.threads == threads }
            guard let worst = mine.max(by: { abs(error($0)) < abs(error($1)) }) else { return nil }
            let sorted = mine.map { abs(error($0)) }.sorted()
            return String(format: "median |error| %.0f%%, largest %+.0f%%", median(sorted: sorted), error(worst))
                + " (\(worst.row.optimizer) \(worst.row.workload) \(worst.row.backend) at \(worst.row.threads))"
        }
        func checkLines(_ error: (_ check: (row: BenchRow, model: Double, error: Double, machineCap: Double,
                                             machineModel: Double, machineError: Double)) -> Double) -> [String] {
            var lines = (1...coreCount).compactMap { threads in
                summary(threads, error).map { "\(threads) thread\(threads == 1 ? "" : "s"): \($0)" }
            }
            if let all = summary(nil, error) { lines.append("all \(checks.count) points: \(all)") }
            return lines
        }
        let projected = checkLines { $0.error }, machine = checkLines { $0.machineError }
        let cap = String(format: "%g", bandwidthCap)
        lines.append("""

            Against the measured points at 1 to \(coreCount) threads (error = model / measured − 1; \
            medians of the measured steps), with the assumed cap of \(cap) GB/s, as the dashed \
            lines are drawn:

            \(projected.map { "- " + $0 }.joined(separator: "\n"))

            and with this machine's cap instead, the best probe over the workload's elements at 1 to \
            \(coreCount) threads (a measurement: it checks the other terms):

            \(machine.map { "- " + $0 }.joined(separator: "\n"))

            | optimizer | workload | backend | threads | measured, ms | model, ms | error | this machine's cap, GB/s | model with it, ms | error |
            |---|---|---|---:|---:|---:|---:|---:|---:|---:|
            """)
        for check in checks {
            lines.append("| \(check.row.optimizer) | \(check.row.workload) | \(check.row.backend) | \(check.row.threads) | "
                         + "\(BenchRow.milliseconds(check.row.msMedian)) | \(BenchRow.milliseconds(check.model)) | "
                         + String(format: "%+.0f%% | %.1f | ", check.error, check.machineCap)
                         + "\(BenchRow.milliseconds(check.machineModel)) | " + String(format: "%+.0f%%", check.machineError) + " |")
        }
        lines.append("""

            The model's step, ms (threads a launch uses, where fewer than the cores; speedup over its \
            one-core step at \(cores.last ?? 1) cores):

            | optimizer | workload | backend | β₁, GB/s | \(cores.map { "\($0)" }.joined(separator: " | ")) | speedup |
            |---|---|---|---:|\(String(repeating: "---:|", count: cores.count + 1))
            """)
        var modelTable: [String] = []
        for fit in fits {
            for workload in workloads {
                let mine = modelRows.filter {
                    $0.optimizer == fit.entry.name.lowercased() && $0.backend == fit.backend.rawValue && $0.workload == workload.rawValue
                }
                guard let last = mine.last, let beta = fit.oneThreadBandwidth[workload.rawValue] else { continue }
                let times = mine.map { BenchRow.milliseconds($0.milliseconds) + ($0.threads < $0.cores ? " (\($0.threads))" : "") }
                modelTable.append("| \(fit.entry.name.lowercased()) | \(workload) | \(fit.backend) | \(String(format: "%.1f", beta)) | "
                                  + times.joined(separator: " | ") + " | " + String(format: "%.2f", last.speedup) + " |")
            }
        }
        lines += modelTable
        if !skipped.isEmpty {
            lines.append("\nNot modelled (their step is not one launch of an element-wise rule): "
                         + skipped.map { $0.name.lowercased() }.joined(separator: ", ") + ".")
        }
        let printed = (["# model: \(formula), fitted in \(String(format: "%.1f", seconds)) s of its own measurements; against the measured points",
                        "# with the assumed cap of \(cap) GB/s:"] + projected.map { "#   " + $0 }
                       + ["# with this machine's cap (its best probe at 1 to \(coreCount) threads):"] + machine.map { "#   " + $0 })
            .joined(separator: "\n")
        return (lines.joined(separator: "\n"), printed)
    }
}
