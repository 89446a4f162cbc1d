// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets for swift-optim. Build them with the sanitizer flags of README.md; the
// seed generator (MakeSeeds) is built without them, in a scratch path of its own.
let package = Package(
    name: "swift-optim-fuzz",
    dependencies: [
        // Named, since a path dependency is otherwise known by the name of its folder.
        .package(name: "swift-optim", path: ".."),
    ],
    targets: [
        // The library's byte hash (to repair a mutated file's hashes) and libFuzzer's driver.
        .target(name: "CFuzz"),
        .target(
            name: "FuzzSupport",
            dependencies: [.product(name: "Optim", package: "swift-optim")]
        ),
        .executableTarget(
            name: "FuzzCheckpointReader",
            dependencies: ["FuzzSupport", "CFuzz", .product(name: "Optim", package: "swift-optim")]
        ),
        .executableTarget(
            name: "FuzzLoadStateDict",
            dependencies: ["FuzzSupport", "CFuzz", .product(name: "Optim", package: "swift-optim")]
        ),
        .executableTarget(
            name: "MakeSeeds",
            dependencies: ["FuzzSupport", .product(name: "Optim", package: "swift-optim")]
        ),
    ]
)
