import Reference
import Testing
import TestSupport

/// The U-Net split into an encoder and a decoder (`encoderForward`, `decoderForward`,
/// `decoderBackward`, `encoderBackward`): the composition is the whole network of before, bit for
/// bit, and `encoderBackward` alone (the image-level baselines' backward, which starts at the
/// bottleneck) matches central differences.
@Suite struct EncoderSplitTests {
  typealias Net = Pix2RepNetwork<ReferenceBackend>
  static let config = ModelConfig.tiny

  // MARK: - The whole network as it was written before the split

  /// One DoubleConv's activations.
  struct Block {
    var input, conv1: Tensor<Double>
    var norm1: BatchNormSaved<Double>
    var relu1, conv2: Tensor<Double>
    var norm2: BatchNormSaved<Double>
    var output: Tensor<Double>
  }

  /// Activations of the pre-split U-Net, in the order it recorded them.
  struct WholeTape {
    var blocks: [String: Block] = [:]
    var poolInputs: [Tensor<Double>] = []
    var upInputs: [Tensor<Double>] = []
    var skipChannels: [Int] = []
    var output: Tensor<Double>
  }

  /// The pre-split `backboneForward`: inc, the downs, then the ups, in one function.
  static func wholeForward(_ net: inout Net, _ images: Tensor<Double>) -> WholeTape {
    let c = net.config
    var blocks: [String: Block] = [:]
    let inc = doubleConv(&net, "inc.double_conv", images, c.widths[0])
    blocks["inc"] = inc
    var outputs = [inc.output]
    var poolInputs: [Tensor<Double>] = []
    var x = inc.output
    for k in 1...c.depth {
      poolInputs.append(x)
      let block = doubleConv(&net, "down\(k).maxpool_conv.1.double_conv", net.backend.maxPool2x2Forward(input: x), c.widths[k])
      blocks["down\(k)"] = block
      x = block.output
      outputs.append(x)
    }
    var upInputs: [Tensor<Double>] = [], skipChannels: [Int] = []
    for k in 1...c.depth {
      let skip = outputs[c.depth - k]
      let up = net.backend.convTranspose2x2Forward(input: x, weight: net.parameter("up\(k).up.weight"), bias: net.parameter("up\(k).up.bias"))
      upInputs.append(x)
      skipChannels.append(skip.shape.c)
      let block = doubleConv(&net, "up\(k).conv.double_conv", net.backend.concatChannels(skip, up), k == c.depth ? c.features : c.widths[c.depth - k])
      blocks["up\(k)"] = block
      x = block.output
    }
    return WholeTape(blocks: blocks, poolInputs: poolInputs, upInputs: upInputs, skipChannels: skipChannels, output: x)
  }

  static func doubleConv(_ net: inout Net, _ prefix: String, _ input: Tensor<Double>, _ out: Int) -> Block {
    let conv1 = net.backend.conv3x3Forward(input: input, weight: net.parameter("\(prefix).0.weight"), outputChannels: out)
    let (n1, s1) = norm(&net, "\(prefix).1", conv1)
    let relu1 = net.backend.reluForward(input: n1)
    let conv2 = net.backend.conv3x3Forward(input: relu1, weight: net.parameter("\(prefix).3.weight"), outputChannels: out)
    let (n2, s2) = norm(&net, "\(prefix).4", conv2)
    return Block(input: input, conv1: conv1, norm1: s1, relu1: relu1, conv2: conv2, norm2: s2, output: net.backend.reluForward(input: n2))
  }

  static func norm(_ net: inout Net, _ prefix: String, _ x: Tensor<Double>) -> (Tensor<Double>, BatchNormSaved<Double>) {
    var mean = net.parameter("\(prefix).running_mean"), variance = net.parameter("\(prefix).running_var")
    let r = net.backend.batchNormForward(
      input: x, weight: net.parameter("\(prefix).weight"), bias: net.parameter("\(prefix).bias"),
      runningMean: &mean, runningVariance: &variance, training: true)
    net.setParameter("\(prefix).running_mean", mean)
    net.setParameter("\(prefix).running_var", variance)
    return r
  }

