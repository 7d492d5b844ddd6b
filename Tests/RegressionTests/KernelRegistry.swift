import Foundation
import Reference
import TestSupport

// MARK: - The registry: adding a kernel is one line

let kernelRegistry: [RegisteredKernel] = ([
  Conv3x3Kernel(), Conv1x1Kernel(), ConvTranspose2x2Kernel(),
  BatchNormKernel(training: true), BatchNormKernel(training: false),
  ReLUKernel(), MaxPoolKernel(), ConcatKernel(), WarpKernel(), L2NormalizeKernel(),
  InfoNCEKernel(), BarlowTwinsKernel(), SoftDiceKernel(), AdamKernel(), IntensityAugmentationKernel(),
  GlobalAveragePoolKernel(), ConsistencyLossKernel(), EMAKernel(), SimCLRObjectiveKernel(),
] as [any RegressionKernel]).map { RegisteredKernel(kernel: $0) }

// MARK: - Convolutions

/// Channel counts 1, 3, 7, 8, 9, 15, 16, 17, 33 on both sides; widths below, at and past the 8-lane
/// segments (3, 5, 8, 9, 13, 16, 24); heights not a multiple of the 3-row bands; batch 1 and 3; and
/// one case tall and wide enough (130 wide: 30-row weight-gradient chunks) for several chunks and
/// sub-bands.
let convolutionCases = [
  KernelShape(1, 1, 9, 13, other: 16), KernelShape(3, 3, 9, 13, other: 7), KernelShape(1, 7, 5, 8, other: 9),
  KernelShape(3, 8, 6, 16, other: 8), KernelShape(1, 9, 4, 17, other: 17), KernelShape(1, 15, 3, 9, other: 33),
  KernelShape(3, 16, 7, 3, other: 15), KernelShape(1, 17, 2, 24, other: 3), KernelShape(1, 33, 5, 5, other: 1),
  KernelShape(2, 3, 33, 130, other: 4),
]

struct Conv3x3Kernel: RegressionKernel {
  let name = "conv3x3"
  let tolerance = Tolerance.float32Kernel
  let cases = convolutionCases

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    let x = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    let w = scalars(inputs.normal(s.other * s.c * 9, scale: 1 / (9 * Double(s.c)).squareRoot()), for: b)
    let y = b.conv3x3Forward(input: x, weight: w, outputChannels: s.other)
    let dy = tensor(y.shape, inputs.normal(y.shape.count), for: b)
    let grads = b.conv3x3Backward(input: x, weight: w, gradOutput: dy)
    return [output("forward", y), output("gradInput", grads.gradInput), output("gradWeight", grads.gradWeight)]
  }
}

struct Conv1x1Kernel: RegressionKernel {
  let name = "conv1x1"
  let tolerance = Tolerance.float32Kernel
  /// Pixel counts past the 24-column tiles and the 8-lane tails (117, 35, 4225: two 4096-pixel
  /// chunks of the weight gradient). Variant 1 zeroes the output gradient except at a few pixels
  /// (the sparse-column path), variant 2 zeroes it entirely.
  let cases = Array(convolutionCases.dropLast()) + [
    KernelShape(1, 3, 65, 65, other: 5), KernelShape(3, 9, 9, 13, other: 17, variant: 1),
    KernelShape(2, 33, 16, 16, other: 8, variant: 1), KernelShape(1, 7, 3, 5, other: 3, variant: 2),
  ]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    let x = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    let w = scalars(inputs.normal(s.other * s.c, scale: 1 / Double(s.c).squareRoot()), for: b)
    let bias = scalars(inputs.normal(s.other), for: b)
    let y = b.conv1x1Forward(input: x, weight: w, bias: bias)
    var gradient = inputs.normal(y.shape.count)
    if s.variant > 0 {
      let plane = s.h * s.w
      let kept = s.variant == 1 ? Set((0..<(s.n * plane / 10 + 1)).map { _ in inputs.int(below: s.n * plane) }) : []
      for n in 0..<s.n {
        for o in 0..<s.other {
          for p in 0..<plane where !kept.contains(n * plane + p) { gradient[(n * s.other + o) * plane + p] = 0 }
        }
      }
    }
    let dy = tensor(y.shape, gradient, for: b)
    let g = b.conv1x1Backward(input: x, weight: w, gradOutput: dy)
    return [
      output("forward", y), output("gradInput", g.gradInput), output("gradWeight", g.gradWeight),
      output("gradBias", g.gradBias),
    ]
  }
}

