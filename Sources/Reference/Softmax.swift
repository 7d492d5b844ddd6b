import Foundation

// MARK: - Softmax over channels and cross-entropy

/// Softmax over the channel dimension, at every pixel:
/// `p[n, k, y, x] = exp(z[n, k, y, x] - max) / sum over j of exp(z[n, j, y, x] - max)`,
/// with `max` the pixel's largest logit, so large logits do not overflow.
/// logits: (N, K, H, W), W fastest. Returns probabilities of the same shape.
public func softmaxForward(logits: Tensor<Double>) -> Tensor<Double> {
  let s = logits.shape
  precondition(s.c > 0, "softmaxForward: logits \(s) have no channels")
  var output = Tensor<Double>(zeros: s)
  for n in 0..<s.n {
    for y in 0..<s.h {
      for x in 0..<s.w {
        var largest = logits[n, 0, y, x]
        for k in 1..<s.c { largest = max(largest, logits[n, k, y, x]) }
        var sum = 0.0
        for k in 0..<s.c { sum += exp(logits[n, k, y, x] - largest) }
        for k in 0..<s.c { output[n, k, y, x] = exp(logits[n, k, y, x] - largest) / sum }
      }
    }
  }
  return output
}

/// Gradient of `softmaxForward`, from its output p:
/// `gradLogits[n, k, y, x] = p[k] · (gradOut[k] - sum over j of p[j] · gradOut[j])` at each pixel.
/// output, gradOutput: (N, K, H, W). Returns gradLogits of the same shape.
public func softmaxBackward(output: Tensor<Double>, gradOutput: Tensor<Double>) -> Tensor<Double> {
  let s = output.shape
  gradOutput.checkShape(s, "softmaxBackward gradOutput")
  var gradLogits = Tensor<Double>(zeros: s)
  for n in 0..<s.n {
    for y in 0..<s.h {
      for x in 0..<s.w {
        var weighted = 0.0
        for k in 0..<s.c { weighted += output[n, k, y, x] * gradOutput[n, k, y, x] }
        for k in 0..<s.c {
          gradLogits[n, k, y, x] = output[n, k, y, x] * (gradOutput[n, k, y, x] - weighted)
        }
      }
    }
  }
  return gradLogits
}

/// Cross-entropy of a softmax over channels against integer targets, mean over the N·H·W pixels:
/// `loss = -(1 / NHW) · sum over n, y, x of log p[n, target[n, y, x], y, x]`, and
/// `gradLogits = (p - onehot(target)) / NHW`. `log p` is computed as `z - max - log(sum exp(z - max))`.
/// logits: (N, K, H, W); targets: (N, H, W), W fastest, values in 0 ..< K.
public func softmaxCrossEntropy(logits: Tensor<Double>, targets: [Int])
  -> (loss: Double, gradLogits: Tensor<Double>)
{
  let s = logits.shape
  precondition(s.c > 0, "softmaxCrossEntropy: logits \(s) have no channels")
  precondition(
    targets.count == s.n * s.h * s.w,
    "softmaxCrossEntropy: \(targets.count) targets, expected (\(s.n), \(s.h), \(s.w))")
  let pixels = Double(s.n * s.h * s.w)
  var gradLogits = Tensor<Double>(zeros: s)
  var total = 0.0
  for n in 0..<s.n {
    for y in 0..<s.h {
      for x in 0..<s.w {
        let target = targets[(n * s.h + y) * s.w + x]
        precondition(
          target >= 0 && target < s.c,
          "softmaxCrossEntropy: target \(target) at (\(n), \(y), \(x)), expected 0 ..< \(s.c)")
        var largest = logits[n, 0, y, x]
        for k in 1..<s.c { largest = max(largest, logits[n, k, y, x]) }
        var sum = 0.0
        for k in 0..<s.c { sum += exp(logits[n, k, y, x] - largest) }
        total -= logits[n, target, y, x] - largest - log(sum)
        for k in 0..<s.c {
          let p = exp(logits[n, k, y, x] - largest) / sum
          gradLogits[n, k, y, x] = (p - (k == target ? 1 : 0)) / pixels
        }
      }
    }
  }
  return (total / pixels, gradLogits)
}
