extension Pix2RepNetwork {
  // MARK: - U-Net backward

  /// Backpropagates dL/df (N, D, S, S) through the U-Net recorded in `tape`, adding every
  /// parameter gradient into `gradients` (parameter layout). Returns dL/dimages.
  @discardableResult
  public func backboneBackward(
    _ tape: UNetTape<Scalar>, gradOutput: Tensor<Scalar>, gradients: inout [Scalar]
  ) -> Tensor<Scalar> {
    precondition(gradOutput.shape == tape.output.shape, "U-Net gradient \(gradOutput.shape) for output \(tape.output.shape)")
    let decoder = decoderBackward(tape, gradOutput: gradOutput, gradients: &gradients)
    return encoderBackward(tape.encoder, gradBottleneck: decoder.gradBottleneck, skips: decoder.skips, gradients: &gradients)
  }

  /// Backpropagates dL/df through the decoder `up{depth}` … `up1`, adding the decoder's parameter
  /// gradients into `gradients`. Returns dL/d(bottleneck) and the gradients reaching each encoder
  /// output through its skip connection, by level as `EncoderTape.skips` (0 = `inc`).
  public func decoderBackward(
    _ tape: UNetTape<Scalar>, gradOutput: Tensor<Scalar>, gradients: inout [Scalar]
  ) -> (gradBottleneck: Tensor<Scalar>, skips: [Tensor<Scalar>?]) {
    let depth = config.depth
    var skipGradients = [Tensor<Scalar>?](repeating: nil, count: depth)
    var grad = gradOutput
    for k in stride(from: depth, through: 1, by: -1) {
      let up = tape.ups[k - 1]
      let joined = doubleConvBackward("up\(k).conv.double_conv", up.block, gradOutput: grad, gradients: &gradients)
      let (gradSkip, gradUpsampled) = backend.splitChannels(joined, firstChannels: up.skipChannels)
      skipGradients[depth - k] = gradSkip
      let t = backend.convTranspose2x2Backward(
        input: up.input, weight: parameter("up\(k).up.weight"), gradOutput: gradUpsampled)
      accumulate(t.gradWeight, into: &gradients, "up\(k).up.weight")
      accumulate(t.gradBias, into: &gradients, "up\(k).up.bias")
      grad = t.gradInput
    }
    return (grad, skipGradients)
  }

  /// Backpropagates dL/d(bottleneck) through the encoder `down{depth}` … `down1`, `inc`, adding the
  /// encoder's parameter gradients into `gradients`. `skips[k]` is the gradient reaching encoder
  /// output k through its skip connection (`decoderBackward`), added where the two paths meet; nil
  /// means zero (an encoder-only objective: the decoder never ran). Returns dL/dimages.
  @discardableResult
  public func encoderBackward(
    _ tape: EncoderTape<Scalar>, gradBottleneck: Tensor<Scalar>, skips: [Tensor<Scalar>?], gradients: inout [Scalar]
  ) -> Tensor<Scalar> {
    let depth = config.depth
    precondition(skips.count == depth, "encoderBackward: \(skips.count) skip gradients for depth \(depth)")
    precondition(gradBottleneck.shape == tape.bottleneck.shape, "encoder gradient \(gradBottleneck.shape) for bottleneck \(tape.bottleneck.shape)")
    var grad = gradBottleneck
    for k in stride(from: depth, through: 1, by: -1) {
      let down = tape.downs[k - 1]
      let gradPooled = doubleConvBackward(
        "down\(k).maxpool_conv.1.double_conv", down.block, gradOutput: grad, gradients: &gradients)
      grad = backend.maxPool2x2Backward(input: down.poolInput, gradOutput: gradPooled)
      // The encoder output at level k - 1 also fed up{depth - k + 1} through its skip.
      if let skip = skips[k - 1] { grad = added(grad, skip) }
    }
    return doubleConvBackward("inc.double_conv", tape.inc, gradOutput: grad, gradients: &gradients)
  }

  /// Backward of one DoubleConv; returns dL/dinput.
  func doubleConvBackward(
    _ prefix: String, _ tape: DoubleConvTape<Scalar>, gradOutput: Tensor<Scalar>, gradients: inout [Scalar]
  ) -> Tensor<Scalar> {
    var grad = backend.reluBackward(output: tape.output, gradOutput: gradOutput)
    grad = batchNormBackward("\(prefix).4", input: tape.conv2, saved: tape.norm2, gradOutput: grad, gradients: &gradients)
    let c2 = backend.conv3x3Backward(input: tape.relu1, weight: parameter("\(prefix).3.weight"), gradOutput: grad)
    accumulate(c2.gradWeight, into: &gradients, "\(prefix).3.weight")
    grad = backend.reluBackward(output: tape.relu1, gradOutput: c2.gradInput)
    grad = batchNormBackward("\(prefix).1", input: tape.conv1, saved: tape.norm1, gradOutput: grad, gradients: &gradients)
    let c1 = backend.conv3x3Backward(input: tape.input, weight: parameter("\(prefix).0.weight"), gradOutput: grad)
    accumulate(c1.gradWeight, into: &gradients, "\(prefix).0.weight")
    return c1.gradInput
  }

  func batchNormBackward(
    _ prefix: String, input: Tensor<Scalar>, saved: BatchNormSaved<Scalar>, gradOutput: Tensor<Scalar>,
    gradients: inout [Scalar]
  ) -> Tensor<Scalar> {
    let b = backend.batchNormBackward(
      input: input, weight: parameter("\(prefix).weight"), saved: saved, gradOutput: gradOutput)
    accumulate(b.gradWeight, into: &gradients, "\(prefix).weight")
    accumulate(b.gradBias, into: &gradients, "\(prefix).bias")
    return b.gradInput
  }

  /// a + b, element by element (gradients meeting at a fork).
  func added(_ a: Tensor<Scalar>, _ b: Tensor<Scalar>) -> Tensor<Scalar> {
    precondition(a.shape == b.shape, "adding gradients of shapes \(a.shape) and \(b.shape)")
    var sum = a
    for i in 0..<sum.data.count { sum.data[i] += b.data[i] }
    return sum
  }
}