struct ConvTranspose2x2Kernel: RegressionKernel {
  let name = "convTranspose2x2"
  let tolerance = Tolerance.float32Kernel
  let cases = Array(convolutionCases.dropLast()) + [KernelShape(1, 4, 33, 40, other: 3)]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    let x = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    let w = scalars(inputs.normal(s.c * s.other * 4, scale: 1 / Double(s.c).squareRoot()), for: b)
    let bias = scalars(inputs.normal(s.other), for: b)
    let y = b.convTranspose2x2Forward(input: x, weight: w, bias: bias)
    let dy = tensor(y.shape, inputs.normal(y.shape.count), for: b)
    let g = b.convTranspose2x2Backward(input: x, weight: w, gradOutput: dy)
    return [
      output("forward", y), output("gradInput", g.gradInput), output("gradWeight", g.gradWeight),
      output("gradBias", g.gradBias),
    ]
  }
}

// MARK: - Normalisation and pointwise

/// Variant 1 draws inputs with mean 50 and standard deviation 0.5, where a one-pass variance
/// without a shift would cancel catastrophically; (2, 16, 64, 64) sums 8192 values per channel,
/// several 256-value blocks per plane.
struct BatchNormKernel: RegressionKernel {
  let training: Bool
  var name: String { training ? "batchNorm (training)" : "batchNorm (evaluation)" }
  let tolerance = Tolerance.float32Kernel
  let cases = [
    KernelShape(1, 1, 9, 13), KernelShape(3, 3, 9, 13), KernelShape(1, 7, 5, 8), KernelShape(3, 8, 1, 3),
    KernelShape(1, 9, 4, 17), KernelShape(3, 17, 2, 7), KernelShape(2, 33, 3, 3), KernelShape(3, 9, 16, 16, variant: 1),
    KernelShape(2, 16, 64, 64),
  ]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    let values = s.variant == 1
      ? inputs.normal(s.shape.count, scale: 0.5, offset: 50) : inputs.normal(s.shape.count, scale: 2, offset: 0.5)
    let x = tensor(s.shape, values, for: b)
    let weight = scalars(inputs.uniform(s.c, 0.5, 1.5), for: b)
    let bias = scalars(inputs.normal(s.c), for: b)
    var runningMean = scalars(inputs.normal(s.c), for: b)
    var runningVariance = scalars(inputs.uniform(s.c, 0.5, 2), for: b)
    let (y, saved) = b.batchNormForward(
      input: x, weight: weight, bias: bias, runningMean: &runningMean, runningVariance: &runningVariance,
      training: training)
    let dy = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    let g = b.batchNormBackward(input: x, weight: weight, saved: saved, gradOutput: dy)
    return [
      output("forward", y), output("saved mean", saved.mean), output("saved inverseStd", saved.inverseStd),
      output("running mean", runningMean), output("running variance", runningVariance),
      output("gradInput", g.gradInput), output("gradWeight", g.gradWeight), output("gradBias", g.gradBias),
    ]
  }
}

/// Variant 1 draws multiples of 0.5: exact zeros, the kink where the gradient is 0.
struct ReLUKernel: RegressionKernel {
  let name = "relu"
  /// Selecting values is exact in any precision.
  let tolerance = Tolerance.exact
  let cases = [
    KernelShape(1, 1, 9, 13), KernelShape(3, 7, 5, 3), KernelShape(1, 17, 4, 9, variant: 1),
    KernelShape(2, 33, 33, 33, variant: 1),
  ]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    let values = s.variant == 1 ? inputs.quantized(s.shape.count) : inputs.normal(s.shape.count)
    let x = tensor(s.shape, values, for: b)
    let y = b.reluForward(input: x)
    let dy = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    return [output("forward", y), output("gradInput", b.reluBackward(output: y, gradOutput: dy))]
  }
}

