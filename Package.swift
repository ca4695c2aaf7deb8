// swift-tools-version:6.0
import PackageDescription

// Targets, bottom up: C wrappers → tensor core → formats / engine / imaging / hub → the `tlhub` CLI.
// Only the CLI depends on ArgumentParser; the libraries are usable from any Swift package.
let package = Package(
    name: "tlhub",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "tlhub", targets: ["tlhub"]),
        .library(name: "TLTensor", targets: ["TLTensor"]),
        .library(name: "TLFormats", targets: ["TLFormats"]),
        .library(name: "TLEngine", targets: ["TLEngine"]),
        .library(name: "TLImaging", targets: ["TLImaging"]),
        .library(name: "TLHubClient", targets: ["TLHubClient"]),
        .library(name: "TLPipeline", targets: ["TLPipeline"]),
        .library(name: "TLTraining", targets: ["TLTraining"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
    ],
    targets: [
        // MARK: - C libraries from Debian
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CCairo", pkgConfig: "cairo", providers: [.apt(["libcairo2-dev"])]),
        .systemLibrary(name: "CZlibInflate", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // MARK: - Libraries
        .target(name: "TLTensor"),
        .target(
            name: "TLFormats",
            dependencies: [
                "CHDF5", "CZlibInflate", "TLTensor",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ]
        ),
        // The engine's hot loops (packed GEMM, depthwise rows, the thread pool): C with AVX2/FMA
        // intrinsics picked at run time. No unsafeFlags anywhere, so the libraries can be a
        // versioned dependency; release builds compile this at SwiftPM's -O2.
        .target(name: "CKernels"),
        .target(
            name: "TLEngine",
            dependencies: ["TLTensor", "TLFormats", "CKernels"]
        ),
        // JPEG/PNG decoders in C: libjpeg's and libpng's error callbacks must longjmp, which Swift cannot host.
        .target(
            name: "CImageCodecs",
            dependencies: ["CJPEG", "CPNG"],
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]
        ),
        .target(
            name: "TLImaging",
            dependencies: ["CImageCodecs", "TLTensor"]
        ),
        .target(
            name: "TLHubClient",
            dependencies: [
                "CCurl", "CZlibInflate", "TLTensor",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),

        // Backward passes, losses, optimizers, heads and the training loop (Keras' exact rules).
        .target(
            name: "TLTraining",
            dependencies: ["TLTensor", "TLEngine", "CKernels"]
        ),

        // What the CLI does, as a library: resolve a model reference, collect inputs, run in
        // batches, decode predictions, write outputs.
        .target(
            name: "TLPipeline",
            dependencies: ["TLTensor", "TLFormats", "TLEngine", "TLImaging", "TLHubClient", "TLTraining", "CCairo",
                           .product(name: "Crypto", package: "swift-crypto")]
        ),

        // MARK: - Command-line tool
        .executableTarget(
            name: "tlhub",
            dependencies: [
                "TLTensor", "TLFormats", "TLEngine", "TLImaging", "TLHubClient", "TLPipeline", "TLTraining",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: - Tests
        .testTarget(name: "TLTensorTests", dependencies: ["TLTensor"]),
        .testTarget(name: "TLFormatsTests", dependencies: ["TLFormats", "TLTensor"]),
        // OpenBLAS is the reference the engine's own GEMM kernel is tested against.
        .testTarget(name: "TLEngineTests", dependencies: ["TLEngine", "TLFormats", "TLTensor", "CKernels", "COpenBLAS"]),
        .testTarget(name: "TLImagingTests", dependencies: ["TLImaging", "TLTensor"]),
        .testTarget(name: "CLITests", dependencies: ["TLTensor", "TLImaging"]),
        .testTarget(name: "TLTrainingTests", dependencies: ["TLTraining", "TLEngine", "TLTensor"]),
        .testTarget(name: "TLPipelineTests", dependencies: ["TLPipeline", "TLHubClient", "TLImaging", "TLTensor"]),
        .testTarget(name: "TLHubClientTests", dependencies: ["TLHubClient", "TLEngine", "TLFormats", "TLTensor"]),
    ]
)
