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
/// fixed chunks combined in a fixed order (`gemmReducePixels`, `sumPlanes`). When at most half of
/// the pixels have a nonzero output gradient (the projection head's last layer sees only the
/// sampled positions and their warp stencils, about 3-12% of the pixels), only those pixel columns
/// are gathered and computed: the skipped columns contribute exact zeros, so this changes nothing
/// but the summation grouping. Differs from the reference only in precision and summation order;
/// bitwise deterministic for any `workers`.
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
      // Channel 0 alone already nonzero at more than half the pixels means the dense path, without
      // scanning every channel.
      var firstChannel = 0
      for n in 0..<s.n {
        let plane = g + n * cout * pixels
        for p in 0..<pixels where !(plane[p] == 0) { firstChannel += 1 }
      }
      let columns = 2 * firstChannel > s.n * pixels ? [] : nonzeroColumns(g, batch: s.n, channels: cout, pixels: pixels, workers: workers)
      if 2 * firstChannel <= s.n * pixels && 2 * columns.count <= s.n * pixels {
        return conv1x1BackwardColumns(
          x, g, shape: s, outputChannels: cout, packed: packed, columns: columns, workers: workers)
      }
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

// MARK: - Sparse output gradients

/// The flat positions n · pixels + p (ascending) where some channel of g: (batch, channels,
/// pixels) is nonzero (NaN counts as nonzero). Parallel over images.
func nonzeroColumns(_ g: UnsafePointer<Float>, batch: Int, channels: Int, pixels: Int, workers: Int) -> [Int] {
  var perImage = [[Int]](repeating: [], count: batch)
  perImage.withUnsafeMutableBufferPointer { lists in
    // Disjoint writes: image n writes lists[n] only.
    nonisolated(unsafe) let out = lists.baseAddress!
    nonisolated(unsafe) let gradient = g
    parallelFor(batch, workers: workers) { n in
      var any = [Int32](repeating: 0, count: pixels + 8)
      any.withUnsafeMutableBufferPointer { flags in
        let f = flags.baseAddress!
        let zero = Vec8(), one = SIMD8<Int32>(repeating: 1)
        for c in 0..<channels {
          let plane = gradient + (n * channels + c) * pixels
          var p = 0
          while p + 8 <= pixels {
            let nonzero = .!(load8(plane + p) .== zero)
            let current = UnsafeRawPointer(f + p).loadUnaligned(as: SIMD8<Int32>.self)
            UnsafeMutableRawPointer(f + p).storeBytes(of: current.replacing(with: one, where: nonzero), as: SIMD8<Int32>.self)
            p += 8
          }
          while p < pixels {
            if !(plane[p] == 0) { f[p] = 1 }
            p += 1
          }
        }
        var list = [Int]()
        for p in 0..<pixels where f[p] != 0 { list.append(n * pixels + p) }
        out[n] = list
      }
    }
  }
  return perImage.flatMap { $0 }
}

/// conv1x1Backward on the listed pixel columns only (every other column of gradOutput is zero):
/// the columns of g and x are gathered into (Cout x K) and (Cin x K) matrices, reduced and
/// multiplied there, and gradInput is zero except at the listed columns.
func conv1x1BackwardColumns(
  _ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, shape s: Shape, outputChannels cout: Int, packed: [Float],
  columns: [Int], workers: Int
) -> (gradInput: Tensor<Float>, gradWeight: [Float], gradBias: [Float]) {
  let pixels = s.h * s.w
  let k = columns.count
  let gathered = columns.withUnsafeBufferPointer { c in
    (gatherColumns(g, channels: cout, pixels: pixels, columns: c.baseAddress!, count: k, workers: workers),
     gatherColumns(x, channels: s.c, pixels: pixels, columns: c.baseAddress!, count: k, workers: workers))
  }
  return gathered.0.withUnsafeBufferPointer { gBuffer in
    gathered.1.withUnsafeBufferPointer { xBuffer in
      let gk = gBuffer.baseAddress!, xk = xBuffer.baseAddress!
      let gradWeight = makeArray(cout * s.c) { out in
        gemmReducePixels(gk, rows: cout, xk, depth: s.c, batch: 1, pixels: k, output: out, workers: workers)
      }
      let gradBias = makeArray(cout) { out in
        sumPlanes(gk, rows: cout, batch: 1, pixels: k, output: out, workers: workers)
      }
      let gradColumns = makeArray(s.c * k) { out in
        packed.withUnsafeBufferPointer { a in
          gemmPlanes(gk, batch: 1, depth: cout, pixels: k, packed: a.baseAddress!, rows: s.c, bias: nil, output: out, workers: workers)
        }
      }
      let gradInput = makeArray(s.count) { out in
        gradColumns.withUnsafeBufferPointer { cBuffer in
          columns.withUnsafeBufferPointer { listBuffer in
            // Disjoint writes: plane (n, c) belongs to iteration n * Cin + c.
            nonisolated(unsafe) let dst = out, src = cBuffer.baseAddress!, list = listBuffer.baseAddress!
            // starts[n]: the first listed column of image n (the list is ascending).
            var starts = [Int](repeating: 0, count: s.n + 1)
            var i = 0
            for n in 0...s.n {
              while i < k && list[i] < n * pixels { i += 1 }
              starts[n] = i
            }
            let imageStarts = starts
            parallelFor(s.n * s.c, workers: workers) { plane in
              let n = plane / s.c, c = plane % s.c
              let target = dst + plane * pixels
              target.update(repeating: 0, count: pixels)
              for i in imageStarts[n]..<imageStarts[n + 1] { target[list[i] - n * pixels] = src[c * k + i] }
            }
          }
        }
      }
      return (Tensor(shape: s, data: gradInput), gradWeight, gradBias)
    }
  }
}

/// out[c][i] = t[n_i, c, p_i] for the listed flat columns n_i · pixels + p_i: (channels x count).
/// Parallel over channels.
func gatherColumns(
  _ t: UnsafePointer<Float>, channels: Int, pixels: Int, columns: UnsafePointer<Int>, count: Int, workers: Int
) -> [Float] {
  makeArray(channels * count) { out in
    // Disjoint writes: channel c writes out[c * count ..< (c + 1) * count] only.
    nonisolated(unsafe) let source = t, list = columns, dst = out
    parallelFor(channels, workers: workers) { c in
      for i in 0..<count {
        let column = list[i]
        let n = column / pixels
        dst[c * count + i] = source[(n * channels + c) * pixels + column - n * pixels]
      }
    }
  }
}