/// Variant 1 draws multiples of 0.5: ties inside windows, where the first maximum must win.
struct MaxPoolKernel: RegressionKernel {
  let name = "maxPool2x2"
  /// Routing values is exact in any precision.
  let tolerance = Tolerance.exact
  let cases = [
    KernelShape(1, 1, 8, 14), KernelShape(3, 7, 2, 2), KernelShape(1, 9, 10, 6, variant: 1),
    KernelShape(3, 16, 4, 18, variant: 1),
  ]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    let values = s.variant == 1 ? inputs.quantized(s.shape.count) : inputs.normal(s.shape.count)
    let x = tensor(s.shape, values, for: b)
    let y = b.maxPool2x2Forward(input: x)
    let dy = tensor(y.shape, inputs.normal(y.shape.count), for: b)
    return [output("forward", y), output("gradInput", b.maxPool2x2Backward(input: x, gradOutput: dy))]
  }
}

/// `other` is the second tensor's channel count.
struct ConcatKernel: RegressionKernel {
  let name = "concat/split"
  /// Moving data is exact.
  let tolerance = Tolerance.exact
  let cases = [KernelShape(1, 1, 9, 13, other: 3), KernelShape(3, 7, 2, 5, other: 9), KernelShape(3, 16, 4, 4, other: 17)]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    let first = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    let secondShape = Shape(s.n, s.other, s.h, s.w)
    let second = tensor(secondShape, inputs.normal(secondShape.count), for: b)
    let joined = b.concatChannels(first, second)
    let (a, c) = b.splitChannels(joined, firstChannels: s.c - 1)
    return [output("concat", joined), output("split first", a), output("split second", c)]
  }
}

// MARK: - Spatial warp

/// Variant 0: random rotations, zooms and flips (the pretraining distribution); variant 1: the
/// identity and exact flips (stencils landing on pixel centres).
struct WarpKernel: RegressionKernel {
  let name = "warp"
  let tolerance = Tolerance.float32Kernel
  let cases = [
    KernelShape(1, 1, 9, 13), KernelShape(3, 3, 9, 13), KernelShape(3, 8, 16, 16, variant: 1),
    KernelShape(1, 17, 7, 1), KernelShape(2, 33, 5, 6),
  ]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    let x = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    var affines = [Affine2D]()
    for i in 0..<s.n {
      if s.variant == 1 {
        let flips = [Affine2D.identity, Affine2D(a: -1, b: 0, tx: 0, c: 0, d: 1, ty: 0), Affine2D(a: 1, b: 0, tx: 0, c: 0, d: -1, ty: 0)]
        affines.append(flips[i % 3])
      } else {
        let angle = inputs.uniform(1, -Double.pi / 2, Double.pi / 2)[0]
        let zoom = inputs.uniform(1, 0.33, 1.1)[0]
        let shift = inputs.uniform(2, -0.5, 0.5)
        affines.append(
          Affine2D(
            a: zoom * cos(angle), b: -zoom * sin(angle), tx: shift[0], c: zoom * sin(angle), d: zoom * cos(angle),
            ty: shift[1]))
      }
    }
    let y = b.warpForward(input: x, affines: affines)
    let dy = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    return [output("forward", y), output("gradInput", b.warpBackward(gradOutput: dy, affines: affines))]
  }
}

// MARK: - Losses

/// Rows (M, d) = (n, c); variant 1 zeroes row 0 (the eps branch).
struct L2NormalizeKernel: RegressionKernel {
  let name = "l2Normalize"
  let tolerance = Tolerance.float32Kernel
  let cases = [
    KernelShape(1, 1, 1, 1), KernelShape(3, 3, 1, 1), KernelShape(7, 7, 1, 1, variant: 1), KernelShape(9, 8, 1, 1),
    KernelShape(65, 9, 1, 1), KernelShape(15, 15, 1, 1), KernelShape(17, 16, 1, 1, variant: 1),
    KernelShape(33, 17, 1, 1), KernelShape(130, 33, 1, 1), KernelShape(5, 256, 1, 1),
  ]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    var values = inputs.normal(s.shape.count)
    if s.variant == 1 { for c in 0..<s.c { values[c] = 0 } }
    let x = tensor(s.shape, values, for: b)
    let dy = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    return [
      output("forward", b.l2NormalizeForward(input: x)),
      output("gradInput", b.l2NormalizeBackward(input: x, gradOutput: dy)),
    ]
  }
}

