import Foundation
import Reference
import TestSupport

// MARK: - Normalisation and pointwise

/// Forward: the output, the saved statistics and the updated running ones; backward: the gradients.
/// Variant 1 draws inputs with mean 50 and standard deviation 0.5, where a one-pass variance
/// without a shift would cancel catastrophically; (2, 16, 64, 64) sums 8192 values per channel,
/// several 256-value blocks per plane.
package struct BatchNormKernel: CatalogKernel {
  package let training: Bool
  package var name: String { training ? "batchNorm (training)" : "batchNorm (evaluation)" }
  package let tolerance = Tolerance.float32Kernel
  package let cases = [
    KernelShape(1, 1, 9, 13), KernelShape(3, 3, 9, 13), KernelShape(1, 7, 5, 8), KernelShape(3, 8, 1, 3),
    KernelShape(1, 9, 4, 17), KernelShape(3, 17, 2, 7), KernelShape(2, 33, 3, 3), KernelShape(3, 9, 16, 16, variant: 1),
    KernelShape(2, 16, 64, 64),
  ]

  package init(training: Bool) { self.training = training }

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let values = s.variant == 1
      ? inputs.normal(s.shape.count, scale: 0.5, offset: 50) : inputs.normal(s.shape.count, scale: 2, offset: 0.5)
    let x = tensor(s.shape, values, for: b)
    let weight = scalars(inputs.uniform(s.c, 0.5, 1.5), for: b)
    let bias = scalars(inputs.normal(s.c), for: b)
    let runningMean = scalars(inputs.normal(s.c), for: b)
    let runningVariance = scalars(inputs.uniform(s.c, 0.5, 2), for: b)
    let dy = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    let training = training
    func forward() -> (Tensor<B.Scalar>, BatchNormSaved<B.Scalar>, [B.Scalar], [B.Scalar]) {
      var mean = runningMean, variance = runningVariance
      let (y, saved) = b.batchNormForward(
        input: x, weight: weight, bias: bias, runningMean: &mean, runningVariance: &variance, training: training)
      return (y, saved, mean, variance)
    }
    // The backward's saved statistics, from a forward of its own (the running ones are copies).
    let saved = forward().1
    return PreparedKernel(
      forward: {
        let (y, saved, mean, variance) = forward()
        return [
          KernelOutput("forward", y), KernelOutput("saved mean", saved.mean),
          KernelOutput("saved inverseStd", saved.inverseStd), KernelOutput("running mean", mean),
          KernelOutput("running variance", variance),
        ]
      },
      backward: {
        let g = b.batchNormBackward(input: x, weight: weight, saved: saved, gradOutput: dy)
        return [
          KernelOutput("gradInput", g.gradInput), KernelOutput("gradWeight", g.gradWeight),
          KernelOutput("gradBias", g.gradBias),
        ]
      })
  }

  /// Per value: forward 5 (centre, scale, shift, and the two moments), backward 8.
  package func flops(_ s: KernelShape, _ pass: KernelPass) -> Double {
    Double(pass == .forward ? 5 : 8) * Double(s.shape.count)
  }
}

/// Variant 1 draws multiples of 0.5: exact zeros, the kink where the gradient is 0.
package struct ReLUKernel: CatalogKernel {
  package let name = "relu"
  /// Selecting values is exact in any precision.
  package let tolerance = Tolerance.exact
  package let cases = [
    KernelShape(1, 1, 9, 13), KernelShape(3, 7, 5, 3), KernelShape(1, 17, 4, 9, variant: 1),
    KernelShape(2, 33, 33, 33, variant: 1),
  ]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let values = s.variant == 1 ? inputs.quantized(s.shape.count) : inputs.normal(s.shape.count)
    let x = tensor(s.shape, values, for: b)
    let dy = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    let y = b.reluForward(input: x)
    return PreparedKernel(
      forward: { [KernelOutput("forward", b.reluForward(input: x))] },
      backward: { [KernelOutput("gradInput", b.reluBackward(output: y, gradOutput: dy))] })
  }

  /// One comparison per value.
  package func flops(_ s: KernelShape, _ pass: KernelPass) -> Double { Double(s.shape.count) }
}

/// (N, C, H, W) -> (N, C, H/2, W/2). Variant 1 draws multiples of 0.5: ties inside windows, where
/// the first maximum must win.
package struct MaxPoolKernel: CatalogKernel {
  package let name = "maxPool2x2"
  /// Routing values is exact in any precision.
  package let tolerance = Tolerance.exact
  package let cases = [
    KernelShape(1, 1, 8, 14), KernelShape(3, 7, 2, 2), KernelShape(1, 9, 10, 6, variant: 1),
    KernelShape(3, 16, 4, 18, variant: 1),
  ]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let values = s.variant == 1 ? inputs.quantized(s.shape.count) : inputs.normal(s.shape.count)
    let x = tensor(s.shape, values, for: b)
    let outputShape = Shape(s.n, s.c, s.h / 2, s.w / 2)
    let dy = tensor(outputShape, inputs.normal(outputShape.count), for: b)
    return PreparedKernel(
      forward: { [KernelOutput("forward", b.maxPool2x2Forward(input: x))] },
      backward: { [KernelOutput("gradInput", b.maxPool2x2Backward(input: x, gradOutput: dy))] })
  }

  /// One comparison per input value.
  package func flops(_ s: KernelShape, _ pass: KernelPass) -> Double { Double(s.shape.count) }
}

