import Reference

// MARK: - 2x2 transposed convolution, stride 2 (the upsampling of every Up block)

/// Optimized twin of `Reference.convTranspose2x2Forward`.
/// input: (N, Cin, H, W), W fastest; weight: (Cin, Cout, 2, 2); bias: (Cout). Returns (N, Cout, 2H, 2W):
/// `out[n, o, 2y + i, 2x + j] = bias[o] + sum over c of in[n, c, y, x] · weight[c, o, i, j]`.
///
/// One GEMM with 4·Cout rows (o, i, j) over the input pixels, then a depth-to-space copy that adds
/// the bias. Differs from the reference only in precision and in adding the bias last. Bitwise
/// deterministic for any `workers`.
public func convTranspose2x2Forward(input: Tensor<Float>, weight: [Float], bias: [Float], workers: Int)
  -> Tensor<Float>
{
  checkWorkers(workers)
  let s = input.shape
  let cout = bias.count
  precondition(cout > 0 && weight.count == s.c * cout * 4, "convTranspose2x2Forward: weight \(weight.count)")
  let rows = 4 * cout
  let pixels = s.h * s.w
  // A[(o, i, j)][c] = weight[c, (o, i, j)]: the weight read as (Cin x 4Cout), transposed.
  let packed = weight.withUnsafeBufferPointer { packRows($0.baseAddress!, rows: rows, depth: s.c, transposed: true) }
  let outShape = Shape(s.n, cout, 2 * s.h, 2 * s.w)
  let data = withScratch(s.n * rows * pixels) { blocks in
    input.data.withUnsafeBufferPointer { x in
      packed.withUnsafeBufferPointer { a in
        gemmPlanes(
          x.baseAddress!, batch: s.n, depth: s.c, pixels: pixels, packed: a.baseAddress!, rows: rows, bias: nil,
          output: blocks, workers: workers)
      }
    }
    return makeArray(outShape.count) { out in
      bias.withUnsafeBufferPointer { b in
        depthToSpace(UnsafePointer(blocks), batch: s.n, channels: cout, height: s.h, width: s.w, bias: b.baseAddress!, output: out, workers: workers)
      }
    }
  }
  return Tensor(shape: outShape, data: data)
}

/// Optimized twin of `Reference.convTranspose2x2Backward`. gradOutput: (N, Cout, 2H, 2W). Returns
/// gradInput (N, Cin, H, W), gradWeight (Cin, Cout, 2, 2) and gradBias (Cout).
///
/// The output gradient is rearranged space-to-depth into (N, 4·Cout, H, W); gradInput is then a GEMM
/// with the weight as (Cin x 4Cout), and gradWeight a fixed-chunk pixel reduction. Differs from the
/// reference only in precision and summation order; bitwise deterministic for any `workers`.
public func convTranspose2x2Backward(input: Tensor<Float>, weight: [Float], gradOutput: Tensor<Float>, workers: Int)
  -> (gradInput: Tensor<Float>, gradWeight: [Float], gradBias: [Float])
{
  checkWorkers(workers)
  let s = input.shape
  let cout = gradOutput.shape.c
  gradOutput.checkShape(Shape(s.n, cout, 2 * s.h, 2 * s.w), "convTranspose2x2Backward gradOutput")
  precondition(weight.count == s.c * cout * 4, "convTranspose2x2Backward: weight \(weight.count)")
  let rows = 4 * cout
  let pixels = s.h * s.w
  let packed = weight.withUnsafeBufferPointer { packRows($0.baseAddress!, rows: s.c, depth: rows, transposed: false) }
  return withScratch(s.n * rows * pixels) { blocks in
    gradOutput.data.withUnsafeBufferPointer {
      spaceToDepth($0.baseAddress!, batch: s.n, channels: cout, height: s.h, width: s.w, output: blocks, workers: workers)
    }
    let g = UnsafePointer(blocks)
    let gradInput = makeArray(s.count) { out in
      packed.withUnsafeBufferPointer { a in
        gemmPlanes(
          g, batch: s.n, depth: rows, pixels: pixels, packed: a.baseAddress!, rows: s.c, bias: nil, output: out,
          workers: workers)
      }
    }
    let gradWeight = makeArray(weight.count) { out in
      input.data.withUnsafeBufferPointer { x in
        gemmReducePixels(x.baseAddress!, rows: s.c, g, depth: rows, batch: s.n, pixels: pixels, output: out, workers: workers)
      }
    }
    let gradBias = makeArray(cout) { out in
      gradOutput.data.withUnsafeBufferPointer {
        sumPlanes($0.baseAddress!, rows: cout, batch: s.n, pixels: 4 * pixels, output: out, workers: workers)
      }
    }
    return (Tensor(shape: s, data: gradInput), gradWeight, gradBias)
  }
}

// MARK: - Rearrangements

/// out[n, o, 2y + i, 2x + j] = blocks[n, (o, i, j), y, x] + bias[o]. Parallel over (n, o) planes.
func depthToSpace(
  _ blocks: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int, bias: UnsafePointer<Float>,
  output: UnsafeMutablePointer<Float>, workers: Int
) {
  let pixels = height * width
  nonisolated(unsafe) let source = blocks
  nonisolated(unsafe) let b = bias
  nonisolated(unsafe) let out = output
  // Disjoint writes: plane (n, o) of the output belongs to iteration n * channels + o.
  parallelFor(batch * channels, workers: workers) { plane in
    let o = plane % channels
    let src = source + plane * 4 * pixels
    let dst = out + plane * 4 * pixels
    let shift = b[o]
    for y in 0..<height {
      for i in 0..<2 {
        let row = dst + (2 * y + i) * 2 * width
        let s0 = src + (2 * i) * pixels + y * width
        let s1 = src + (2 * i + 1) * pixels + y * width
        for x in 0..<width {
          row[2 * x] = s0[x] + shift
          row[2 * x + 1] = s1[x] + shift
        }
      }
    }
  }
}

/// blocks[n, (o, i, j), y, x] = grad[n, o, 2y + i, 2x + j]. Parallel over (n, o) planes.
func spaceToDepth(
  _ grad: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
  output: UnsafeMutablePointer<Float>, workers: Int
) {
  let pixels = height * width
  nonisolated(unsafe) let source = grad
  nonisolated(unsafe) let out = output
  // Disjoint writes: the four planes (n, (o, ·, ·)) belong to iteration n * channels + o.
  parallelFor(batch * channels, workers: workers) { plane in
    let src = source + plane * 4 * pixels
    let dst = out + plane * 4 * pixels
    for y in 0..<height {
      for i in 0..<2 {
        let row = src + (2 * y + i) * 2 * width
        let d0 = dst + (2 * i) * pixels + y * width
        let d1 = dst + (2 * i + 1) * pixels + y * width
        for x in 0..<width {
          d0[x] = row[2 * x]
          d1[x] = row[2 * x + 1]
        }
      }
    }
  }
}
