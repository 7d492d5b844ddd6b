import Reference

// MARK: - L2 normalisation of pixel feature vectors

/// Rows per parallel iteration of the row-wise kernels (fixed by the code, not the worker count).
let rowsPerItem = 64

/// Sum of squares of `count` values (two 8-lane accumulators, fixed combination order).
@inline(__always)
func sumOfSquares(_ p: UnsafePointer<Float>, count: Int) -> Float {
  var a0 = Vec8(), a1 = Vec8()
  var i = 0
  while i + 16 <= count {
    let v0 = load8(p + i), v1 = load8(p + i + 8)
    a0.addProduct(v0, v0)
    a1.addProduct(v1, v1)
    i += 16
  }
  if i + 8 <= count {
    let v = load8(p + i)
    a0.addProduct(v, v)
    i += 8
  }
  if i < count {
    let v = loadPartial(p + i, lanes: count - i)
    a1.addProduct(v, v)
  }
  return laneSum(a0 + a1)
}

/// Dot product of `count` values (two 8-lane accumulators, fixed combination order).
@inline(__always)
func dotProduct(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, count: Int) -> Float {
  var a0 = Vec8(), a1 = Vec8()
  var i = 0
  while i + 16 <= count {
    a0.addProduct(load8(p + i), load8(q + i))
    a1.addProduct(load8(p + i + 8), load8(q + i + 8))
    i += 16
  }
  if i + 8 <= count {
    a0.addProduct(load8(p + i), load8(q + i))
    i += 8
  }
  if i < count {
    a1.addProduct(loadPartial(p + i, lanes: count - i), loadPartial(q + i, lanes: count - i))
  }
  return laneSum(a0 + a1)
}

/// Optimized twin of `Reference.l2NormalizeForward`: `out[m, :] = in[m, :] / max(||in[m, :]||, eps)`.
/// input: (M, d, 1, 1). Differs only in precision and summation order. Parallel over fixed row groups.
public func l2NormalizeForward(input: Tensor<Float>, workers: Int) -> Tensor<Float> {
  checkWorkers(workers)
  let s = input.shape
  precondition(s.h == 1 && s.w == 1, "l2NormalizeForward: input \(s), expected (M, d, 1, 1)")
  let d = s.c
  let data = makeArray(s.count) { out in
    input.data.withUnsafeBufferPointer { buffer in
      // Disjoint writes: row group k writes rows [64k, 64k + 64) only.
      nonisolated(unsafe) let x = buffer.baseAddress!
      nonisolated(unsafe) let y = out
      parallelFor((s.n + rowsPerItem - 1) / rowsPerItem, workers: workers) { k in
        for m in (k * rowsPerItem)..<min(s.n, (k + 1) * rowsPerItem) {
          let row = x + m * d
          let norm = max(sumOfSquares(row, count: d).squareRoot(), Float(L2NormalizeConstants.epsilon))
          let scale = Vec8(repeating: 1 / norm)
          mapPlane(row, y + m * d, count: d) { $0 * scale }
        }
      }
    }
  }
  return Tensor(shape: s, data: data)
}

/// Optimized twin of `Reference.l2NormalizeBackward`: `gradIn = (gradOut - y · <y, gradOut>) / r`,
/// or `gradOut / eps` below eps. Differs only in precision and summation order.
public func l2NormalizeBackward(input: Tensor<Float>, gradOutput: Tensor<Float>, workers: Int) -> Tensor<Float> {
  checkWorkers(workers)
  let s = input.shape
  gradOutput.checkShape(s, "l2NormalizeBackward gradOutput")
  precondition(s.h == 1 && s.w == 1, "l2NormalizeBackward: input \(s), expected (M, d, 1, 1)")
  let d = s.c
  let data = makeArray(s.count) { out in
    input.data.withUnsafeBufferPointer { xBuffer in
      gradOutput.data.withUnsafeBufferPointer { gBuffer in
        // Disjoint writes: row group k writes rows [64k, 64k + 64) only.
        nonisolated(unsafe) let x = xBuffer.baseAddress!, g = gBuffer.baseAddress!
        nonisolated(unsafe) let dx = out
        parallelFor((s.n + rowsPerItem - 1) / rowsPerItem, workers: workers) { k in
          for m in (k * rowsPerItem)..<min(s.n, (k + 1) * rowsPerItem) {
            let row = x + m * d, grad = g + m * d
            let norm = sumOfSquares(row, count: d).squareRoot()
            if norm <= Float(L2NormalizeConstants.epsilon) {
              let scale = Vec8(repeating: 1 / Float(L2NormalizeConstants.epsilon))
              mapPlane(grad, dx + m * d, count: d) { $0 * scale }
              continue
            }
            let inverse = 1 / norm
            // <y, g> with y = x / r.
            let projection = Vec8(repeating: dotProduct(row, grad, count: d) * inverse)
            let scale = Vec8(repeating: inverse)
            mapPlanes(row, grad, dx + m * d, count: d) { xv, gv in (gv - xv * scale * projection) * scale }
          }
        }
      }
    }
  }
  return Tensor(shape: s, data: data)
}
