import Foundation
import Reference
import TestExpectations
import Testing
import TestSupport

/// BatchNorm2d in training and evaluation mode: gradients by central differences (the batch
/// statistics depend on the input in training mode), and the running statistics by hand.
@Suite struct BatchNormGradientTests {
  @Test("batchNorm backward matches central differences", arguments: [
    (Shape(1, 2, 3, 3), true), (Shape(3, 3, 1, 5), true), (Shape(2, 1, 2, 3), true),
    (Shape(1, 2, 3, 3), false), (Shape(3, 3, 1, 5), false),
  ])
  func batchNorm(shape: Shape, training: Bool) {
    let mode = training ? "training" : "evaluation"
    let input = LayerCheck.tensor(shape, seed: 71, in: -2..<3)
    let weight = LayerCheck.uniform(count: shape.c, seed: 72, in: 0.5..<1.5)
    let bias = LayerCheck.uniform(count: shape.c, seed: 73)
    let runningMean = LayerCheck.uniform(count: shape.c, seed: 74)
    let runningVariance = LayerCheck.uniform(count: shape.c, seed: 75, in: 0.5..<2)
    let dy = LayerCheck.upstream(shape, seed: 76)
    /// L = sum(out · dy), on copies of the running statistics.
    func loss(_ x: Tensor<Double>, _ w: [Double], _ b: [Double]) -> Double {
      var mean = runningMean, variance = runningVariance
      let y = batchNormForward(
        input: x, weight: w, bias: b, runningMean: &mean, runningVariance: &variance, training: training)
      return FiniteDifference.dot(y.output.data, dy.data)
    }
    var mean = runningMean, variance = runningVariance
    let forward = batchNormForward(
      input: input, weight: weight, bias: bias, runningMean: &mean, runningVariance: &variance, training: training)
    let grads = batchNormBackward(input: input, weight: weight, saved: forward.saved, gradOutput: dy)

    LayerCheck.expectGradient("batchNorm \(mode) \(shape) input", point: input.data, analytic: grads.gradInput.data) {
      loss(Tensor(shape: shape, data: $0), weight, bias)
    }
    LayerCheck.expectGradient("batchNorm \(mode) \(shape) weight", point: weight, analytic: grads.gradWeight) {
      loss(input, $0, bias)
    }
    LayerCheck.expectGradient("batchNorm \(mode) \(shape) bias", point: bias, analytic: grads.gradBias) {
      loss(input, weight, $0)
    }
  }

  @Test("batchNorm training normalises with the biased variance; running stats take the unbiased one")
  func trainingStatistics() {
    // Channel 0 holds 1, 2, 3, 4: mean 2.5, biased variance 1.25, unbiased 5/3.
    // Channel 1 holds 10, 10, 10, 14: mean 11, biased variance 3, unbiased 4.
    let input = Tensor<Double>(shape: Shape(2, 2, 1, 2), data: [1, 2, 10, 10, 3, 4, 10, 14])
    var runningMean: [Double] = [0, 1]
    var runningVariance: [Double] = [1, 2]
    let (output, saved) = batchNormForward(
      input: input, weight: [2, 1], bias: [0.5, -1], runningMean: &runningMean,
      runningVariance: &runningVariance, training: true)

    expectClose(
      "running mean", runningMean, [0.9 * 0 + 0.1 * 2.5, 0.9 * 1 + 0.1 * 11], tolerance: .doubleRounding)
    expectClose(
      "running variance", runningVariance, [0.9 * 1 + 0.1 * 5.0 / 3.0, 0.9 * 2 + 0.1 * 4], tolerance: .doubleRounding)
    expectClose("saved mean", saved.mean, [2.5, 11], tolerance: .doubleRounding)
    let inverseStd = [1 / (1.25 + 1e-5).squareRoot(), 1 / (3 + 1e-5).squareRoot()]
    expectClose("saved inverseStd", saved.inverseStd, inverseStd, tolerance: .doubleRounding)
    #expect(saved.training)
    let expected = [
      2 * (1 - 2.5) * inverseStd[0] + 0.5, 2 * (2 - 2.5) * inverseStd[0] + 0.5,
      (10 - 11) * inverseStd[1] - 1, (10 - 11) * inverseStd[1] - 1,
      2 * (3 - 2.5) * inverseStd[0] + 0.5, 2 * (4 - 2.5) * inverseStd[0] + 0.5,
      (10 - 11) * inverseStd[1] - 1, (14 - 11) * inverseStd[1] - 1,
    ]
    expectClose("training output", output.data, expected, tolerance: .doubleRounding)
  }

  @Test("batchNorm evaluation normalises with the running statistics and leaves them unchanged")
  func evaluationStatistics() {
    let input = Tensor<Double>(shape: Shape(1, 2, 1, 2), data: [1, 3, -1, 5])
    var runningMean: [Double] = [2, 1]
    var runningVariance: [Double] = [4, 0.25]
    let (output, saved) = batchNormForward(
      input: input, weight: [3, 1], bias: [0, 1], runningMean: &runningMean,
      runningVariance: &runningVariance, training: false)

    #expect(runningMean == [2, 1])
    #expect(runningVariance == [4, 0.25])
    #expect(!saved.training)
    let inverseStd = [1 / (4 + 1e-5).squareRoot(), 1 / (0.25 + 1e-5).squareRoot()]
    let expected = [
      3 * (1 - 2) * inverseStd[0], 3 * (3 - 2) * inverseStd[0],
      (-1 - 1) * inverseStd[1] + 1, (5 - 1) * inverseStd[1] + 1,
    ]
    expectClose("evaluation output", output.data, expected, tolerance: .doubleRounding)
  }
}
