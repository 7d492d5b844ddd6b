import Reference
import TestExpectations
import Testing
import TestSupport

/// Central-difference checks of the three convolutions, w.r.t. input, weight and bias, with
/// L = sum(out · dy) for a seeded dy. Shapes are tiny and odd; batch 1 and batch > 1.
@Suite struct ConvolutionGradientTests {
  // MARK: - 3x3

  @Test("conv3x3 backward matches central differences", arguments: [
    (Shape(1, 2, 3, 5), 3), (Shape(2, 3, 4, 3), 2), (Shape(1, 1, 1, 1), 1),
  ])
  func conv3x3(shape: Shape, outputChannels: Int) {
    let input = LayerCheck.tensor(shape, seed: 31)
    let weight = LayerCheck.uniform(count: outputChannels * shape.c * 9, seed: 32)
    let dy = LayerCheck.upstream(Shape(shape.n, outputChannels, shape.h, shape.w), seed: 33)
    let grads = conv3x3Backward(input: input, weight: weight, gradOutput: dy)

    LayerCheck.expectGradient("conv3x3 \(shape) input", point: input.data, analytic: grads.gradInput.data) {
      let y = conv3x3Forward(input: Tensor(shape: shape, data: $0), weight: weight, outputChannels: outputChannels)
      return FiniteDifference.dot(y.data, dy.data)
    }
    LayerCheck.expectGradient("conv3x3 \(shape) weight", point: weight, analytic: grads.gradWeight) {
      FiniteDifference.dot(conv3x3Forward(input: input, weight: $0, outputChannels: outputChannels).data, dy.data)
    }
  }

  @Test("conv3x3 is a cross-correlation as in PyTorch: tap (i, j) reads in[y + i - 1, x + j - 1]")
  func conv3x3TapOrientation() {
    // Input 0 ..< 6 on a 2x3 image; output channel 0 has only its top-left tap (0, 0) set, output
    // channel 1 only its bottom-right tap (2, 2): a shift down-right and a shift up-left, zero filled.
    let input = Tensor<Double>(shape: Shape(1, 1, 2, 3), data: [0, 1, 2, 3, 4, 5])
    var weight = [Double](repeating: 0, count: 18)
    weight[0] = 1  // (o 0, c 0, 0, 0)
    weight[17] = 1  // (o 1, c 0, 2, 2)
    let output = conv3x3Forward(input: input, weight: weight, outputChannels: 2)
    expectClose(
      "conv3x3 taps", output.data, [0, 0, 0, 0, 0, 1, 4, 5, 0, 0, 0, 0], tolerance: .exact)
  }

  @Test("conv3x3 of a single pixel with a centre-only kernel sums channels with weight[o, c, 1, 1]")
  func conv3x3CentreTap() {
    let input = Tensor<Double>(shape: Shape(1, 2, 1, 1), data: [3, -2])
    var weight = [Double](repeating: 7, count: 36)  // off-centre taps only ever read padding
    weight[4] = 0.5  // (o 0, c 0, 1, 1)
    weight[13] = 2  // (o 0, c 1, 1, 1)
    weight[22] = -1  // (o 1, c 0, 1, 1)
    weight[31] = 4  // (o 1, c 1, 1, 1)
    let output = conv3x3Forward(input: input, weight: weight, outputChannels: 2)
    expectClose("conv3x3 centre tap", output.data, [3 * 0.5 + -2 * 2, 3 * -1 + -2 * 4] as [Double], tolerance: .exact)
  }

  // MARK: - 1x1

