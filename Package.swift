// swift-tools-version: 6.0
import Foundation
import PackageDescription

// MARK: - Build settings

/// The CPU the optimized kernels are compiled for. They need FMA: without it x86-64 has none and
/// `SIMD.addProduct` becomes a libm call per lane (measured ~70x slower). The portable default on
/// x86-64 is `haswell` (AVX2 and FMA, the x86-64-v3 level; swiftc takes LLVM CPU names, not
/// `x86-64-v3`), so a binary runs on any such CPU; on arm64 the compiler's default (FMA is part of
/// the base instruction set). `PIX2REP_TARGET_CPU=native swift build ...` (or another LLVM CPU
/// name) opts in to the build machine's own CPU. `verify` refuses to run on an x86-64 CPU without
/// AVX2 and FMA, with a message, instead of failing on an illegal instruction.
let targetCPU: String? = {
  if let cpu = ProcessInfo.processInfo.environment["PIX2REP_TARGET_CPU"], !cpu.isEmpty { return cpu }
  #if arch(x86_64)
    return "haswell"
  #else
    return nil
  #endif
}()
let hostCPU: [SwiftSetting] = targetCPU.map { [.unsafeFlags(["-target-cpu", $0])] } ?? []

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
    // Every kernel once (inputs, calls on any backend, outputs, tolerance, operation count), run by
    // RegressionTests on small shapes and by `verify profile` at a preset's.
    .target(name: "KernelCatalog", dependencies: ["Reference", "TestSupport"], swiftSettings: crossModule),
    .target(
      name: "Profiling", dependencies: ["Reference", "Optimized", "Experiment", "TestSupport", "KernelCatalog"]),
    .target(name: "TestExpectations", dependencies: ["Dataset", "TestSupport"]),

    // MARK: Command line
    .executableTarget(
      name: "verify", dependencies: ["Reference", "Optimized", "Dataset", "Experiment", "Profiling", "TestSupport"]),

    // MARK: Tests
    .testTarget(name: "GradientTests", dependencies: ["Reference", "TestSupport", "TestExpectations"]),
    .testTarget(name: "EquivarianceTests", dependencies: ["Reference", "Dataset", "TestSupport", "TestExpectations"]),
    .testTarget(
      name: "RegressionTests",
      dependencies: ["Reference", "Optimized", "Experiment", "TestSupport", "KernelCatalog", "Profiling"]),
    .testTarget(name: "ExperimentTests", dependencies: ["Experiment", "Reference", "TestSupport"]),
    .testTarget(
      name: "DataTests", dependencies: ["Dataset", "Reference", "TestSupport", "TestExpectations"]),
    .testTarget(name: "ExchangeTests", dependencies: ["Experiment", "Dataset", "Reference", "TestExpectations"]),
  ]
)
