import Foundation

// MARK: - BatchNorm2d

/// BatchNorm2d: `out = (in - mean[c]) · inverseStd[c] · weight[c] + bias[c]`, per channel c.
///
/// input: (N, C, H, W), W fastest; weight, bias, runningMean, runningVariance: (C).
/// Returns the output (N, C, H, W) and the statistics the backward needs.
///
/// Training mode: mean and variance are the batch's over the m = N·H·W values of each channel; the
/// *biased* variance (divided by m) normalises, and the running statistics move by momentum 0.1
/// towards the batch mean and the *unbiased* variance (divided by m - 1), as PyTorch does:
/// `running = (1 - 0.1) · running + 0.1 · batch`. It needs m > 1.
/// Evaluation mode: the running statistics normalise and are left unchanged.
/// `inverseStd = 1 / sqrt(variance + 1e-5)` (`BatchNormConstants.epsilon`).
public func batchNormForward(
  input: Tensor<Double>, weight: [Double], bias: [Double],
  runningMean: inout [Double], runningVariance: inout [Double], training: Bool
) -> (output: Tensor<Double>, saved: BatchNormSaved<Double>) {
  let s = input.shape
  let perChannel = [
    ("weight", weight), ("bias", bias), ("runningMean", runningMean), ("runningVariance", runningVariance),
  ]
  for (label, array) in perChannel {
    precondition(array.count == s.c, "batchNormForward: \(label) has \(array.count) values, expected (\(s.c))")
  }
  let m = s.n * s.h * s.w
  precondition(!training || m > 1, "batchNormForward: training needs more than 1 value per channel, got \(m)")
  var mean = [Double](repeating: 0, count: s.c)
  var inverseStd = [Double](repeating: 0, count: s.c)
  for c in 0..<s.c {
    if training {
      var sum = 0.0
      for n in 0..<s.n {
        for y in 0..<s.h {
          for x in 0..<s.w { sum += input[n, c, y, x] }
        }
      }
      let batchMean = sum / Double(m)
      var squares = 0.0
      for n in 0..<s.n {
        for y in 0..<s.h {
          for x in 0..<s.w {
            let d = input[n, c, y, x] - batchMean
            squares += d * d
          }
        }
      }
      let biasedVariance = squares / Double(m)
      let unbiasedVariance = squares / Double(m - 1)
      let momentum = BatchNormConstants.momentum
      runningMean[c] = (1 - momentum) * runningMean[c] + momentum * batchMean
      runningVariance[c] = (1 - momentum) * runningVariance[c] + momentum * unbiasedVariance
      mean[c] = batchMean
      inverseStd[c] = 1 / sqrt(biasedVariance + BatchNormConstants.epsilon)
    } else {
      mean[c] = runningMean[c]
      inverseStd[c] = 1 / sqrt(runningVariance[c] + BatchNormConstants.epsilon)
    }
  }
  var output = Tensor<Double>(zeros: s)
  for n in 0..<s.n {
    for c in 0..<s.c {
      for y in 0..<s.h {
        for x in 0..<s.w {
          output[n, c, y, x] = (input[n, c, y, x] - mean[c]) * inverseStd[c] * weight[c] + bias[c]
        }
      }
    }
  }
  return (output, BatchNormSaved(mean: mean, inverseStd: inverseStd, training: training))
}

/// Gradients of `batchNormForward`.
///
/// input: (N, C, H, W); weight: (C); saved: the forward's statistics; gradOutput: (N, C, H, W).
/// With `xHat = (in - mean) · inverseStd` and m = N·H·W:
/// `gradBias[c] = sum of gradOut`, `gradWeight[c] = sum of gradOut · xHat`;
/// training: `gradIn = weight · inverseStd · (gradOut - gradBias / m - xHat · gradWeight / m)`
/// (the batch mean and variance depend on the input);
/// evaluation: `gradIn = weight · inverseStd · gradOut` (the running statistics are constants).
public func batchNormBackward(
  input: Tensor<Double>, weight: [Double], saved: BatchNormSaved<Double>, gradOutput: Tensor<Double>
) -> (gradInput: Tensor<Double>, gradWeight: [Double], gradBias: [Double]) {
  let s = input.shape
  gradOutput.checkShape(s, "batchNormBackward gradOutput")
  precondition(weight.count == s.c, "batchNormBackward: weight has \(weight.count) values, expected (\(s.c))")
  precondition(
    saved.mean.count == s.c && saved.inverseStd.count == s.c,
    "batchNormBackward: saved mean has \(saved.mean.count) values and inverseStd \(saved.inverseStd.count), "
      + "expected (\(s.c))")
  let m = Double(s.n * s.h * s.w)
  var gradInput = Tensor<Double>(zeros: s)
  var gradWeight = [Double](repeating: 0, count: s.c)
  var gradBias = [Double](repeating: 0, count: s.c)
  for c in 0..<s.c {
    let mean = saved.mean[c], inverseStd = saved.inverseStd[c]
    var sumGrad = 0.0
    var sumGradXHat = 0.0
    for n in 0..<s.n {
      for y in 0..<s.h {
        for x in 0..<s.w {
          let xHat = (input[n, c, y, x] - mean) * inverseStd
          sumGrad += gradOutput[n, c, y, x]
          sumGradXHat += gradOutput[n, c, y, x] * xHat
        }
      }
    }
    gradBias[c] = sumGrad
    gradWeight[c] = sumGradXHat
    let scale = weight[c] * inverseStd
    for n in 0..<s.n {
      for y in 0..<s.h {
        for x in 0..<s.w {
          let xHat = (input[n, c, y, x] - mean) * inverseStd
          let g = gradOutput[n, c, y, x]
          gradInput[n, c, y, x] = saved.training ? scale * (g - sumGrad / m - xHat * sumGradXHat / m) : scale * g
        }
      }
    }
  }
  return (gradInput, gradWeight, gradBias)
}
