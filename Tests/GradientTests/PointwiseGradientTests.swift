import Reference
import TestExpectations
import Testing
import TestSupport

/// ReLU, 2x2 max-pool and channel concatenation: central differences away from the kinks, and the
/// kinks themselves with exact hand values.
@Suite struct PointwiseGradientTests {
  // MARK: - ReLU

  @Test("relu backward matches central differences away from 0", arguments: [Shape(1, 2, 3, 5), Shape(3, 1, 2, 1)])
  func relu(shape: Shape) {
    let input = LayerCheck.awayFromZero(shape, seed: 81)
    let dy = LayerCheck.upstream(shape, seed: 82)
    let gradInput = reluBackward(output: reluForward(input: input), gradOutput: dy)
    LayerCheck.expectGradient("relu \(shape) input", point: input.data, analytic: gradInput.data) {
      FiniteDifference.dot(reluForward(input: Tensor(shape: shape, data: $0)).data, dy.data)
    }
  }

  @Test("relu at exactly 0 outputs 0 and passes no gradient")
  func reluKink() {
    let input = Tensor<Double>(shape: Shape(1, 1, 1, 4), data: [-1, 0, 2, -0.0])
    let output = reluForward(input: input)
    expectClose("relu output", output.data, [0, 0, 2, 0], tolerance: .exact)
    let gradInput = reluBackward(output: output, gradOutput: Tensor(shape: input.shape, data: [5, 6, 7, 8]))
    expectClose("relu gradient", gradInput.data, [0, 0, 7, 0], tolerance: .exact)
  }

  // MARK: - Max-pool

  @Test("maxPool2x2 backward matches central differences with a clear winner per window", arguments: [
    Shape(1, 2, 2, 6), Shape(2, 3, 4, 2),
  ])
  func maxPool(shape: Shape) {
    let input = LayerCheck.distinct(shape, seed: 91)
    let dy = LayerCheck.upstream(Shape(shape.n, shape.c, shape.h / 2, shape.w / 2), seed: 92)
    let gradInput = maxPool2x2Backward(input: input, gradOutput: dy)
    LayerCheck.expectGradient("maxPool2x2 \(shape) input", point: input.data, analytic: gradInput.data) {
      FiniteDifference.dot(maxPool2x2Forward(input: Tensor(shape: shape, data: $0)).data, dy.data)
    }
  }

  @Test("maxPool2x2 in a tie routes the gradient to the first maximum in row-major order")
  func maxPoolTie() {
    // Window 0 is [[3, 3], [1, 3]] (winner (0, 0)); window 1 is [[1, 2], [2, 0]] (winner (0, 1));
    // window 2 is [[0, 0], [0, 0]] (winner (0, 0)). Row-major (1, 1, 2, 6).
    let input = Tensor<Double>(shape: Shape(1, 1, 2, 6), data: [3, 3, 1, 2, 0, 0, 1, 3, 2, 0, 0, 0])
    let output = maxPool2x2Forward(input: input)
    expectClose("maxPool2x2 tie output", output.data, [3, 2, 0], tolerance: .exact)
    let gradInput = maxPool2x2Backward(input: input, gradOutput: Tensor(shape: output.shape, data: [10, 20, 30]))
    expectClose(
      "maxPool2x2 tie gradient", gradInput.data, [10, 0, 0, 20, 30, 0, 0, 0, 0, 0, 0, 0], tolerance: .exact)
  }

  // MARK: - Concatenation

  @Test("concatChannels and splitChannels are each other's gradient", arguments: [
    (Shape(1, 2, 3, 5), 1), (Shape(2, 1, 2, 3), 3),
  ])
  func concat(shape: Shape, secondChannels: Int) {
    let secondShape = Shape(shape.n, secondChannels, shape.h, shape.w)
    let first = LayerCheck.tensor(shape, seed: 101)
    let second = LayerCheck.tensor(secondShape, seed: 102)
    let dy = LayerCheck.upstream(Shape(shape.n, shape.c + secondChannels, shape.h, shape.w), seed: 103)
    let (gradFirst, gradSecond) = splitChannels(dy, firstChannels: shape.c)
    LayerCheck.expectGradient("concat \(shape) first", point: first.data, analytic: gradFirst.data) {
      FiniteDifference.dot(concatChannels(Tensor(shape: shape, data: $0), second).data, dy.data)
    }
    LayerCheck.expectGradient("concat \(shape) second", point: second.data, analytic: gradSecond.data) {
      FiniteDifference.dot(concatChannels(first, Tensor(shape: secondShape, data: $0)).data, dy.data)
    }

    let joined = concatChannels(first, second)
    let dyFirst = LayerCheck.upstream(shape, seed: 104)
    let dySecond = LayerCheck.upstream(secondShape, seed: 105)
    let gradJoined = concatChannels(dyFirst, dySecond)
    LayerCheck.expectGradient("split \(joined.shape) input", point: joined.data, analytic: gradJoined.data) {
      let (a, b) = splitChannels(Tensor(shape: joined.shape, data: $0), firstChannels: shape.c)
      return FiniteDifference.dot(a.data, dyFirst.data) + FiniteDifference.dot(b.data, dySecond.data)
    }
  }

  @Test("splitChannels after concatChannels returns both inputs exactly, skip first")
  func concatRoundTrip() {
    let first = LayerCheck.tensor(Shape(2, 2, 1, 3), seed: 106)
    let second = LayerCheck.tensor(Shape(2, 1, 1, 3), seed: 107)
    let joined = concatChannels(first, second)
    #expect(joined.shape == Shape(2, 3, 1, 3))
    expectClose("joined sample 1 channel 0", [joined[1, 0, 0, 2]], [first[1, 0, 0, 2]], tolerance: .exact)
    expectClose("joined sample 1 channel 2", [joined[1, 2, 0, 2]], [second[1, 0, 0, 2]], tolerance: .exact)
    let (a, b) = splitChannels(joined, firstChannels: 2)
    #expect(a == first)
    #expect(b == second)
  }
}
