import Reference

// MARK: - Global average pooling

/// Optimized twin of `Reference.globalAveragePoolForward`: the mean of each (n, c) plane,
/// (N, C, H, W) -> (N, C, 1, 1).
///
/// Each plane is summed by `planeSum` (8 Float lanes within blocks of 256 values, blocks added in
/// Double) and divided in Double, then rounded once to Float. Parallel over fixed groups of 64
/// planes. Differs from the reference only in precision and summation order; bitwise
/// deterministic for any `workers`.
public func globalAveragePoolForward(input: Tensor<Float>, workers: Int) -> Tensor<Float> {
  checkWorkers(workers)
  let s = input.shape
  precondition(s.h * s.w > 0, "globalAveragePoolForward: input \(s) has no pixels")
  let plane = s.h * s.w, planes = s.n * s.c
  let data = makeArray(planes) { out in
    input.data.withUnsafeBufferPointer { buffer in
      // Disjoint writes: group k writes out[64k ..< 64k + 64] only.
      nonisolated(unsafe) let x = buffer.baseAddress!
      nonisolated(unsafe) let y = out
      parallelFor((planes + rowsPerItem - 1) / rowsPerItem, workers: workers) { k in
        for p in (k * rowsPerItem)..<min(planes, (k + 1) * rowsPerItem) {
          y[p] = Float(planeSum(x + p * plane, count: plane) / Double(plane))
        }
      }
    }
  }
  return Tensor(shape: Shape(s.n, s.c, 1, 1), data: data)
}

/// Optimized twin of `Reference.globalAveragePoolBackward`: `gradIn[n, c, y, x] = gradOut[n, c] / HW`,
/// the quotient computed in Double and rounded once (so it is the reference's value rounded to
/// Float). gradOutput: (N, C, 1, 1); returns (N, C, height, width). Parallel over planes, each
/// plane written by one iteration; bitwise deterministic for any `workers`.
public func globalAveragePoolBackward(gradOutput: Tensor<Float>, height: Int, width: Int, workers: Int) -> Tensor<Float> {
  checkWorkers(workers)
  let s = gradOutput.shape
  precondition(s.h == 1 && s.w == 1, "globalAveragePoolBackward: gradOutput \(s), expected (N, C, 1, 1)")
  precondition(height > 0 && width > 0, "globalAveragePoolBackward: input size \(height) x \(width) has no pixels")
  let plane = height * width, planes = s.n * s.c
  // Planes per iteration: about `pointwiseChunk` values, at least one plane.
  let group = max(1, pointwiseChunk / plane)
  let data = makeArray(planes * plane) { out in
    gradOutput.data.withUnsafeBufferPointer { buffer in
      // Disjoint writes: group k writes the planes [group·k, group·(k + 1)) of out only.
      nonisolated(unsafe) let g = buffer.baseAddress!
      nonisolated(unsafe) let dx = out
      parallelFor((planes + group - 1) / group, workers: workers) { k in
        for p in (k * group)..<min(planes, (k + 1) * group) {
          let share = Float(Double(g[p]) / Double(plane))
          let v = Vec8(repeating: share)
          let target = dx + p * plane
          var i = 0
          while i + 8 <= plane {
            store8(v, target + i)
            i += 8
          }
          while i < plane {
            target[i] = share
            i += 1
          }
        }
      }
    }
  }
  return Tensor(shape: Shape(s.n, s.c, height, width), data: data)
}