  /// The pre-split `backboneBackward`: the ups, then the downs with the skip gradients added.
  static func wholeBackward(_ net: Net, _ tape: WholeTape, _ gradOutput: Tensor<Double>, _ g: inout [Double]) -> Tensor<Double> {
    let depth = net.config.depth
    var skipGradients = [Tensor<Double>?](repeating: nil, count: depth)
    var grad = gradOutput
    for k in stride(from: depth, through: 1, by: -1) {
      let joined = doubleConvBack(net, "up\(k).conv.double_conv", tape.blocks["up\(k)"]!, grad, &g)
      let (gradSkip, gradUp) = net.backend.splitChannels(joined, firstChannels: tape.skipChannels[k - 1])
      skipGradients[depth - k] = gradSkip
      let t = net.backend.convTranspose2x2Backward(input: tape.upInputs[k - 1], weight: net.parameter("up\(k).up.weight"), gradOutput: gradUp)
      net.accumulate(t.gradWeight, into: &g, "up\(k).up.weight")
      net.accumulate(t.gradBias, into: &g, "up\(k).up.bias")
      grad = t.gradInput
    }
    for k in stride(from: depth, through: 1, by: -1) {
      let gradPooled = doubleConvBack(net, "down\(k).maxpool_conv.1.double_conv", tape.blocks["down\(k)"]!, grad, &g)
      grad = net.backend.maxPool2x2Backward(input: tape.poolInputs[k - 1], gradOutput: gradPooled)
      let skip = skipGradients[k - 1]!
      for i in 0..<grad.data.count { grad.data[i] += skip.data[i] }
    }
    return doubleConvBack(net, "inc.double_conv", tape.blocks["inc"]!, grad, &g)
  }

  static func doubleConvBack(_ net: Net, _ prefix: String, _ t: Block, _ gradOutput: Tensor<Double>, _ g: inout [Double]) -> Tensor<Double> {
    func normBack(_ name: String, _ input: Tensor<Double>, _ saved: BatchNormSaved<Double>, _ grad: Tensor<Double>) -> Tensor<Double> {
      let b = net.backend.batchNormBackward(input: input, weight: net.parameter("\(name).weight"), saved: saved, gradOutput: grad)
      net.accumulate(b.gradWeight, into: &g, "\(name).weight")
      net.accumulate(b.gradBias, into: &g, "\(name).bias")
      return b.gradInput
    }
    var grad = net.backend.reluBackward(output: t.output, gradOutput: gradOutput)
    grad = normBack("\(prefix).4", t.conv2, t.norm2, grad)
    let c2 = net.backend.conv3x3Backward(input: t.relu1, weight: net.parameter("\(prefix).3.weight"), gradOutput: grad)
    net.accumulate(c2.gradWeight, into: &g, "\(prefix).3.weight")
    grad = net.backend.reluBackward(output: t.relu1, gradOutput: c2.gradInput)
    grad = normBack("\(prefix).1", t.conv1, t.norm1, grad)
    let c1 = net.backend.conv3x3Backward(input: t.input, weight: net.parameter("\(prefix).0.weight"), gradOutput: grad)
    net.accumulate(c1.gradWeight, into: &g, "\(prefix).0.weight")
    return c1.gradInput
  }

  // MARK: - Tests

  @Test("the split forward and backward equal the pre-split whole network bit for bit (outputs, running statistics, every gradient, dL/dimages)")
  func splitEqualsWholeNetwork() {
    let images = NetworkGradientTests.problem(seed: 5).images
    var whole = Net(config: Self.config, backend: ReferenceBackend(), seed: 11)
    var split = whole
    let wholeTape = Self.wholeForward(&whole, images)
    let encoder = split.encoderForward(images, training: true)
    let ups = split.decoderForward(encoder, training: true)
    let splitTape = UNetTape(encoder: encoder, ups: ups)
    #expect(splitTape.output == wholeTape.output, "forward output")
    #expect(split.values == whole.values, "running statistics after the training-mode forward")
    let upstream = Tensor(shape: wholeTape.output.shape, data: FiniteDifference.upstream(count: wholeTape.output.shape.count, seed: 31))
    var wholeGradients = whole.zeroGradients(), splitGradients = split.zeroGradients()
    let wholeInput = Self.wholeBackward(whole, wholeTape, upstream, &wholeGradients)
    let decoder = split.decoderBackward(splitTape, gradOutput: upstream, gradients: &splitGradients)
    #expect(decoder.skips.allSatisfy { $0 != nil }, "every skip receives a gradient from the decoder")
    let splitInput = split.encoderBackward(encoder, gradBottleneck: decoder.gradBottleneck, skips: decoder.skips, gradients: &splitGradients)
    #expect(splitInput == wholeInput, "dL/dimages")
    for entry in whole.layout.entries {
      #expect(Array(splitGradients[entry.range]) == Array(wholeGradients[entry.range]), "gradient of \(entry.name)")
    }
    // And backboneBackward, now written as the two halves, is the same function.
    var combined = split.zeroGradients()
    let combinedInput = split.backboneBackward(splitTape, gradOutput: upstream, gradients: &combined)
    #expect(combined == wholeGradients && combinedInput == wholeInput, "backboneBackward")
  }

