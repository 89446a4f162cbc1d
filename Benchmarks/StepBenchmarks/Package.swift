// swift-tools-version: 6.1
import Foundation
import PackageDescription

// The step benchmarks, a package of their own so that packages depending on Optim never build
// them or their benchmark harness. `swift package --disable-sandbox benchmark thresholds check`
// here runs them (see Docs/benchmarks.md).
// A package reached by path goes by the name of its folder, which is whatever the clone of the
// repository is called, not by the name its manifest declares.
let optimPackage = URL(fileURLWithPath: Context.packageDirectory)
    .deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "StepBenchmarks",
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "OptimizerSteps",
            dependencies: [
                .product(name: "Optim", package: optimPackage),
                .product(name: "OptimWorkloads", package: optimPackage),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/OptimizerSteps",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
