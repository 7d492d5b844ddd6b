import Reference
import TestExpectations
import Testing
import TestSupport

/// Adam with PyTorch's semantics against two steps computed by hand.
@Suite struct AdamTests {
  @Test("adam's first two steps match the hand-computed moments and values; entries outside the range are untouched")
  func twoSteps() {
    var values: [Double] = [1, -2, 5]
    var firstMoment = [Double](repeating: 0, count: 3)
    var secondMoment = [Double](repeating: 0, count: 3)
    let hyper = AdamHyperparameters()  // 0.9, 0.999, 1e-8
    let range = 0..<2

    // Step 1, g = (0.5, -1): m = (0.05, -0.1), v = (0.00025, 0.001); bias-corrected m^ = (0.5, -1),
    // sqrt(v^) = (0.5, 1), so each value moves by lr · sign(g) / (1 + eps / sqrt(v^)).
    adamUpdate(
      values: &values, gradients: [0.5, -1, 100], firstMoment: &firstMoment, secondMoment: &secondMoment,
      range: range, learningRate: 0.1, hyper: hyper, step: 1)
    expectClose("step 1 m", firstMoment, [0.05, -0.1, 0], tolerance: .doubleRounding)
    expectClose("step 1 v", secondMoment, [0.00025, 0.001, 0], tolerance: .doubleRounding)
    let step1 = [1 - 0.1 / (1 + 2e-8), -2 + 0.1 / (1 + 1e-8), 5]
    expectClose("step 1 values", values, step1, tolerance: .doubleRounding)
    expectClose("step 1 literals", values, [0.900000002, -1.900000001, 5], tolerance: .doubleRounding)

    // Step 2, g = (0.25, 3): m = 0.9 m + 0.1 g = (0.07, 0.21); v = 0.999 v + 0.001 g² = (0.00031225, 0.009999);
    // 1 - b1² = 0.19, 1 - b2² = 0.001999; value -= (lr / 0.19) · m / (sqrt(v) / sqrt(0.001999) + eps).
    adamUpdate(
      values: &values, gradients: [0.25, 3, 100], firstMoment: &firstMoment, secondMoment: &secondMoment,
      range: range, learningRate: 0.1, hyper: hyper, step: 2)
    expectClose("step 2 m", firstMoment, [0.07, 0.21, 0], tolerance: .doubleRounding)
    expectClose("step 2 v", secondMoment, [0.00031225, 0.009999, 0], tolerance: .doubleRounding)
    let step2 = [
      step1[0] - (0.1 / 0.19) * 0.07 / (0.00031225.squareRoot() / 0.001999.squareRoot() + 1e-8),
      step1[1] - (0.1 / 0.19) * 0.21 / (0.009999.squareRoot() / 0.001999.squareRoot() + 1e-8),
      5,
    ]
    expectClose("step 2 values", values, step2, tolerance: .doubleRounding)
    expectClose(
      "step 2 literals", values, [0.8067820404774624, -1.9494189841087441, 5], tolerance: .doubleRounding)
  }
}
