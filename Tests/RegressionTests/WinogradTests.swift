import KernelCatalog
import Optimized
import Reference
import Testing
import TestSupport

// The 3x3 convolution by each algorithm on every shape, whatever `Conv3x3Algorithm.choice` picks:
// Winograd F(2x2, 3x3), F(4x4, 3x3) (forward only: the evaluation-mode network's) and the direct
// kernel as kernels of the harness (KernelHarness.swift), checked against the reference and across
// worker counts over the convolution sweep and edge cases, and, in release builds, Winograd at the
// cpu preset's layer shapes.

// MARK: - The kernels

/// The 3x3 convolution with its forward, input gradient and weight gradient forced to one
/// algorithm on the optimized backend (the reference backend runs its only one, through the
/// catalogue's `Conv3x3Kernel`, which draws the same inputs). Cases: the convolution sweep, plus
/// 1x1, 2x2 and odd planes (tiles cut by the border), 16 and 32 wide (runs of 8 tiles per tile
/// row: the vector loads and stores), 8 wide (runs of 4; 2x8 at batch 3 ends on half a group),
/// and batches whose panels of 24 tiles straddle images. For F(4x4, 3x3): 8x32 (runs of 8 tiles),
/// 16x16 (runs of 4), 12x12 and 8x8 (tiles gathered), heights that are not multiples of 4 (cut
/// tiles, extra zero rows below).
struct Conv3x3AlgorithmKernel: CatalogKernel {
  let algorithm: Conv3x3Algorithm
  /// The weight gradient's algorithm; nil: `Conv3x3Algorithm.weightGradientChoice` at the shape.
  var weightAlgorithm: Conv3x3Algorithm? = nil
  var name: String {
    switch algorithm {
    case .winograd: "conv3x3 (Winograd)"
    case .winograd4x4: "conv3x3 (Winograd F(4x4), forward)"
    case .direct: "conv3x3 (direct)"
    }
  }
  let tolerance = Tolerance.float32Kernel
  let cases = convolutionCases + [
    KernelShape(2, 5, 1, 1, other: 3), KernelShape(3, 4, 2, 2, other: 9), KernelShape(1, 9, 1, 7, other: 4),
    KernelShape(2, 7, 11, 3, other: 5), KernelShape(3, 17, 16, 16, other: 12), KernelShape(1, 8, 10, 32, other: 7),
    KernelShape(3, 6, 8, 8, other: 10), KernelShape(2, 12, 15, 16, other: 9), KernelShape(3, 5, 2, 8, other: 6),
    KernelShape(2, 5, 8, 32, other: 6), KernelShape(1, 4, 12, 12, other: 5), KernelShape(2, 7, 6, 13, other: 4),
  ]

  func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    guard let optimized = b as? OptimizedBackend else {
      // The same draws; F(4x4, 3x3) is forward-only, so its reference is too.
      let reference = Conv3x3Kernel().prepare(b, s, &inputs)
      return algorithm == .winograd4x4 ? PreparedKernel(forward: reference.forward) : reference
    }
    let x = tensor(s.shape, inputs.normal(s.shape.count), for: optimized)
    let w = scalars(inputs.normal(s.other * s.c * 9, scale: 1 / (9 * Double(s.c)).squareRoot()), for: optimized)
    let dy = tensor(Shape(s.n, s.other, s.h, s.w), inputs.normal(s.n * s.other * s.h * s.w), for: optimized)
    let (algorithm, weightAlgorithm) = (
      algorithm,
      weightAlgorithm ?? .weightGradientChoice(height: s.h, width: s.w, inputChannels: s.c, outputChannels: s.other)
    )
    let forward = {
      let y = Optimized.conv3x3Forward(
        input: x, weight: w, outputChannels: s.other, workers: optimized.workers, algorithm: algorithm)
      return [KernelOutput("forward", y)]
    }
    if algorithm == .winograd4x4 { return PreparedKernel(forward: forward) }
    return PreparedKernel(
      forward: forward,
      backward: {
        let grads = Optimized.conv3x3Backward(
          input: x, weight: w, gradOutput: dy, workers: optimized.workers, algorithm: algorithm,
          weightAlgorithm: weightAlgorithm)
        return [KernelOutput("gradInput", grads.gradInput), KernelOutput("gradWeight", grads.gradWeight)]
      })
  }
}

// MARK: - The cpu preset's layers

/// Every 3x3 convolution of the cpu preset's U-Net: (input channels, output channels, side).
let cpuPresetConv3x3Layers: [(cin: Int, cout: Int, size: Int)] = {
  let config = ModelConfig.cpu
  let w = config.widths, depth = config.depth, size = config.imageSize
  var layers = [(config.inputChannels, w[0], size), (w[0], w[0], size)]
  for k in 1...depth { layers += [(w[k - 1], w[k], size >> k), (w[k], w[k], size >> k)] }
  for k in 1...depth {
    let out = k == depth ? config.features : w[depth - k]
    layers += [(w[depth - k + 1], out, size >> (depth - k)), (out, out, size >> (depth - k))]
  }
  return layers
}()

