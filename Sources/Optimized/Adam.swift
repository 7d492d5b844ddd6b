import Foundation
import Reference

// MARK: - Adam

/// Optimized twin of `Reference.adamUpdate`: one Adam step with PyTorch's semantics on
/// `values[range]` (bias-corrected, no weight decay): `m = b1·m + (1 - b1)·g`,
/// `v = b2·v + (1 - b2)·g²`, `value -= (lr / (1 - b1^t)) · m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
///
/// The step constants are computed in Double as in the reference, the per-entry update in Float,
/// 8 lanes at a time, parallel over fixed chunks of the range (every entry is independent, so the
/// result does not depend on `workers`). Differs from the reference only in precision.
public func adamUpdate(
  values: inout [Float], gradients: [Float], firstMoment: inout [Float], secondMoment: inout [Float],
  range: Range<Int>, learningRate: Double, hyper: AdamHyperparameters, step: Int, workers: Int
) {
  checkWorkers(workers)
  let count = values.count
  precondition(
    gradients.count == count && firstMoment.count == count && secondMoment.count == count,
    "adamUpdate: values \(count), gradients \(gradients.count), moments \(firstMoment.count), \(secondMoment.count)")
  precondition(range.lowerBound >= 0 && range.upperBound <= count, "adamUpdate: range \(range) outside 0 ..< \(count)")
  precondition(step >= 1, "adamUpdate: step \(step), expected >= 1 (counts from 1)")
  let stepSize = Float(learningRate / (1 - pow(hyper.beta1, Double(step))))
  let inverseRoot = Float(1 / (1 - pow(hyper.beta2, Double(step))).squareRoot())
  let b1 = Float(hyper.beta1), b2 = Float(hyper.beta2), eps = Float(hyper.epsilon)
  values.withUnsafeMutableBufferPointer { vBuffer in
    firstMoment.withUnsafeMutableBufferPointer { mBuffer in
      secondMoment.withUnsafeMutableBufferPointer { sBuffer in
        gradients.withUnsafeBufferPointer { gBuffer in
          // Disjoint writes: chunk k updates entries [start + k·chunk, ...) of the three buffers only.
          nonisolated(unsafe) let p = vBuffer.baseAddress!, m = mBuffer.baseAddress!, v = sBuffer.baseAddress!
          nonisolated(unsafe) let g = gBuffer.baseAddress!
          let chunks = (range.count + pointwiseChunk - 1) / pointwiseChunk
          parallelFor(chunks, workers: workers) { k in
            let start = range.lowerBound + k * pointwiseChunk
            let end = min(range.upperBound, start + pointwiseChunk)
            var i = start
            let vb1 = Vec8(repeating: b1), vb2 = Vec8(repeating: b2)
            let c1 = Vec8(repeating: 1 - b1), c2 = Vec8(repeating: 1 - b2)
            let vStep = Vec8(repeating: stepSize), vRoot = Vec8(repeating: inverseRoot), vEps = Vec8(repeating: eps)
            while i + 8 <= end {
              let grad = load8(g + i)
              let m1 = vb1 * load8(m + i) + c1 * grad
              let v1 = vb2 * load8(v + i) + c2 * grad * grad
              store8(m1, m + i)
              store8(v1, v + i)
              store8(load8(p + i) - vStep * m1 / (v1.squareRoot() * vRoot + vEps), p + i)
              i += 8
            }
            while i < end {
              let grad = g[i]
              m[i] = b1 * m[i] + (1 - b1) * grad
              v[i] = b2 * v[i] + (1 - b2) * grad * grad
              p[i] -= stepSize * m[i] / (v[i].squareRoot() * inverseRoot + eps)
              i += 1
            }
          }
        }
      }
    }
  }
}
