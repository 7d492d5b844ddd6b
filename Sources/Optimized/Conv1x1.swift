import Reference

// MARK: - 1x1 convolution (projection head and segmentation head)

/// Optimized twin of `Reference.conv1x1Forward`: 1x1 convolution with bias.
/// input: (N, Cin, H, W), W fastest; weight: (Cout, Cin); bias: (Cout). Returns (N, Cout, H, W).
///
/// A GEMM per image (`gemmPlanes`). Differs from the reference only in precision (Float) and in
/// adding the bias after the channel sum instead of before it. Bitwise deterministic for any
/// `workers`.
public func conv1x1Forward(input: Tensor<Float>, weight: [Float], bias: [Float], workers: Int) -> Tensor<Float> {
  checkWorkers(workers)
  let s = input.shape
  let cout = bias.count
  precondition(cout > 0 && weight.count == cout * s.c, "conv1x1Forward: weight \(weight.count), bias \(cout), Cin \(s.c)")
  let packed = weight.withUnsafeBufferPointer { packRows($0.baseAddress!, rows: cout, depth: s.c, transposed: false) }
  let outShape = Shape(s.n, cout, s.h, s.w)
  let data = makeArray(outShape.count) { out in
    input.data.withUnsafeBufferPointer { x in
      packed.withUnsafeBufferPointer { a in
        bias.withUnsafeBufferPointer { b in
          gemmPlanes(
            x.baseAddress!, batch: s.n, depth: s.c, pixels: s.h * s.w, packed: a.baseAddress!, rows: cout,
            bias: b.baseAddress!, output: out, workers: workers)
        }
      }
    }
  }
  return Tensor(shape: outShape, data: data)
}

/// Optimized twin of `Reference.conv1x1Backward`. gradOutput: (N, Cout, H, W). Returns gradInput
/// (N, Cin, H, W), gradWeight (Cout, Cin) and gradBias (Cout).
///
/// gradInput is a GEMM with the transposed weight; gradWeight and gradBias reduce over pixels in
/// fixed chunks combined in a fixed order (`gemmReducePixels`, `sumPlanes`). Differs from the
/// reference only in precision and summation order; bitwise deterministic for any `workers`.
public func conv1x1Backward(input: Tensor<Float>, weight: [Float], gradOutput: Tensor<Float>, workers: Int)
  -> (gradInput: Tensor<Float>, gradWeight: [Float], gradBias: [Float])
{
  checkWorkers(workers)
  let s = input.shape
  let cout = gradOutput.shape.c
  gradOutput.checkShape(Shape(s.n, cout, s.h, s.w), "conv1x1Backward gradOutput")
  precondition(weight.count == cout * s.c, "conv1x1Backward: weight \(weight.count), expected \(cout * s.c)")
  let pixels = s.h * s.w
  let packed = weight.withUnsafeBufferPointer { packRows($0.baseAddress!, rows: s.c, depth: cout, transposed: true) }
  return input.data.withUnsafeBufferPointer { xBuffer in
    gradOutput.data.withUnsafeBufferPointer { gBuffer in
      let x = xBuffer.baseAddress!, g = gBuffer.baseAddress!
      let gradInput = makeArray(s.count) { out in
        packed.withUnsafeBufferPointer { a in
          gemmPlanes(
            g, batch: s.n, depth: cout, pixels: pixels, packed: a.baseAddress!, rows: s.c, bias: nil, output: out,
            workers: workers)
        }
      }
      let gradWeight = makeArray(cout * s.c) { out in
        gemmReducePixels(g, rows: cout, x, depth: s.c, batch: s.n, pixels: pixels, output: out, workers: workers)
      }
      let gradBias = makeArray(cout) { out in
        sumPlanes(g, rows: cout, batch: s.n, pixels: pixels, output: out, workers: workers)
      }
      return (Tensor(shape: s, data: gradInput), gradWeight, gradBias)
    }
  }
}
