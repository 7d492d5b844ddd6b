/// Activations the backward pass of a DoubleConv needs.
public struct DoubleConvTape<Scalar: BinaryFloatingPoint & Sendable>: Sendable {
  public var input: Tensor<Scalar>
  public var conv1: Tensor<Scalar>
  public var norm1: BatchNormSaved<Scalar>
  public var relu1: Tensor<Scalar>
  public var conv2: Tensor<Scalar>
  public var norm2: BatchNormSaved<Scalar>
  /// The block's output (after the second ReLU).
  public var output: Tensor<Scalar>
}

/// Activations the backward pass of an Up block needs.
public struct UpTape<Scalar: BinaryFloatingPoint & Sendable>: Sendable {
  /// Input of the transposed convolution (the deeper feature map).
  public var input: Tensor<Scalar>
  /// Channels of the skip connection (first in the concatenation).
  public var skipChannels: Int
  public var block: DoubleConvTape<Scalar>
}

/// Everything the encoder's backward pass needs from its forward pass: `inc` and the `down{k}`
/// blocks, whose last output is the bottleneck.
public struct EncoderTape<Scalar: BinaryFloatingPoint & Sendable>: Sendable {
  public var inc: DoubleConvTape<Scalar>
  /// downs[k - 1]: the pooled input and the DoubleConv of `down{k}`.
  public var downs: [(poolInput: Tensor<Scalar>, block: DoubleConvTape<Scalar>)]
  /// The bottleneck: the output of `down{depth}`, (N, widths[depth], S / 2^depth, S / 2^depth).
  public var bottleneck: Tensor<Scalar> { downs.last!.block.output }
  /// The encoder outputs the decoder's skip connections read, by level: skips[0] is `inc`'s,
  /// skips[k] is `down{k}`'s (k < depth).
  public var skips: [Tensor<Scalar>] { [inc.output] + downs.dropLast().map(\.block.output) }
}

/// Everything the U-Net's backward pass needs from its forward pass.
public struct UNetTape<Scalar: BinaryFloatingPoint & Sendable>: Sendable {
  public var inc: DoubleConvTape<Scalar>
  /// downs[k - 1]: the pooled input and the DoubleConv of `down{k}`.
  public var downs: [(poolInput: Tensor<Scalar>, block: DoubleConvTape<Scalar>)]
  /// ups[k - 1]: `up{k}`.
  public var ups: [UpTape<Scalar>]
  public var output: Tensor<Scalar> { ups.last!.block.output }
  /// The encoder's part of the tape.
  public var encoder: EncoderTape<Scalar> { EncoderTape(inc: inc, downs: downs) }

  /// The tape of the encoder followed by the decoder's `ups`.
  public init(encoder: EncoderTape<Scalar>, ups: [UpTape<Scalar>]) {
    inc = encoder.inc
    downs = encoder.downs
    self.ups = ups
  }
}

extension Pix2RepNetwork {
  // MARK: - U-Net forward

  /// f(x): the U-Net features (N, D, S, S) of images (N, 1, S, S).
  ///
  /// In training mode BatchNorm uses batch statistics and updates the running statistics in
  /// `values` (hence `mutating`); in evaluation mode it uses the running statistics.
  public mutating func backboneForward(_ images: Tensor<Scalar>, training: Bool) -> UNetTape<Scalar> {
    let encoder = encoderForward(images, training: training)
    return UNetTape(encoder: encoder, ups: decoderForward(encoder, training: training))
  }

  /// The encoder alone, `inc` then `down1` … `down{depth}`: images (N, 1, S, S) to the bottleneck
  /// (`EncoderTape.bottleneck`). The decoder does not run (image-level baselines pool the bottleneck).
  public mutating func encoderForward(_ images: Tensor<Scalar>, training: Bool) -> EncoderTape<Scalar> {
    let s = images.shape
    precondition(
      s.c == config.inputChannels && s.h % (1 << config.depth) == 0 && s.w % (1 << config.depth) == 0,
      "U-Net input \(s): needs \(config.inputChannels) channel(s) and sides divisible by \(1 << config.depth)")
    let inc = doubleConvForward("inc.double_conv", images, outputChannels: config.widths[0], training: training)
    var downs: [(poolInput: Tensor<Scalar>, block: DoubleConvTape<Scalar>)] = []
    var x = inc.output
    for k in 1...config.depth {
      let pooled = backend.maxPool2x2Forward(input: x)
      let block = doubleConvForward(
        "down\(k).maxpool_conv.1.double_conv", pooled, outputChannels: config.widths[k], training: training)
      downs.append((x, block))
      x = block.output
    }
    return EncoderTape(inc: inc, downs: downs)
  }

  /// The decoder, `up1` … `up{depth}`, from the encoder's bottleneck and skips; the last block's
  /// output is f(x), (N, D, S, S).
  public mutating func decoderForward(_ encoder: EncoderTape<Scalar>, training: Bool) -> [UpTape<Scalar>] {
    let skips = encoder.skips
    var x = encoder.bottleneck
    var ups: [UpTape<Scalar>] = []
    for k in 1...config.depth {
      let skip = skips[config.depth - k]
      let upsampled = backend.convTranspose2x2Forward(
        input: x, weight: parameter("up\(k).up.weight"), bias: parameter("up\(k).up.bias"))
      let joined = backend.concatChannels(skip, upsampled)
      let out = k == config.depth ? config.features : config.widths[config.depth - k]
      let block = doubleConvForward("up\(k).conv.double_conv", joined, outputChannels: out, training: training)
      ups.append(UpTape(input: x, skipChannels: skip.shape.c, block: block))
      x = block.output
    }
    return ups
  }

  /// [3x3 conv -> BatchNorm -> ReLU] x 2 with the official key prefix (`….double_conv`).
  mutating func doubleConvForward(
    _ prefix: String, _ input: Tensor<Scalar>, outputChannels: Int, training: Bool
  ) -> DoubleConvTape<Scalar> {
    let conv1 = backend.conv3x3Forward(
      input: input, weight: parameter("\(prefix).0.weight"), outputChannels: outputChannels)
    let (norm1Out, norm1) = batchNorm("\(prefix).1", conv1, training: training)
    let relu1 = backend.reluForward(input: norm1Out)
    let conv2 = backend.conv3x3Forward(
      input: relu1, weight: parameter("\(prefix).3.weight"), outputChannels: outputChannels)
    let (norm2Out, norm2) = batchNorm("\(prefix).4", conv2, training: training)
    let output = backend.reluForward(input: norm2Out)
    return DoubleConvTape(
      input: input, conv1: conv1, norm1: norm1, relu1: relu1, conv2: conv2, norm2: norm2, output: output)
  }

  /// BatchNorm with the named layer's affine parameters and running statistics (updated in training).
  mutating func batchNorm(_ prefix: String, _ input: Tensor<Scalar>, training: Bool)
    -> (Tensor<Scalar>, BatchNormSaved<Scalar>)
  {
    var mean = parameter("\(prefix).running_mean")
    var variance = parameter("\(prefix).running_var")
    let result = backend.batchNormForward(
      input: input, weight: parameter("\(prefix).weight"), bias: parameter("\(prefix).bias"),
      runningMean: &mean, runningVariance: &variance, training: training)
    if training {
      setParameter("\(prefix).running_mean", mean)
      setParameter("\(prefix).running_var", variance)
    }
    return result
  }
}
