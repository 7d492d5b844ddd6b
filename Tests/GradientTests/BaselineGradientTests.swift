import Foundation
import Reference
import Testing
import TestSupport

/// The image-level baselines' kernels (SimCLR and Mean Teacher): global average pooling, the
/// consistency loss and the whole SimCLR objective on encoder outputs, against central differences
/// in Double.
@Suite struct BaselineGradientTests {
  // MARK: - Global average pooling

  @Test("global average pooling backward matches central differences", arguments: [
    Shape(1, 1, 3, 5), Shape(2, 3, 2, 2), Shape(2, 2, 1, 1), Shape(1, 2, 4, 1),
  ])
  func globalAveragePool(shape: Shape) {
    let x = LayerCheck.tensor(shape, seed: 201)
    let dy = LayerCheck.upstream(Shape(shape.n, shape.c, 1, 1), seed: 202)
    let gradInput = globalAveragePoolBackward(gradOutput: dy, height: shape.h, width: shape.w)
    LayerCheck.expectGradient("global average pool \(shape) input", point: x.data, analytic: gradInput.data) {
      FiniteDifference.dot(globalAveragePoolForward(input: Tensor(shape: shape, data: $0)).data, dy.data)
    }
  }

  // MARK: - Consistency loss

  @Test("consistency loss gradient (student logits, teacher constant) matches central differences", arguments: [
    Shape(1, 4, 3, 5), Shape(2, 3, 2, 2), Shape(2, 2, 1, 1), Shape(3, 1, 2, 1),
  ])
  func consistency(shape: Shape) {
    let student = LayerCheck.tensor(shape, seed: 211, in: -3..<3)
    let teacher = LayerCheck.tensor(shape, seed: 212, in: -3..<3)
    let (_, gradStudent) = consistencyLoss(studentLogits: student, teacherLogits: teacher)
    LayerCheck.expectGradient("consistency \(shape) student logits", point: student.data, analytic: gradStudent.data) {
      consistencyLoss(studentLogits: Tensor(shape: shape, data: $0), teacherLogits: teacher).loss
    }
  }

  // MARK: - SimCLR objective

  /// Pooled features, projection (2 -> ReLU -> 3), L2 normalisation and NT-Xent at tau = 0.1, back
  /// to both views' encoder outputs and every projection weight. The hidden pre-activations of
  /// these seeds stay more than 1e-3 from the ReLU kink, far beyond the 1e-6 step.
  @Test("SimCLR objective gradients (both views, projection weights) match central differences", arguments: [
    Shape(3, 4, 2, 3), Shape(2, 3, 1, 1),
  ])
  func simCLRObjective(shape: Shape) {
    let backend = ReferenceBackend()
    let features = LayerCheck.tensor(shape, seed: 221), other = LayerCheck.tensor(shape, seed: 222)
    let head = SimCLRProjectionHead<Double>(inputWidth: shape.c, hidden: 5, output: 3, seed: 223)
    let result = backend.simCLRLoss(features: features, otherFeatures: other, head: head)
    LayerCheck.expectGradient("SimCLR \(shape) first view", point: features.data, analytic: result.gradFeatures.data) {
      backend.simCLRLoss(features: Tensor(shape: shape, data: $0), otherFeatures: other, head: head).loss
    }
    LayerCheck.expectGradient("SimCLR \(shape) second view", point: other.data, analytic: result.gradOtherFeatures.data) {
      backend.simCLRLoss(features: features, otherFeatures: Tensor(shape: shape, data: $0), head: head).loss
    }
    let weights: [WritableKeyPath<SimCLRProjectionHead<Double>, [Double]>] = [\.weight1, \.bias1, \.weight2, \.bias2]
    for (name, path) in zip(["weight1", "bias1", "weight2", "bias2"], weights) {
      LayerCheck.expectGradient("SimCLR \(shape) \(name)", point: head[keyPath: path], analytic: result.gradHead[keyPath: path]) {
        var perturbed = head
        perturbed[keyPath: path] = $0
        return backend.simCLRLoss(features: features, otherFeatures: other, head: perturbed).loss
      }
    }
    // The kink margin the comment promises: W1 · h + b1 away from 0 for every row of both views.
    let rows = stackRows(globalAveragePoolForward(input: features), globalAveragePoolForward(input: other))
    let beforeReLU = conv1x1Forward(input: rowsAsPixels(rows), weight: head.weight1, bias: head.bias1)
    #expect(beforeReLU.data.allSatisfy { abs($0) > 1e-3 }, "a hidden pre-activation within 1e-3 of the ReLU kink")
  }
}
