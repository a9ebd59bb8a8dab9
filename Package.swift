// swift-tools-version:6.0
import PackageDescription

// Numeric targets are built with -Ounchecked in release: bounds checks in kernels cost more
// than they protect, and the kernels work on raw buffer pointers anyway.
let numericSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
]

let package = Package(
    name: "swift-gan",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "NN", targets: ["NN"]),
        .library(name: "Datasets", targets: ["Datasets"]),
        .library(name: "GAN", targets: ["GAN"]),
        .executable(name: "gan", targets: ["GanCLI"]),
        .executable(name: "minimal-gan", targets: ["MinimalGAN"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
    ],
    targets: [
        // OpenBLAS through pkg-config on Linux; Accelerate is used directly on Apple platforms.
        .systemLibrary(
            name: "CBLAS",
            path: "Sources/CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // oneDNN's JIT convolutions (Debian's libdnnl-dev, which ships no pkg-config file)
        // behind a small C cache of primitives.
        .target(
            name: "DNNLConvolution",
            dependencies: ["CSupport"],
            path: "Sources/DNNLConvolution",
            // libgomp directly: to set flush-to-zero on oneDNN's worker threads and their count.
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("dnnl", .when(platforms: [.linux])), .linkedLibrary("gomp", .when(platforms: [.linux]))]
        ),
        // Tiny C shim for what Swift cannot say: MXCSR flush-to-zero and CPU feature checks.
        .target(name: "CSupport", path: "Sources/CSupport"),
        .target(
            name: "Engine",
            dependencies: [
                .target(name: "CBLAS", condition: .when(platforms: [.linux])),
                .target(name: "DNNLConvolution", condition: .when(platforms: [.linux])),
                "CSupport",
            ],
            path: "Sources/Engine",
            swiftSettings: numericSettings
        ),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Layers, losses, optimizers, initializers, checkpoints.
        .target(name: "NN", dependencies: ["Engine"], path: "Sources/NN", swiftSettings: numericSettings),
        // IDX files, MNIST / Fashion-MNIST fetching and verification, batching.
        .target(
            name: "Datasets",
            dependencies: ["Engine", "CSupport", "CZlib", .product(name: "Crypto", package: "swift-crypto")],
            path: "Sources/Datasets",
            swiftSettings: numericSettings
        ),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        // The tutorial models, GAN losses, the training loop and its outputs.
        .target(name: "GAN", dependencies: ["Engine", "NN", "Datasets", "CPNG"], path: "Sources/GAN", swiftSettings: numericSettings),
        // The project's classifiers and sample-quality metrics.
        .target(
            name: "Evaluation",
            dependencies: ["Engine", "NN", "Datasets", .product(name: "Crypto", package: "swift-crypto")],
            path: "Sources/Evaluation",
            resources: [.copy("Classifiers")],
            swiftSettings: numericSettings
        ),
        .executableTarget(
            name: "GanCLI",
            dependencies: [
                "Engine", "NN", "Datasets", "GAN", "Evaluation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/GanCLI",
            swiftSettings: numericSettings
        ),
        // A GAN written with the library's public API, to read and change (README: "Writing your own").
        .executableTarget(
            name: "MinimalGAN",
            dependencies: ["Engine", "NN", "Datasets", "GAN", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/MinimalGAN",
            swiftSettings: numericSettings
        ),
        // Fixture access, tolerance checks and finite differences shared by the test targets.
        .target(name: "TestSupport", dependencies: ["Engine"], path: "Tests/Support"),
        .testTarget(
            name: "EngineTests",
            dependencies: ["Engine", "TestSupport"],
            path: "Tests/EngineTests"
        ),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "Engine"], path: "Tests/DatasetsTests"),
        .testTarget(name: "NNTests", dependencies: ["NN", "Engine", "TestSupport"], path: "Tests/NNTests"),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Engine", "Datasets"], path: "Tests/EvaluationTests"),
        // Runs the built `gan` executable: crash safety under SIGKILL, full disks, bad files and flags.
        .testTarget(name: "CLITests", dependencies: ["GAN", "NN", "Engine", "Datasets", "TestSupport"], path: "Tests/CLITests"),
        .testTarget(name: "GANTests", dependencies: ["GAN", "NN", "Engine", "Datasets", "TestSupport"], path: "Tests/GANTests"),
    ],
    swiftLanguageModes: [.v5]
)
