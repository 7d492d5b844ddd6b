/// Activations of the projection head up to its last layer: h = ReLU(BN(net.0 · f)).
public struct ProjectionHidden<Scalar: BinaryFloatingPoint & Sendable>: Sendable {
  public var input: Tensor<Scalar>
  /// net.0 · f, before BatchNorm: (N, projectionHidden, S, S).
  public var beforeNorm: Tensor<Scalar>
  public var norm: BatchNormSaved<Scalar>
  /// h: (N, projectionHidden, S, S).
  public var relu: Tensor<Scalar>
}

/// Activations the projection head's backward needs.
public struct ProjectionTape<Scalar: BinaryFloatingPoint & Sendable>: Sendable {
  public var input: Tensor<Scalar>
  /// net.0 · f, before BatchNorm: (N, projectionHidden, S, S).
  public var beforeNorm: Tensor<Scalar>
  public var norm: BatchNormSaved<Scalar>
  public var relu: Tensor<Scalar>
  /// g(f(x)): (N, projectionOutput, S, S).
  public var output: Tensor<Scalar>

  var hiddenPart: ProjectionHidden<Scalar> { ProjectionHidden(input: input, beforeNorm: beforeNorm, norm: norm, relu: relu) }
}

extension Pix2RepNetwork {
  // MARK: - Projection head g

  /// g: 1x1 conv D -> hidden (net.0) -> BatchNorm (net.1) -> ReLU -> 1x1 conv hidden -> out (net.3),
  /// at every pixel.
  public mutating func projectionForward(_ features: Tensor<Scalar>, training: Bool) -> ProjectionTape<Scalar> {
    let h = projectionHiddenForward(features, training: training)
    let output = backend.conv1x1Forward(input: h.relu, weight: parameter("net.3.weight"), bias: parameter("net.3.bias"))
    return ProjectionTape(input: h.input, beforeNorm: h.beforeNorm, norm: h.norm, relu: h.relu, output: output)
  }

  /// Backward of g; adds parameter gradients and returns dL/dfeatures.
  public func projectionBackward(
    _ tape: ProjectionTape<Scalar>, gradOutput: Tensor<Scalar>, gradients: inout [Scalar]
  ) -> Tensor<Scalar> {
    let last = backend.conv1x1Backward(input: tape.relu, weight: parameter("net.3.weight"), gradOutput: gradOutput)
    accumulate(last.gradWeight, into: &gradients, "net.3.weight")
    accumulate(last.gradBias, into: &gradients, "net.3.bias")
    return projectionHiddenBackward(tape.hiddenPart, gradRelu: last.gradInput, gradients: &gradients)
  }

  /// g without its last layer: h = ReLU(BN(net.0 · f)) at every pixel (BatchNorm needs them all).
  public mutating func projectionHiddenForward(_ features: Tensor<Scalar>, training: Bool) -> ProjectionHidden<Scalar> {
    let hidden = backend.conv1x1Forward(
      input: features, weight: parameter("net.0.weight"), bias: parameter("net.0.bias"))
    let (normed, saved) = batchNorm("net.1", hidden, training: training)
    let relu = backend.reluForward(input: normed)
    return ProjectionHidden(input: features, beforeNorm: hidden, norm: saved, relu: relu)
  }

  /// Backward of `projectionHiddenForward` from dL/dh; adds parameter gradients and returns
  /// dL/dfeatures.
  public func projectionHiddenBackward(
    _ tape: ProjectionHidden<Scalar>, gradRelu: Tensor<Scalar>, gradients: inout [Scalar]
  ) -> Tensor<Scalar> {
    var grad = backend.reluBackward(output: tape.relu, gradOutput: gradRelu)
    grad = batchNormBackward("net.1", input: tape.beforeNorm, saved: tape.norm, gradOutput: grad, gradients: &gradients)
    let first = backend.conv1x1Backward(input: tape.input, weight: parameter("net.0.weight"), gradOutput: grad)
    accumulate(first.gradWeight, into: &gradients, "net.0.weight")
    accumulate(first.gradBias, into: &gradients, "net.0.bias")
    return first.gradInput
  }

  /// g's last layer (net.3) on rows of hidden activations: (M, hidden, 1, 1) -> (M, out, 1, 1).
  /// The rows are laid out as one image of M pixels, so the 1x1 convolution is one matrix product.
  public func projectionOutputRows(_ rows: Tensor<Scalar>) -> Tensor<Scalar> {
    let out = backend.conv1x1Forward(
      input: rowsAsPixels(rows), weight: parameter("net.3.weight"), bias: parameter("net.3.bias"))
    return pixelsAsRows(out)
  }

  /// Backward of `projectionOutputRows`; adds net.3's gradients and returns dL/drows.
  public func projectionOutputRowsBackward(
    rows: Tensor<Scalar>, gradOutput: Tensor<Scalar>, gradients: inout [Scalar]
  ) -> Tensor<Scalar> {
    let last = backend.conv1x1Backward(
      input: rowsAsPixels(rows), weight: parameter("net.3.weight"), gradOutput: rowsAsPixels(gradOutput))
    accumulate(last.gradWeight, into: &gradients, "net.3.weight")
    accumulate(last.gradBias, into: &gradients, "net.3.bias")
    return pixelsAsRows(last.gradInput)
  }

  // MARK: - Segmentation head

  /// Class logits (N, classes, S, S) from features (N, D, S, S): one 1x1 convolution with bias.
  public func segmentationForward(_ features: Tensor<Scalar>) -> Tensor<Scalar> {
    backend.conv1x1Forward(input: features, weight: parameter("conv.weight"), bias: parameter("conv.bias"))
  }

  /// Backward of the segmentation head; adds its gradients and returns dL/dfeatures.
  public func segmentationBackward(
    features: Tensor<Scalar>, gradLogits: Tensor<Scalar>, gradients: inout [Scalar]
  ) -> Tensor<Scalar> {
    let g = backend.conv1x1Backward(input: features, weight: parameter("conv.weight"), gradOutput: gradLogits)
    accumulate(g.gradWeight, into: &gradients, "conv.weight")
    accumulate(g.gradBias, into: &gradients, "conv.bias")
    return g.gradInput
  }
}