/// L2-normalised rows (rounded to Float after normalising); `n` pairs of dimension `c`.
func normalizedRows(_ inputs: inout SeededInputs, rows: Int, columns: Int) -> [Double] {
  var values = [Double]()
  for _ in 0..<rows {
    let row = (0..<columns).map { _ in inputs.rng.normal() }
    let norm = max(row.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
    values += row.map { Double(Float($0 / norm)) }
  }
  return values
}

struct InfoNCEKernel: RegressionKernel {
  let name = "infoNCE"
  let tolerance = Tolerance.float32Kernel
  let cases = [
    KernelShape(1, 3, 1, 1), KernelShape(3, 8, 1, 1), KernelShape(7, 17, 1, 1), KernelShape(33, 9, 1, 1),
    KernelShape(65, 16, 1, 1),
  ]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    let z = tensor(s.shape, normalizedRows(&inputs, rows: s.n, columns: s.c), for: b)
    let zPrime = tensor(s.shape, normalizedRows(&inputs, rows: s.n, columns: s.c), for: b)
    let r = b.infoNCE(z: z, zPrime: zPrime, temperature: InfoNCEConstants.temperature)
    return [output("loss", [r.loss]), output("gradZ", r.gradZ), output("gradZPrime", r.gradZPrime)]
  }
}

struct BarlowTwinsKernel: RegressionKernel {
  let name = "barlowTwins"
  let tolerance = Tolerance.float32Kernel
  let cases = [
    KernelShape(2, 1, 1, 1), KernelShape(3, 3, 1, 1), KernelShape(9, 7, 1, 1), KernelShape(17, 8, 1, 1),
    KernelShape(33, 17, 1, 1), KernelShape(600, 9, 1, 1),
  ]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    let base = inputs.normal(s.shape.count)
    let noise = inputs.normal(s.shape.count, scale: 0.5)
    let z = tensor(s.shape, base, for: b)
    let zPrime = tensor(s.shape, zip(base, noise).map { Double(Float($0 + $1)) }, for: b)
    let r = b.barlowTwins(z: z, zPrime: zPrime, lambda: BarlowTwinsConstants.lambda)
    return [output("loss", [r.loss]), output("gradZ", r.gradZ), output("gradZPrime", r.gradZPrime)]
  }
}

/// Logits (N, K, H, W) with K = c classes and random labels.
struct SoftDiceKernel: RegressionKernel {
  let name = "softDice"
  let tolerance = Tolerance.float32Kernel
  let cases = [KernelShape(1, 4, 9, 13), KernelShape(3, 4, 5, 8), KernelShape(3, 1, 4, 4), KernelShape(2, 7, 3, 17)]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    let logits = tensor(s.shape, inputs.normal(s.shape.count, scale: 2), for: b)
    let labels = (0..<(s.n * s.h * s.w)).map { _ in UInt8(inputs.int(below: s.c)) }
    let r = b.softDiceLoss(logits: logits, labels: labels)
    return [output("loss", [r.loss]), output("gradLogits", r.gradLogits)]
  }
}

// MARK: - Optimiser

/// A flat buffer of n·c·h·w entries; the range leaves `h` entries untouched at each end; `other`
/// is the step.
struct AdamKernel: RegressionKernel {
  let name = "adam"
  let tolerance = Tolerance.float32Kernel
  let cases = [KernelShape(1, 1, 0, 9, other: 1), KernelShape(3, 7, 2, 13, other: 7), KernelShape(1, 33, 5, 17, other: 2)]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    let count = s.n * s.c * s.w + 2 * s.h
    var values = scalars(inputs.normal(count), for: b)
    let gradients = scalars(inputs.normal(count, scale: 0.1), for: b)
    var first = scalars(inputs.normal(count, scale: 0.01), for: b)
    var second = scalars(inputs.uniform(count, 0, 0.01), for: b)
    b.adamUpdate(
      values: &values, gradients: gradients, firstMoment: &first, secondMoment: &second,
      range: s.h..<(count - s.h), learningRate: 1e-3, hyper: AdamHyperparameters(), step: s.other)
    return [output("values", values), output("first moment", first), output("second moment", second)]
  }
}
