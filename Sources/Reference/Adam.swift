import Foundation

// MARK: - Adam

/// One Adam step with PyTorch's semantics (bias-corrected, no weight decay, no AMSGrad) on the
/// entries `range` of the flat buffers; entries outside `range` are left untouched.
///
/// values, gradients, firstMoment, secondMoment: the same flat parameter layout. `step` is t,
/// counting from 1. For each entry, with g its gradient:
/// `m = b1·m + (1 - b1)·g`, `v = b2·v + (1 - b2)·g²`,
/// `value -= (lr / (1 - b1^t)) · m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
public func adamUpdate(
  values: inout [Double], gradients: [Double], firstMoment: inout [Double], secondMoment: inout [Double],
  range: Range<Int>, learningRate: Double, hyper: AdamHyperparameters, step: Int
) {
  let count = values.count
  precondition(
    gradients.count == count && firstMoment.count == count && secondMoment.count == count,
    "adamUpdate: values \(count), gradients \(gradients.count), firstMoment \(firstMoment.count), "
      + "secondMoment \(secondMoment.count): expected equal counts")
  precondition(range.lowerBound >= 0 && range.upperBound <= count, "adamUpdate: range \(range) outside 0 ..< \(count)")
  precondition(step >= 1, "adamUpdate: step \(step), expected >= 1 (counts from 1)")
  let beta1 = hyper.beta1, beta2 = hyper.beta2
  let biasCorrection1 = 1 - pow(beta1, Double(step))
  let biasCorrection2 = 1 - pow(beta2, Double(step))
  let stepSize = learningRate / biasCorrection1
  let rootBiasCorrection2 = biasCorrection2.squareRoot()
  for i in range {
    let g = gradients[i]
    firstMoment[i] = beta1 * firstMoment[i] + (1 - beta1) * g
    secondMoment[i] = beta2 * secondMoment[i] + (1 - beta2) * g * g
    let denominator = secondMoment[i].squareRoot() / rootBiasCorrection2 + hyper.epsilon
    values[i] -= stepSize * firstMoment[i] / denominator
  }
}