  /// L = sum(bottleneck · dB) + sum over the levels with a skip gradient of sum(skips[k] · dS_k).
  static func encoderLoss(_ net: inout Net, images: Tensor<Double>, withSkips: Bool, gradients: inout [Double]?) -> Double {
    let tape = net.encoderForward(images, training: true)
    let dB = FiniteDifference.upstream(count: tape.bottleneck.shape.count, seed: 41)
    let skipOutputs = tape.skips
    let dS: [[Double]?] = skipOutputs.enumerated().map { k, s in
      withSkips && k != 1 ? FiniteDifference.upstream(count: s.shape.count, seed: 50 + UInt64(k)) : nil
    }
    var value = FiniteDifference.dot(tape.bottleneck.data, dB)
    for (s, d) in zip(skipOutputs, dS) { if let d { value += FiniteDifference.dot(s.data, d) } }
    if gradients != nil {
      var g = net.zeroGradients()
      let skips = zip(skipOutputs, dS).map { s, d in d.map { Tensor(shape: s.shape, data: $0) } }
      net.encoderBackward(tape, gradBottleneck: Tensor(shape: tape.bottleneck.shape, data: dB), skips: skips, gradients: &g)
      gradients = g
    }
    return value
  }

  static let encoderParameters = ParameterLayout(config: config).entries
    .filter { $0.role.isTrainable && ($0.name.hasPrefix("inc.") || $0.name.hasPrefix("down")) }.map(\.name)

  @Test("encoderBackward matches central differences (bottleneck only, and with some skip gradients)", arguments: encoderParameters, [false, true])
  func encoderBackwardMatchesCentralDifferences(parameterName: String, withSkips: Bool) throws {
    var net = Net(config: Self.config, backend: ReferenceBackend(), seed: 11)
    let images = NetworkGradientTests.problem(seed: 5).images
    var gradients: [Double]? = []
    _ = Self.encoderLoss(&net, images: images, withSkips: withSkips, gradients: &gradients)
    let analytic = try #require(gradients)
    let entry = net.layout[parameterName]
    let start = net.values
    let mismatch = FiniteDifference.check(
      parameterName, point: Array(start[entry.range]), analytic: Array(analytic[entry.range]), maxSamples: 12
    ) { point in
      var probe = Net(config: Self.config, backend: ReferenceBackend(), values: start)
      probe.setParameter(parameterName, point)
      var none: [Double]? = nil
      return Self.encoderLoss(&probe, images: images, withSkips: withSkips, gradients: &none)
    }
    #expect(mismatch == nil, "\(mismatch.map(String.init(describing:)) ?? "")")
  }

  @Test("encoderBackward leaves every decoder and head gradient at zero")
  func encoderBackwardTouchesOnlyTheEncoder() {
    var net = Net(config: Self.config, backend: ReferenceBackend(), seed: 11)
    var gradients: [Double]? = []
    _ = Self.encoderLoss(&net, images: NetworkGradientTests.problem(seed: 5).images, withSkips: false, gradients: &gradients)
    for entry in net.layout.entries where !Self.encoderParameters.contains(entry.name) {
      #expect(gradients![entry.range].allSatisfy { $0 == 0 }, "\(entry.name) has a gradient")
    }
  }
}
