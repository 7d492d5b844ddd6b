import Reference
import TestSupport

// MARK: - Convolutions

/// Channel counts 1, 3, 7, 8, 9, 15, 16, 17, 33 on both sides; widths below, at and past the 8-lane
/// segments (3, 5, 8, 9, 13, 16, 24); heights not a multiple of the 3-row bands; batch 1 and 3; and
/// one case tall and wide enough (130 wide: 30-row weight-gradient chunks) for several chunks and
/// sub-bands.
package let convolutionCases = [
  KernelShape(1, 1, 9, 13, other: 16), KernelShape(3, 3, 9, 13, other: 7), KernelShape(1, 7, 5, 8, other: 9),
  KernelShape(3, 8, 6, 16, other: 8), KernelShape(1, 9, 4, 17, other: 17), KernelShape(1, 15, 3, 9, other: 33),
  KernelShape(3, 16, 7, 3, other: 15), KernelShape(1, 17, 2, 24, other: 3), KernelShape(1, 33, 5, 5, other: 1),
  KernelShape(2, 3, 33, 130, other: 4),
]

/// (N, C, H, W) -> (N, `other`, H, W), padding 1, no bias. Forward: the output; backward: the input
/// and weight gradients.
package struct Conv3x3Kernel: CatalogKernel {
  package let name = "conv3x3"
  package let tolerance = Tolerance.float32Kernel
  package let cases = convolutionCases

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let x = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    let w = scalars(inputs.normal(s.other * s.c * 9, scale: 1 / (9 * Double(s.c)).squareRoot()), for: b)
    let outputShape = Shape(s.n, s.other, s.h, s.w)
    let dy = tensor(outputShape, inputs.normal(outputShape.count), for: b)
    return PreparedKernel(
      forward: { [KernelOutput("forward", b.conv3x3Forward(input: x, weight: w, outputChannels: s.other))] },
      backward: {
        let g = b.conv3x3Backward(input: x, weight: w, gradOutput: dy)
        return [KernelOutput("gradInput", g.gradInput), KernelOutput("gradWeight", g.gradWeight)]
      })
  }

  /// The forward's multiply-adds; the backward's input and weight gradients are as many each.
  package func flops(_ s: KernelShape, _ pass: KernelPass) -> Double {
    Double(pass == .forward ? 2 : 4) * Double(s.n * s.c * s.other * 9 * s.h * s.w)
  }
}

/// (N, C, H, W) -> (N, `other`, H, W) with a bias. Pixel counts past the 24-column tiles and the
/// 8-lane tails (117, 35, 4225: two 4096-pixel chunks of the weight gradient). Variant 1 zeroes the
/// output gradient except at a few pixels (the sparse-column path), variant 2 zeroes it entirely.
/// (1, C, 1, M) is M pixel rows as one image (the projection head's last layer on the sampled rows).
package struct Conv1x1Kernel: CatalogKernel {
  package let name = "conv1x1"
  package let tolerance = Tolerance.float32Kernel
  package let cases = Array(convolutionCases.dropLast()) + [
    KernelShape(1, 3, 65, 65, other: 5), KernelShape(3, 9, 9, 13, other: 17, variant: 1),
    KernelShape(2, 33, 16, 16, other: 8, variant: 1), KernelShape(1, 7, 3, 5, other: 3, variant: 2),
  ]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let x = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    let w = scalars(inputs.normal(s.other * s.c, scale: 1 / Double(s.c).squareRoot()), for: b)
    let bias = scalars(inputs.normal(s.other), for: b)
    let outputShape = Shape(s.n, s.other, s.h, s.w)
    var gradient = inputs.normal(outputShape.count)
    if s.variant > 0 {
      let plane = s.h * s.w
      let kept = s.variant == 1 ? Set((0..<(s.n * plane / 10 + 1)).map { _ in inputs.int(below: s.n * plane) }) : []
      for n in 0..<s.n {
        for o in 0..<s.other {
          for p in 0..<plane where !kept.contains(n * plane + p) { gradient[(n * s.other + o) * plane + p] = 0 }
        }
      }
    }
    let dy = tensor(outputShape, gradient, for: b)
    return PreparedKernel(
      forward: { [KernelOutput("forward", b.conv1x1Forward(input: x, weight: w, bias: bias))] },
      backward: {
        let g = b.conv1x1Backward(input: x, weight: w, gradOutput: dy)
        return [
          KernelOutput("gradInput", g.gradInput), KernelOutput("gradWeight", g.gradWeight),
          KernelOutput("gradBias", g.gradBias),
        ]
      })
  }

  package func flops(_ s: KernelShape, _ pass: KernelPass) -> Double {
    Double(pass == .forward ? 2 : 4) * Double(s.n * s.c * s.other * s.h * s.w)
  }
}

/// (N, C, H, W) -> (N, `other`, 2H, 2W), kernel 2, stride 2, with a bias.
package struct ConvTranspose2x2Kernel: CatalogKernel {
  package let name = "convTranspose2x2"
  package let tolerance = Tolerance.float32Kernel
  package let cases = Array(convolutionCases.dropLast()) + [KernelShape(1, 4, 33, 40, other: 3)]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let x = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    let w = scalars(inputs.normal(s.c * s.other * 4, scale: 1 / Double(s.c).squareRoot()), for: b)
    let bias = scalars(inputs.normal(s.other), for: b)
    let outputShape = Shape(s.n, s.other, 2 * s.h, 2 * s.w)
    let dy = tensor(outputShape, inputs.normal(outputShape.count), for: b)
    return PreparedKernel(
      forward: { [KernelOutput("forward", b.convTranspose2x2Forward(input: x, weight: w, bias: bias))] },
      backward: {
        let g = b.convTranspose2x2Backward(input: x, weight: w, gradOutput: dy)
        return [
          KernelOutput("gradInput", g.gradInput), KernelOutput("gradWeight", g.gradWeight),
          KernelOutput("gradBias", g.gradBias),
        ]
      })
  }

  package func flops(_ s: KernelShape, _ pass: KernelPass) -> Double {
    Double(pass == .forward ? 2 : 4) * Double(s.n * s.c * s.other * 4 * s.h * s.w)
  }
}
