// swift-tools-version: 6.1
import PackageDescription

// The library product (Optim, COptimKernels, COptimLanes) has no package dependency and no unsafe flag,
// so that any package can depend on it by version. The command-line tool and the tests
// bring their own dependencies.
let package = Package(
    name: "swift-optim",
    products: [
        .library(name: "Optim", targets: ["Optim"]),
        // The benchmark workloads (parameter shapes, fixed-seed parameters and gradients), shared by
        // the command-line tool and the step benchmarks in Benchmarks/StepBenchmarks; not part of Optim.
        .library(name: "OptimWorkloads", targets: ["OptimWorkloads"]),
        .executable(name: "optim", targets: ["OptimCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
    ],
    targets: [
        .target(
            name: "COptimKernels",
            cxxSettings: [.define("OPTIM_KERNELS_BUILD")]
        ),
        // Lane operations for rules written in Swift: header-only, reached from inlinable code.
        .target(name: "COptimLanes"),
        .target(
            name: "Optim",
            dependencies: ["COptimKernels", "COptimLanes"]
        ),
        .target(
            name: "OptimWorkloads",
            dependencies: ["Optim"]
        ),
        .target(
            name: "OptimGolden",
            dependencies: ["Optim", "COptimKernels"]
        ),
        .executableTarget(
            name: "OptimCLI",
            dependencies: [
                "Optim",
                "OptimGolden",
                "OptimWorkloads",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The process that the kill-during-save test stops at random moments of a save.
        .executableTarget(
            name: "CheckpointWriter",
            dependencies: ["Optim"],
            path: "Tests/CheckpointWriter"
        ),
        .testTarget(
            name: "OptimTests",
            dependencies: [
                "Optim",
                "OptimGolden",
                "CheckpointWriter",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            // Reference files read by path at test time (see TestSupport.swift).
            exclude: ["Fixtures"]
        ),
    ],
    cxxLanguageStandard: .cxx17
)
