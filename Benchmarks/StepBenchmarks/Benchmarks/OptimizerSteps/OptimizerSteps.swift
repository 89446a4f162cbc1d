import Benchmark
import Optim
import OptimWorkloads

// One measured iteration is one `step()` on the default execution (every core, Dispatch, the
// best instruction set). The optimizer is built and stepped once before measuring, since the first
// step creates its state; every later step must allocate nothing, which the malloc threshold
// below enforces (`swift package benchmark thresholds check`, see Docs/benchmarks.md).

/// No allocation at all per step: with the static threshold files of 0 mallocs at p90, any
/// deviation fails the check.
var noAllocation: [BenchmarkMetric: BenchmarkThresholds] {
    [.mallocCountTotal: .init(relative: [.p90: 0], absolute: [.p90: 0])]
}

/// Iterations are capped so that the suite stays short enough for CI; a step of resnet50 takes
/// about 10 ms, one of one100 a few microseconds.
func configuration(for workload: Workload) -> Benchmark.Configuration {
    let (iterations, seconds): (Int, Int) = switch workload {
    case .one100: (2_000, 1)
    case .tiny10k, .tiny10kPacked, .flat1m: (100, 1)
    case .resnet50: (30, 2)
    case .gpt2small, .big64m: (10, 3)
    }
    return .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .microseconds, warmupIterations: 2,
                 maxDuration: .seconds(seconds), maxIterations: .count(iterations), thresholds: noAllocation)
}

/// An optimizer over a workload's parameters, each with a gradient, stepped once so that its
/// state exists.
final class SteppedOptimizer: @unchecked Sendable {
    let parameters: [Tensor]
    let optimizer: any Optimizer

    init(_ entry: OptimizerEntry, _ workload: Workload) throws {
        parameters = try workload.makeParameters(steppedBy: entry)
        optimizer = try entry.make(parameters, options: entry.benchmarkOptions)
        if entry.sparseGradients == .required { try Workload.moveGradientsToRowSparse(parameters) }
        try optimizer.step()
    }
}

func stepBenchmark(_ entry: OptimizerEntry, _ workload: Workload) {
    Benchmark("\(entry.name) \(workload)", configuration: configuration(for: workload)) { benchmark, stepped in
        do {
            try stepped.optimizer.step()
        } catch {
            benchmark.error("\(entry.name) on \(workload): \(error)")
        }
    } setup: {
        try SteppedOptimizer(entry, workload)
    }
}

let benchmarks: @Sendable () -> Void = {
    // The catalog decides which optimizers run: every one that steps through the element-wise
    // engine, built in or written in Swift.
    let elementwise = OptimizerCatalog.entries.filter { $0.engine == .builtInRule || $0.engine == .swiftRule }
    for workload in [Workload.one100, .tiny10k, .tiny10kPacked] {
        for entry in elementwise { stepBenchmark(entry, workload) }
    }
    if let adam = OptimizerCatalog.entry(named: "Adam") { stepBenchmark(adam, .resnet50) }
}
