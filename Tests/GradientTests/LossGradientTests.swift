import Foundation
import Reference
import TestExpectations
import Testing
import TestSupport

/// Softmax over channels, softmax cross-entropy and the soft Dice loss: gradients w.r.t. the
/// logits by central differences, and values by hand.
@Suite struct LossGradientTests {
  // MARK: - Softmax

  @Test("softmax backward matches central differences", arguments: [
    Shape(1, 4, 3, 5), Shape(2, 3, 2, 1), Shape(2, 1, 1, 3),
  ])
  func softmax(shape: Shape) {
    let logits = LayerCheck.tensor(shape, seed: 111, in: -3..<3)
    let dy = LayerCheck.upstream(shape, seed: 112)
    let gradLogits = softmaxBackward(output: softmaxForward(logits: logits), gradOutput: dy)
    LayerCheck.expectGradient("softmax \(shape) logits", point: logits.data, analytic: gradLogits.data) {
      FiniteDifference.dot(softmaxForward(logits: Tensor(shape: shape, data: $0)).data, dy.data)
    }
  }

  @Test("softmax of logits near 1000 does not overflow and matches the shifted logits")
  func softmaxStable() {
    // Pixel 0: logits 1000 and 1000 + log 3 give 1/4 and 3/4; pixel 1: -1000 and -1000 give 1/2 each.
    let logits = Tensor<Double>(shape: Shape(1, 2, 1, 2), data: [1000, -1000, 1000 + log(3.0), -1000])
    let p = softmaxForward(logits: logits)
    expectClose("softmax large logits", p.data, [0.25, 0.5, 0.75, 0.5], tolerance: .doubleRounding)
  }

  // MARK: - Cross-entropy

  @Test("softmax cross-entropy gradient matches central differences", arguments: [
    Shape(1, 4, 3, 5), Shape(3, 2, 1, 2),
  ])
  func crossEntropy(shape: Shape) {
    let logits = LayerCheck.tensor(shape, seed: 121, in: -3..<3)
    var rng = SplitMix64(seed: 122)
    let targets = (0..<(shape.n * shape.h * shape.w)).map { _ in rng.int(below: shape.c) }
    let (_, gradLogits) = softmaxCrossEntropy(logits: logits, targets: targets)
    LayerCheck.expectGradient("cross-entropy \(shape) logits", point: logits.data, analytic: gradLogits.data) {
      softmaxCrossEntropy(logits: Tensor(shape: shape, data: $0), targets: targets).loss
    }
  }

  @Test("softmax cross-entropy of equal logits is log K, with gradient (1/K - onehot) / NHW")
  func crossEntropyUniform() {
    let logits = Tensor<Double>(zeros: Shape(1, 4, 1, 2))
    let (loss, gradLogits) = softmaxCrossEntropy(logits: logits, targets: [1, 3])
    expectClose("cross-entropy value", [loss], [log(4.0)], tolerance: .doubleRounding)
    // Channel-major (1, 4, 1, 2): pixel 0 has target 1, pixel 1 has target 3.
    let expected = [0.125, 0.125, -0.375, 0.125, 0.125, 0.125, 0.125, -0.375]
    expectClose("cross-entropy gradient", gradLogits.data, expected, tolerance: .doubleRounding)
  }

  // MARK: - Soft Dice

  @Test("soft Dice gradient matches central differences", arguments: [
    Shape(1, 4, 3, 5), Shape(2, 3, 2, 3), Shape(2, 2, 1, 1),
  ])
  func softDice(shape: Shape) {
    let logits = LayerCheck.tensor(shape, seed: 131, in: -2..<2)
    var rng = SplitMix64(seed: 132)
    let labels = (0..<(shape.n * shape.h * shape.w)).map { _ in UInt8(rng.int(below: shape.c)) }
    let (_, gradLogits) = softDiceLoss(logits: logits, labels: labels)
    LayerCheck.expectGradient("soft Dice \(shape) logits", point: logits.data, analytic: gradLogits.data) {
      softDiceLoss(logits: Tensor(shape: shape, data: $0), labels: labels).loss
    }
  }

  @Test("soft Dice of a confident perfect prediction is 0, an absent class included")
  func softDicePerfect() {
    // K = 3, labels use classes 0 and 1 only: class 2 is absent from prediction and truth, and its
    // smoothed Dice 1e-5 / (tiny + 1e-5) is 1 to double precision.
    let labels: [UInt8] = [0, 1, 1, 0, 1, 1, 0, 0]
    var logits = Tensor<Double>(zeros: Shape(2, 3, 2, 2))
    for n in 0..<2 {
      for y in 0..<2 {
        for x in 0..<2 { logits[n, Int(labels[(n * 2 + y) * 2 + x]), y, x] = 50 }
      }
    }
    let (loss, _) = softDiceLoss(logits: logits, labels: labels)
    expectClose("perfect soft Dice", [loss], [0], tolerance: .doubleRounding)
  }

  @Test("soft Dice of equal logits on a 2x2 slice matches the hand value")
  func softDiceHandExample() {
    // K = 2, logits 0 so p = 1/2 everywhere; labels [0, 0, 0, 1].
    // Class 0: I = 3/2, P = 2, Y = 3, dice = (3 + 1e-5) / (5 + 1e-5).
    // Class 1: I = 1/2, P = 2, Y = 1, dice = (1 + 1e-5) / (3 + 1e-5).
    // loss = 1 - (dice0 + dice1) / 2 = 0.53333182222672...
    let (loss, _) = softDiceLoss(logits: Tensor(zeros: Shape(1, 2, 2, 2)), labels: [0, 0, 0, 1])
    let dice0 = (3 + 1e-5) / (5 + 1e-5), dice1 = (1 + 1e-5) / (3 + 1e-5)
    expectClose("2x2 soft Dice", [loss], [1 - (dice0 + dice1) / 2], tolerance: .doubleRounding)
    expectClose("2x2 soft Dice literal", [loss], [0.5333318222267259], tolerance: .doubleRounding)
  }

  @Test("soft Dice traps on a label outside 0 ..< K")
  func softDiceLabelOutOfRange() async {
    await #expect(processExitsWith: .failure) {
      _ = softDiceLoss(logits: Tensor(zeros: Shape(1, 2, 1, 1)), labels: [2])
    }
  }
}
