// swift-tools-version: 6.0
import PackageDescription

// MARK: - Build settings

/// The optimized kernels are compiled for the host CPU: without it x86-64 has no FMA and
/// `SIMD.addProduct` becomes a libm call per lane (measured ~70x slower on this machine).
let hostCPU: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "native"])]

/// The network and training loops are generic over the backend; cross-module optimisation lets the
/// callers specialise them for `OptimizedBackend` instead of running them through generic metadata.
let crossModule: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization"])]

// MARK: - Package

let package = Package(
  name: "Pix2Rep",
  // The deterministic parallel loops use Synchronization's Atomic (macOS 15); Linux has no minimum.
  platforms: [.macOS(.v15)],
  products: [
    .library(name: "Reference", targets: ["Reference"]),
    .library(name: "Optimized", targets: ["Optimized"]),
    .library(name: "Dataset", targets: ["Dataset"]),
    .executable(name: "verify", targets: ["verify"]),
  ],
  targets: [
    // MARK: System libraries
    .systemLibrary(name: "CZlib", path: "Sources/CZlib"),

    // MARK: Libraries
    .target(name: "Reference", swiftSettings: crossModule),
    .target(name: "Optimized", dependencies: ["Reference"], swiftSettings: hostCPU),
    .target(name: "Dataset", dependencies: ["Reference", "CZlib"]),
    .target(name: "Experiment", dependencies: ["Reference", "Optimized", "Dataset"]),
    .target(name: "TestSupport", dependencies: ["Reference"]),
    .target(name: "Profiling", dependencies: ["Reference", "Optimized", "TestSupport"]),
    .target(name: "TestExpectations", dependencies: ["Dataset", "TestSupport"]),

    // MARK: Command line
    .executableTarget(
      name: "verify", dependencies: ["Reference", "Optimized", "Dataset", "Experiment", "Profiling"]),

    // MARK: Tests
    .testTarget(name: "GradientTests", dependencies: ["Reference", "TestSupport", "TestExpectations"]),
    .testTarget(name: "EquivarianceTests", dependencies: ["Reference", "Dataset", "TestSupport", "TestExpectations"]),
    .testTarget(
      name: "RegressionTests",
      dependencies: ["Reference", "Optimized", "Experiment", "TestSupport"]),
    .testTarget(name: "ExperimentTests", dependencies: ["Experiment", "Reference", "TestSupport"]),
    .testTarget(
      name: "DataTests", dependencies: ["Dataset", "Reference", "TestSupport", "TestExpectations"]),
    .testTarget(name: "ExchangeTests", dependencies: ["Experiment", "Dataset", "Reference", "TestExpectations"]),
  ]
)