  @Test("conv1x1 backward matches central differences", arguments: [
    (Shape(1, 3, 3, 5), 2), (Shape(3, 2, 2, 3), 4), (Shape(2, 1, 1, 1), 1),
  ])
  func conv1x1(shape: Shape, outputChannels: Int) {
    let input = LayerCheck.tensor(shape, seed: 41)
    let weight = LayerCheck.uniform(count: outputChannels * shape.c, seed: 42)
    let bias = LayerCheck.uniform(count: outputChannels, seed: 43)
    let dy = LayerCheck.upstream(Shape(shape.n, outputChannels, shape.h, shape.w), seed: 44)
    let grads = conv1x1Backward(input: input, weight: weight, gradOutput: dy)

    LayerCheck.expectGradient("conv1x1 \(shape) input", point: input.data, analytic: grads.gradInput.data) {
      let y = conv1x1Forward(input: Tensor(shape: shape, data: $0), weight: weight, bias: bias)
      return FiniteDifference.dot(y.data, dy.data)
    }
    LayerCheck.expectGradient("conv1x1 \(shape) weight", point: weight, analytic: grads.gradWeight) {
      FiniteDifference.dot(conv1x1Forward(input: input, weight: $0, bias: bias).data, dy.data)
    }
    LayerCheck.expectGradient("conv1x1 \(shape) bias", point: bias, analytic: grads.gradBias) {
      FiniteDifference.dot(conv1x1Forward(input: input, weight: weight, bias: $0).data, dy.data)
    }
  }

  @Test("conv1x1 reads weight[o, c] with c fastest and adds bias[o]")
  func conv1x1Layout() {
    let input = Tensor<Double>(shape: Shape(1, 2, 1, 1), data: [3, -2])
    let output = conv1x1Forward(input: input, weight: [1, 2, 3, 4, 5, 6], bias: [10, 20, 30])
    #expect(output.shape == Shape(1, 3, 1, 1))
    expectClose(
      "conv1x1 layout", output.data, [10 + 3 - 4, 20 + 9 - 8, 30 + 15 - 12] as [Double], tolerance: .exact)
  }

  // MARK: - 2x2 transposed, stride 2

  @Test("convTranspose2x2 backward matches central differences", arguments: [
    (Shape(1, 3, 3, 5), 2), (Shape(2, 2, 2, 3), 3), (Shape(1, 1, 1, 1), 1),
  ])
  func convTranspose2x2(shape: Shape, outputChannels: Int) {
    let input = LayerCheck.tensor(shape, seed: 51)
    let weight = LayerCheck.uniform(count: shape.c * outputChannels * 4, seed: 52)
    let bias = LayerCheck.uniform(count: outputChannels, seed: 53)
    let dy = LayerCheck.upstream(Shape(shape.n, outputChannels, 2 * shape.h, 2 * shape.w), seed: 54)
    let grads = convTranspose2x2Backward(input: input, weight: weight, gradOutput: dy)

    LayerCheck.expectGradient("convTranspose2x2 \(shape) input", point: input.data, analytic: grads.gradInput.data) {
      let y = convTranspose2x2Forward(input: Tensor(shape: shape, data: $0), weight: weight, bias: bias)
      return FiniteDifference.dot(y.data, dy.data)
    }
    LayerCheck.expectGradient("convTranspose2x2 \(shape) weight", point: weight, analytic: grads.gradWeight) {
      FiniteDifference.dot(convTranspose2x2Forward(input: input, weight: $0, bias: bias).data, dy.data)
    }
    LayerCheck.expectGradient("convTranspose2x2 \(shape) bias", point: bias, analytic: grads.gradBias) {
      FiniteDifference.dot(convTranspose2x2Forward(input: input, weight: weight, bias: $0).data, dy.data)
    }
  }

  @Test("convTranspose2x2 paints weight[c, o, i, j] at (2y + i, 2x + j), as PyTorch's layout")
  func convTranspose2x2Layout() {
    // One input channel, two output channels, one pixel of value 2: the output block of channel o
    // is bias[o] + 2 · weight[0, o, ·, ·].
    let input = Tensor<Double>(shape: Shape(1, 1, 1, 1), data: [2])
    let weight: [Double] = [1, 2, 3, 4, 5, 6, 7, 8]
    let output = convTranspose2x2Forward(input: input, weight: weight, bias: [10, 20])
    #expect(output.shape == Shape(1, 2, 2, 2))
    expectClose(
      "convTranspose2x2 layout", output.data, [12, 14, 16, 18, 30, 32, 34, 36], tolerance: .exact)
  }
}
