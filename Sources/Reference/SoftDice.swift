// MARK: - Soft Dice loss (downstream segmentation, docs/PROTOCOL.md section 4)

/// Soft Dice loss with a softmax over channels, background included, as the official code's
/// `dice_loss` (pix2rep/losses.py) averaged over classes and batch.
///
/// logits: (N, K, H, W), W fastest; labels: (N, H, W) as `UInt8`, values in 0 ..< K.
/// With `p = softmax(logits)` over channels and `y` the one-hot label, for each sample n and class k
/// over the 2D slice: `I = sum p·y`, `P = sum p`, `Y = sum y`,
/// `dice[n, k] = (2·I + 1e-5) / (P + Y + 1e-5)`, and `loss = 1 - mean over n, k of dice[n, k]`.
/// A class absent from both prediction and label scores close to 1.
/// The gradient goes through the Dice, then through the softmax:
/// `dLoss/dp[n, k, y, x] = -(1 / NK) · (2·y / (P + Y + 1e-5) - (2·I + 1e-5) / (P + Y + 1e-5)^2)`.
public func softDiceLoss(logits: Tensor<Double>, labels: [UInt8])
  -> (loss: Double, gradLogits: Tensor<Double>)
{
  let s = logits.shape
  precondition(s.n > 0 && s.c > 0, "softDiceLoss: logits \(s), expected N > 0 and K > 0")
  precondition(
    labels.count == s.n * s.h * s.w, "softDiceLoss: \(labels.count) labels, expected (\(s.n), \(s.h), \(s.w))")
  for (i, label) in labels.enumerated() {
    precondition(Int(label) < s.c, "softDiceLoss: label \(label) at flat index \(i), expected 0 ..< \(s.c)")
  }
  let smoothing = 1e-5
  let probabilities = softmaxForward(logits: logits)
  var gradProbabilities = Tensor<Double>(zeros: s)
  let pairs = Double(s.n * s.c)
  var diceSum = 0.0
  for n in 0..<s.n {
    for k in 0..<s.c {
      var intersection = 0.0, predicted = 0.0, present = 0.0
      for y in 0..<s.h {
        for x in 0..<s.w {
          let p = probabilities[n, k, y, x]
          let oneHot = Int(labels[(n * s.h + y) * s.w + x]) == k ? 1.0 : 0.0
          intersection += p * oneHot
          predicted += p
          present += oneHot
        }
      }
      let numerator = 2 * intersection + smoothing
      let denominator = predicted + present + smoothing
      diceSum += numerator / denominator
      for y in 0..<s.h {
        for x in 0..<s.w {
          let oneHot = Int(labels[(n * s.h + y) * s.w + x]) == k ? 1.0 : 0.0
          let dDice = 2 * oneHot / denominator - numerator / (denominator * denominator)
          gradProbabilities[n, k, y, x] = -dDice / pairs
        }
      }
    }
  }
  let gradLogits = softmaxBackward(output: probabilities, gradOutput: gradProbabilities)
  return (1 - diceSum / pairs, gradLogits)
}
