import Foundation
import Reference

// MARK: - Soft Dice loss

/// Optimized twin of `Reference.softDiceLoss`: soft Dice with a softmax over channels, background
/// included, smoothing 1e-5, `loss = 1 - mean over (n, k) of dice[n, k]`.
/// logits: (N, K, H, W); labels: (N, H, W) in 0 ..< K. Returns the loss and dLoss/dlogits.
///
/// Parallel over samples (each owns its sums and its gradient planes); per-class sums in Double,
/// softmax in Float. Differs from the reference only in precision and summation order; bitwise
/// deterministic for any `workers`.
public func softDiceLoss(logits: Tensor<Float>, labels: [UInt8], workers: Int) -> (loss: Double, gradLogits: Tensor<Float>) {
  checkWorkers(workers)
  let s = logits.shape
  precondition(s.n > 0 && s.c > 0, "softDiceLoss: logits \(s), expected N > 0 and K > 0")
  precondition(labels.count == s.n * s.h * s.w, "softDiceLoss: \(labels.count) labels, expected (\(s.n), \(s.h), \(s.w))")
  precondition(labels.allSatisfy { Int($0) < s.c }, "softDiceLoss: a label is outside 0 ..< \(s.c)")
  let plane = s.h * s.w, classes = s.c
  let smoothing = 1e-5
  let pairs = Double(s.n * classes)
  var dice = [Double](repeating: 0, count: s.n * classes)
  let grad = makeArray(s.count) { out in
    logits.data.withUnsafeBufferPointer { zBuffer in
      labels.withUnsafeBufferPointer { lBuffer in
        dice.withUnsafeMutableBufferPointer { dBuffer in
          // Disjoint writes: sample n writes its K gradient planes and dice[n * K ..< (n + 1) * K].
          nonisolated(unsafe) let z = zBuffer.baseAddress!, labelValues = lBuffer.baseAddress!
          nonisolated(unsafe) let diceOut = dBuffer.baseAddress!
          nonisolated(unsafe) let gradOut = out
          parallelFor(s.n, workers: workers) { n in
            let zs = z + n * classes * plane
            let probabilities = gradOut + n * classes * plane
            let label = labelValues + n * plane
            // Softmax per pixel into the gradient planes (overwritten below).
            for i in 0..<plane {
              var largest = zs[i]
              for k in 1..<classes { largest = max(largest, zs[k * plane + i]) }
              var sum: Float = 0
              for k in 0..<classes {
                let e = exp(zs[k * plane + i] - largest)
                probabilities[k * plane + i] = e
                sum += e
              }
              let inverse = 1 / sum
              for k in 0..<classes { probabilities[k * plane + i] *= inverse }
            }
            // Per class: I, P, Y and dLoss/dp = -(1/NK) (2y / den - num / den²).
            var numerators = [Double](repeating: 0, count: classes)
            var denominators = [Double](repeating: 0, count: classes)
            for k in 0..<classes {
              var intersection = 0.0, predicted = 0.0, present = 0.0
              for i in 0..<plane {
                let p = Double(probabilities[k * plane + i])
                predicted += p
                if Int(label[i]) == k {
                  intersection += p
                  present += 1
                }
              }
              numerators[k] = 2 * intersection + smoothing
              denominators[k] = predicted + present + smoothing
              diceOut[n * classes + k] = numerators[k] / denominators[k]
            }
            // dLoss/dp for a pixel outside (0) and inside (1) class k.
            var gradAbsent = [Float](repeating: 0, count: classes)
            var gradPresent = [Float](repeating: 0, count: classes)
            for k in 0..<classes {
              let ratio = numerators[k] / (denominators[k] * denominators[k])
              gradAbsent[k] = Float(ratio / pairs)
              gradPresent[k] = Float(-(2 / denominators[k] - ratio) / pairs)
            }
            // Through the softmax: gradLogits = p (gradP - sum_j p_j gradP_j).
            for i in 0..<plane {
              let target = Int(label[i])
              var weighted: Float = 0
              for k in 0..<classes {
                weighted += probabilities[k * plane + i] * (k == target ? gradPresent[k] : gradAbsent[k])
              }
              for k in 0..<classes {
                probabilities[k * plane + i] *= (k == target ? gradPresent[k] : gradAbsent[k]) - weighted
              }
            }
          }
        }
      }
    }
  }
  var total = 0.0
  for value in dice { total += value }
  return (1 - total / pairs, Tensor(shape: s, data: grad))
}
