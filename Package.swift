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
        .executable(name: "gan", targets: ["GanCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // OpenBLAS through pkg-config on Linux; Accelerate is used directly on Apple platforms.
        .systemLibrary(
            name: "CBLAS",
            path: "Sources/CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Tiny C shim for what Swift cannot say: MXCSR flush-to-zero and CPU feature checks.
        .target(name: "CSupport", path: "Sources/CSupport"),
        .target(
            name: "Engine",
            dependencies: [
                .target(name: "CBLAS", condition: .when(platforms: [.linux])),
                "CSupport",
            ],
            path: "Sources/Engine",
            swiftSettings: numericSettings
        ),
        .executableTarget(
            name: "GanCLI",
            dependencies: [
                "Engine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/GanCLI",
            swiftSettings: numericSettings
        ),
        .testTarget(
            name: "EngineTests",
            dependencies: ["Engine"],
            path: "Tests/EngineTests"
        ),
    ],
    swiftLanguageModes: [.v5]
)
