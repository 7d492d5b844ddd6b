import Reference

// MARK: - 2x2 max-pool, stride 2

/// The offset 2i + j of the winner of a 2x2 window (row-major visiting order; a later entry wins
/// only when strictly larger, or when it is the first NaN), as the reference's `maxPoolWinner`.
@inline(__always)
func maxPoolWinner(_ a: Float, _ b: Float, _ c: Float, _ d: Float) -> (index: Int, value: Float) {
  var best = 0
  var value = a
  if b > value || (b.isNaN && !value.isNaN) { best = 1; value = b }
  if c > value || (c.isNaN && !value.isNaN) { best = 2; value = c }
  if d > value || (d.isNaN && !value.isNaN) { best = 3; value = d }
  return (best, value)
}

/// Optimized twin of `Reference.maxPool2x2Forward`. input: (N, C, H, W), H and W even.
/// Returns (N, C, H/2, W/2). Same tie and NaN rule, so bit-identical to the reference.
/// Parallel over planes.
public func maxPool2x2Forward(input: Tensor<Float>, workers: Int) -> Tensor<Float> {
  checkWorkers(workers)
  let s = input.shape
  precondition(s.h % 2 == 0 && s.w % 2 == 0, "maxPool2x2Forward: input \(s), expected even H and W")
  let outShape = Shape(s.n, s.c, s.h / 2, s.w / 2)
  let data = makeArray(outShape.count) { out in
    input.data.withUnsafeBufferPointer { buffer in
      // Disjoint writes: plane p of the output belongs to iteration p.
      nonisolated(unsafe) let x = buffer.baseAddress!
      nonisolated(unsafe) let y = out
      parallelFor(s.n * s.c, workers: workers) { p in
        let src = x + p * s.h * s.w
        let dst = y + p * outShape.h * outShape.w
        for oy in 0..<outShape.h {
          let r0 = src + 2 * oy * s.w, r1 = r0 + s.w
          for ox in 0..<outShape.w {
            dst[oy * outShape.w + ox] = maxPoolWinner(r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]).value
          }
        }
      }
    }
  }
  return Tensor(shape: outShape, data: data)
}

/// Optimized twin of `Reference.maxPool2x2Backward`: each output gradient goes to its window's
/// winner, recomputed from `input`. Bit-identical to the reference. Parallel over planes.
public func maxPool2x2Backward(input: Tensor<Float>, gradOutput: Tensor<Float>, workers: Int) -> Tensor<Float> {
  checkWorkers(workers)
  let s = input.shape
  precondition(s.h % 2 == 0 && s.w % 2 == 0, "maxPool2x2Backward: input \(s), expected even H and W")
  let oh = s.h / 2, ow = s.w / 2
  gradOutput.checkShape(Shape(s.n, s.c, oh, ow), "maxPool2x2Backward gradOutput")
  let data = makeArray(s.count) { out in
    input.data.withUnsafeBufferPointer { xBuffer in
      gradOutput.data.withUnsafeBufferPointer { gBuffer in
        // Disjoint writes: plane p of the input gradient belongs to iteration p.
        nonisolated(unsafe) let x = xBuffer.baseAddress!, g = gBuffer.baseAddress!
        nonisolated(unsafe) let dx = out
        parallelFor(s.n * s.c, workers: workers) { p in
          let src = x + p * s.h * s.w
          let dst = dx + p * s.h * s.w
          let grad = g + p * oh * ow
          for oy in 0..<oh {
            let r0 = src + 2 * oy * s.w, r1 = r0 + s.w
            let d0 = dst + 2 * oy * s.w, d1 = d0 + s.w
            for ox in 0..<ow {
              let winner = maxPoolWinner(r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]).index
              let v = grad[oy * ow + ox]
              d0[2 * ox] = winner == 0 ? v : 0
              d0[2 * ox + 1] = winner == 1 ? v : 0
              d1[2 * ox] = winner == 2 ? v : 0
              d1[2 * ox + 1] = winner == 3 ? v : 0
            }
          }
        }
      }
    }
  }
  return Tensor(shape: s, data: data)
}