let conv3x3Algorithms: [RegisteredKernel] = [
  RegisteredKernel(kernel: Conv3x3AlgorithmKernel(algorithm: .winograd, weightAlgorithm: .winograd)),
  RegisteredKernel(kernel: Conv3x3AlgorithmKernel(algorithm: .winograd4x4)),
  RegisteredKernel(kernel: Conv3x3AlgorithmKernel(algorithm: .direct, weightAlgorithm: .direct)),
]

@Suite struct WinogradTests {
  /// False in a debug build, where the reference takes minutes at the preset's shapes.
  #if DEBUG
    static let optimizedBuild = false
  #else
    static let optimizedBuild = true
  #endif

  @Test("each 3x3 algorithm matches the reference over the shape sweep", arguments: conv3x3Algorithms)
  func matchesReference(_ entry: RegisteredKernel) {
    expectMatchesReference(entry.kernel)
  }

  @Test("each 3x3 algorithm gives bit-identical results for 1, 2, 3 and 16 workers", arguments: conv3x3Algorithms)
  func deterministicAcrossWorkers(_ entry: RegisteredKernel) {
    expectDeterministic(entry.kernel, workers: [2, 3, 16])
  }

  /// Both Winograd algorithms at each cpu-preset layer shape against the reference: batch 16 (the
  /// fine-tuning batch, the longest weight-gradient reductions) on planes up to 16x16, batch 2 on
  /// larger planes (panels straddle the two images). About 20 seconds of reference time each in
  /// release.
  ///
  /// - F(2x2, 3x3): the forward and input gradient, and the weight gradient by the algorithm the
  ///   rule picks (Winograd's too up to 16x16).
  /// - F(4x4, 3x3): the forward (the evaluation-mode network's only). It rounds worse than F(2x2,
  ///   3x3) (its transforms' coefficients reach 8 and 16/15 instead of 1 and 1/2), but well inside
  ///   the same "float32 kernel" limit: its worst error over these layers was 13.4% of the limit
  ///   (128->64 on 16x16, batch 16; 4.5-11% on the others), F(2x2, 3x3)'s on the same inputs 1.8%
  ///   (0.7-1.6%), so that tolerance stands for it too.
  @Test(
    "Winograd F(2x2) and F(4x4) match the reference at every cpu-preset 3x3 layer shape",
    .enabled(if: Self.optimizedBuild, "the reference takes minutes at these shapes in a debug build"),
    arguments: cpuPresetConv3x3Layers.indices, [Conv3x3Algorithm.winograd, .winograd4x4])
  func presetLayers(_ index: Int, _ algorithm: Conv3x3Algorithm) {
    expectPresetLayerMatches(index, kernel: Conv3x3AlgorithmKernel(algorithm: algorithm))
  }

  func expectPresetLayerMatches(_ index: Int, kernel: Conv3x3AlgorithmKernel) {
    let (cin, cout, size) = cpuPresetConv3x3Layers[index]
    let shape = KernelShape(size <= 16 ? BatchSizes.downstream : 2, cin, size, size, other: cout)
    var referenceInputs = SeededInputs(seed: 0x5749_4E4F + UInt64(index))
    var optimizedInputs = referenceInputs
    let expected = kernel.run(ReferenceBackend(), shape, &referenceInputs)
    let actual = kernel.run(OptimizedBackend(workers: 2), shape, &optimizedInputs)
    let context = "\(kernel.name) \(cin)->\(cout) at \(size)x\(size) batch \(shape.n)"
    if let problem = compareOutputs(context, actual: actual, expected: expected, tolerance: kernel.tolerance) {
      Issue.record(Comment(rawValue: problem))
    }
  }

  /// The same bits for 1, 2, 3 and 16 workers at each cpu-preset layer shape (batch 8, as the
  /// pretraining step runs them); in a debug build at a quarter of the side.
  @Test("Winograd F(2x2) and F(4x4) give bit-identical results for 1, 2, 3 and 16 workers at the cpu-preset shapes",
    arguments: cpuPresetConv3x3Layers.indices, [Conv3x3Algorithm.winograd, .winograd4x4])
  func presetDeterminism(_ index: Int, _ algorithm: Conv3x3Algorithm) {
    let (cin, cout, size) = cpuPresetConv3x3Layers[index]
    let kernel = Conv3x3AlgorithmKernel(
      algorithm: algorithm, weightAlgorithm: algorithm == .winograd ? .winograd : nil)
    let side = Self.optimizedBuild ? size : max(2, size / 4)
    let shape = KernelShape(Self.optimizedBuild ? 8 : 2, cin, side, side, other: cout)
    func run(_ workers: Int) -> [LabeledOutput] {
      var inputs = SeededInputs(seed: 0x4445_5445 + UInt64(index))
      return kernel.run(OptimizedBackend(workers: workers), shape, &inputs)
    }
    let single = run(1)
    for workers in [2, 3, 16] {
      if let problem = compareBits("\(kernel.name) \(shape) workers \(workers) vs 1", actual: run(workers), expected: single) {
        Issue.record(Comment(rawValue: problem))
      }
    }
  }
}