/// Forward: the concatenation of (N, C, H, W) and (N, `other`, H, W); backward: splitting it again,
/// where the two were joined (variant 0, the U-Net's backward) or one channel before (variant 1:
/// the split need not follow the seam).
package struct ConcatKernel: CatalogKernel {
  package let name = "concat/split"
  /// Moving data is exact.
  package let tolerance = Tolerance.exact
  package let cases = [
    KernelShape(1, 1, 9, 13, other: 3, variant: 1), KernelShape(3, 7, 2, 5, other: 9, variant: 1),
    KernelShape(3, 16, 4, 4, other: 17, variant: 1),
  ]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let first = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    let secondShape = Shape(s.n, s.other, s.h, s.w)
    let second = tensor(secondShape, inputs.normal(secondShape.count), for: b)
    let joined = b.concatChannels(first, second)
    let split = s.c - s.variant
    return PreparedKernel(
      forward: { [KernelOutput("concat", b.concatChannels(first, second))] },
      backward: {
        let (p, q) = b.splitChannels(joined, firstChannels: split)
        return [KernelOutput("split first", p), KernelOutput("split second", q)]
      })
  }
}

// MARK: - Spatial warp

/// Variant 0: random rotations up to 90 degrees, zooms from 0.33 to 1.1 and shifts; variant 1: the
/// identity and exact flips (stencils landing on pixel centres); variant 2: the protocol's own
/// draws (`sampleSpatialTransform`, the pretraining distribution).
package struct WarpKernel: CatalogKernel {
  package let name = "warp"
  package let tolerance = Tolerance.float32Kernel
  package let cases = [
    KernelShape(1, 1, 9, 13), KernelShape(3, 3, 9, 13), KernelShape(3, 8, 16, 16, variant: 1),
    KernelShape(1, 17, 7, 1), KernelShape(2, 33, 5, 6), KernelShape(4, 5, 16, 16, variant: 2),
  ]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let x = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    let affines = Self.affines(s, &inputs)
    let dy = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    return PreparedKernel(
      forward: { [KernelOutput("forward", b.warpForward(input: x, affines: affines))] },
      backward: { [KernelOutput("gradInput", b.warpBackward(gradOutput: dy, affines: affines))] })
  }

  /// Per value: the four bilinear taps, a multiply-add each.
  package func flops(_ s: KernelShape, _ pass: KernelPass) -> Double { 8 * Double(s.shape.count) }

  /// One transform per image of `s`, drawn as the variant says (the type's doc).
  static func affines(_ s: KernelShape, _ inputs: inout SeededInputs) -> [Affine2D] {
    var affines = [Affine2D]()
    for i in 0..<s.n {
      switch s.variant {
      case 1:
        let flips = [Affine2D.identity, Affine2D(a: -1, b: 0, tx: 0, c: 0, d: 1, ty: 0), Affine2D(a: 1, b: 0, tx: 0, c: 0, d: -1, ty: 0)]
        affines.append(flips[i % 3])
      case 2:
        affines.append(sampleSpatialTransform(rng: &inputs.rng).affine)
      default:
        let angle = inputs.uniform(1, -Double.pi / 2, Double.pi / 2)[0]
        let zoom = inputs.uniform(1, 0.33, 1.1)[0]
        let shift = inputs.uniform(2, -0.5, 0.5)
        affines.append(
          Affine2D(
            a: zoom * cos(angle), b: -zoom * sin(angle), tx: shift[0], c: zoom * sin(angle), d: zoom * cos(angle),
            ty: shift[1]))
      }
    }
    return affines
  }
}

/// The warp at sampled positions (`warpGather`, the pretraining loss's warp of g's hidden
/// activations) and its adjoint: `other` positions drawn uniformly over the batch's pixels, with
/// repeats; the transforms' variants as `WarpKernel`'s.
package struct WarpGatherKernel: CatalogKernel {
  package let name = "warpGather"
  package let tolerance = Tolerance.float32Kernel
  package let cases = [
    KernelShape(1, 1, 9, 13, other: 20), KernelShape(3, 3, 9, 13, other: 200),
    KernelShape(2, 33, 5, 6, other: 7), KernelShape(4, 5, 16, 16, other: 300, variant: 2),
  ]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let x = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    let affines = WarpKernel.affines(s, &inputs)
    let positions = (0..<s.other).map { _ in inputs.rng.int(below: s.shape.count / s.c) }
    let dy = tensor(Shape(s.other, s.c, 1, 1), inputs.normal(s.other * s.c), for: b)
    return PreparedKernel(
      forward: { [KernelOutput("rows", b.warpGather(input: x, affines: affines, positions: positions))] },
      backward: {
        [KernelOutput(
          "gradInput", b.warpGatherBackward(gradRows: dy, affines: affines, positions: positions, shape: s.shape))]
      })
  }

  /// Per sampled value: the four bilinear taps, a multiply-add each.
  package func flops(_ s: KernelShape, _ pass: KernelPass) -> Double { 8 * Double(s.other * s.c) }
}
