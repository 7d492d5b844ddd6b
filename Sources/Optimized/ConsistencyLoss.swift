import Reference

// MARK: - Mean Teacher consistency loss

/// Pixels per parallel iteration of the consistency loss (a multiple of 8, fixed by the code).
let consistencyBlock = 1024

/// Optimized twin of `Reference.consistencyLoss`: `loss = (1 / NKHW) · sum (p - q)²` with
/// p = softmax(student), q = softmax(teacher) over the K channels, and dLoss/dstudentLogits
/// `= p · (g - sum over j of p_j g_j)`, g = 2 (p - q) / NKHW. studentLogits, teacherLogits:
/// (N, K, H, W). Returns the loss and the gradient, (N, K, H, W).
///
/// Vectorised over 8 neighbouring pixels (the classes of a pixel lie a plane apart), softmax with
/// `exp8`; parallel over blocks of 1024 pixels of one sample, each owning its pixels' gradient and
/// its partial loss (the sum of its squared differences in Double), the partials added in order.
/// Identical logits give identical softmaxes, so the loss and gradient are exactly 0. Differs from
/// the reference only in precision and summation order; bitwise deterministic for any `workers`.
public func consistencyLoss(studentLogits: Tensor<Float>, teacherLogits: Tensor<Float>, workers: Int)
  -> (loss: Double, gradStudentLogits: Tensor<Float>)
{
  checkWorkers(workers)
  let s = studentLogits.shape
  teacherLogits.checkShape(s, "consistencyLoss teacherLogits")
  precondition(s.count > 0, "consistencyLoss: logits \(s) are empty")
  let plane = s.h * s.w, classes = s.c
  let blocksPerSample = (plane + consistencyBlock - 1) / consistencyBlock
  let items = s.n * blocksPerSample
  let scale = Float(2 / Double(s.count))
  var partial = [Double](repeating: 0, count: items)
  let grad = makeArray(s.count) { out in
    studentLogits.data.withUnsafeBufferPointer { zBuffer in
      teacherLogits.data.withUnsafeBufferPointer { tBuffer in
        partial.withUnsafeMutableBufferPointer { lBuffer in
          // Disjoint writes: item (n, b) writes the pixels [1024b, 1024b + 1024) of sample n's K
          // gradient planes and partial[item] only.
          nonisolated(unsafe) let student = zBuffer.baseAddress!, teacher = tBuffer.baseAddress!
          nonisolated(unsafe) let losses = lBuffer.baseAddress!
          nonisolated(unsafe) let gradOut = out
          parallelFor(items, workers: workers) { item in
            let n = item / blocksPerSample, block = item % blocksPerSample
            let offset = n * classes * plane
            losses[item] = consistencyBlockPixels(
              student + offset, teacher + offset, gradOut + offset, classes: classes, plane: plane,
              pixels: (block * consistencyBlock)..<min(plane, (block + 1) * consistencyBlock), scale: scale)
          }
        }
      }
    }
  }
  var total = 0.0
  for value in partial { total += value }
  return (total / Double(s.count), Tensor(shape: s, data: grad))
}

/// One block of pixels of one sample: z, t, out point at the sample's K planes (a plane apart).
/// Writes the gradient at `pixels` and returns the sum of (p - q)² over them and the K classes.
@inline(__always)
func consistencyBlockPixels(
  _ z: UnsafePointer<Float>, _ t: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, classes: Int,
  plane: Int, pixels: Range<Int>, scale: Float
) -> Double {
  // Per class, 8 lanes of the student's exponentials then probabilities p, and 8 lanes of the
  // teacher's exponentials then the differences d = p - q.
  withScratch(16 * classes) { scratch in
    let probabilities = scratch, differences = scratch + 8 * classes
    let vScale = Vec8(repeating: scale)
    var total = 0.0
    var i = pixels.lowerBound
    while i < pixels.upperBound {
      let lanes = min(8, pixels.upperBound - i)
      // Lanes past the end load 0 for both student and teacher: equal softmaxes, difference 0.
      var zMax = loadPartial(z + i, lanes: lanes), tMax = loadPartial(t + i, lanes: lanes)
      for k in 1..<classes {
        zMax = lanewiseMax(zMax, loadPartial(z + k * plane + i, lanes: lanes))
        tMax = lanewiseMax(tMax, loadPartial(t + k * plane + i, lanes: lanes))
      }
      var zSum = Vec8(), tSum = Vec8()
      for k in 0..<classes {
        let ez = exp8(loadPartial(z + k * plane + i, lanes: lanes) - zMax)
        let et = exp8(loadPartial(t + k * plane + i, lanes: lanes) - tMax)
        store8(ez, probabilities + 8 * k)
        store8(et, differences + 8 * k)
        zSum += ez
        tSum += et
      }
      let zInverse = 1 / zSum, tInverse = 1 / tSum
      var squares = Vec8(), weighted = Vec8()
      for k in 0..<classes {
        let p = load8(probabilities + 8 * k) * zInverse
        let d = p - load8(differences + 8 * k) * tInverse
        squares.addProduct(d, d)
        weighted.addProduct(p, d)
        store8(p, probabilities + 8 * k)
        store8(d, differences + 8 * k)
      }
      total += Double(laneSum(squares))
      // dLoss/dz_k = p_k · (g_k - sum_j p_j g_j) with g = scale · d.
      for k in 0..<classes {
        let p = load8(probabilities + 8 * k)
        store8(p * (load8(differences + 8 * k) - weighted) * vScale, out + k * plane + i, lanes: lanes)
      }
      i += lanes
    }
    return total
  }
}
