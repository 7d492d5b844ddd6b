import Reference
import TestExpectations
import Testing
import TestSupport

/// `reestimateBatchNormStatistics`: the random-backbone control's BatchNorm running statistics.
@Suite struct RunningStatisticsTests {
  static let config = ModelConfig.tiny

  static func images(_ n: Int, seed: UInt64) -> Tensor<Double> {
    var rng = SplitMix64(seed: seed)
    let s = config.imageSize
    return Tensor(shape: Shape(n, 1, s, s), data: (0..<(n * s * s)).map { _ in rng.uniform(-1, 2) })
  }

  /// Per-channel mean and unbiased variance over (N, H, W) of an (N, C, H, W) tensor, in Double.
  static func moments(_ t: Tensor<Double>) -> (mean: [Double], variance: [Double]) {
    let s = t.shape, m = Double(s.n * s.plane)
    var mean = [Double](repeating: 0, count: s.c), variance = mean
    for c in 0..<s.c {
      var sum = 0.0
      for n in 0..<s.n { for y in 0..<s.h { for x in 0..<s.w { sum += t[n, c, y, x] } } }
      mean[c] = sum / m
      var squares = 0.0
      for n in 0..<s.n { for y in 0..<s.h { for x in 0..<s.w { squares += (t[n, c, y, x] - mean[c]) * (t[n, c, y, x] - mean[c]) } } }
      variance[c] = squares / (m - 1)
    }
    return (mean, variance)
  }

  @Test("the first layer's running statistics are the average of its input's batch moments")
  func firstLayerMatchesTheDataMoments() {
    var net = Pix2RepNetwork(config: Self.config, backend: ReferenceBackend(), seed: 7)
    let weights = net.parameter("inc.double_conv.0.weight")
    let batches = [Self.images(3, seed: 1), Self.images(3, seed: 2)]
    let expected = batches.map { Self.moments(conv3x3Forward(input: $0, weight: weights, outputChannels: Self.config.widths[0])) }
    net.reestimateBatchNormStatistics(over: batches)
    let averageMean = (0..<Self.config.widths[0]).map { (expected[0].mean[$0] + expected[1].mean[$0]) / 2 }
    let averageVariance = (0..<Self.config.widths[0]).map { (expected[0].variance[$0] + expected[1].variance[$0]) / 2 }
    expectClose("running_mean", net.parameter("inc.double_conv.1.running_mean"), averageMean, tolerance: .doubleRounding)
    expectClose("running_var", net.parameter("inc.double_conv.1.running_var"), averageVariance, tolerance: .doubleRounding)
  }

  @Test("the second layer sees the first layer normalised with batch statistics (training mode)")
  func secondLayerSeesTrainingModeActivations() {
    var net = Pix2RepNetwork(config: Self.config, backend: ReferenceBackend(), seed: 8)
    let width = Self.config.widths[0]
    let batch = Self.images(2, seed: 3)
    let conv1 = conv3x3Forward(input: batch, weight: net.parameter("inc.double_conv.0.weight"), outputChannels: width)
    var unusedMean = [Double](repeating: 0, count: width), unusedVariance = [Double](repeating: 1, count: width)
    let (normed, _) = batchNormForward(
      input: conv1, weight: net.parameter("inc.double_conv.1.weight"), bias: net.parameter("inc.double_conv.1.bias"),
      runningMean: &unusedMean, runningVariance: &unusedVariance, training: true)
    let conv2 = conv3x3Forward(input: reluForward(input: normed), weight: net.parameter("inc.double_conv.3.weight"), outputChannels: width)
    let expected = Self.moments(conv2)
    net.reestimateBatchNormStatistics(over: [batch])
    expectClose("running_mean", net.parameter("inc.double_conv.4.running_mean"), expected.mean, tolerance: .doubleRounding)
    expectClose("running_var", net.parameter("inc.double_conv.4.running_var"), expected.variance, tolerance: .doubleRounding)
  }

  @Test("no weight changes and the old running statistics do not matter")
  func onlyRunningStatisticsChange() {
    let fresh = Pix2RepNetwork(config: Self.config, backend: ReferenceBackend(), seed: 9)
    var a = fresh, b = fresh
    for entry in b.layout.entries where !entry.role.isTrainable && entry.group == .backbone {
      for i in entry.range { b.values[i] = 123.5 }
    }
    a.reestimateBatchNormStatistics(over: [Self.images(2, seed: 4)])
    b.reestimateBatchNormStatistics(over: [Self.images(2, seed: 4)])
    #expect(a.values == b.values, "re-estimated statistics depend on the old ones")
    for entry in a.layout.entries where entry.role.isTrainable || entry.group != .backbone {
      #expect(Array(a.values[entry.range]) == Array(fresh.values[entry.range]), "\(entry.name) changed")
    }
    let changed = a.layout.entries.filter { !$0.role.isTrainable && $0.group == .backbone }
      .contains { Array(a.values[$0.range]) != Array(fresh.values[$0.range]) }
    #expect(changed, "no running statistic changed")
  }

  @Test("the projection head's statistics are the moments of net.0 · f in training mode; nothing else changes")
  func projectionStatistics() {
    let fresh = Pix2RepNetwork(config: Self.config, backend: ReferenceBackend(), seed: 10)
    var net = fresh
    let batches = [Self.images(2, seed: 5), Self.images(3, seed: 6)]
    let expected = batches.map { batch -> (mean: [Double], variance: [Double]) in
      var copy = fresh
      let features = copy.backboneForward(batch, training: true).output
      return Self.moments(conv1x1Forward(input: features, weight: fresh.parameter("net.0.weight"), bias: fresh.parameter("net.0.bias")))
    }
    net.reestimateProjectionStatistics(over: batches)
    let width = Self.config.projectionHidden
    expectClose("net.1.running_mean", net.parameter("net.1.running_mean"), (0..<width).map { (expected[0].mean[$0] + expected[1].mean[$0]) / 2 }, tolerance: .doubleRounding)
    expectClose("net.1.running_var", net.parameter("net.1.running_var"), (0..<width).map { (expected[0].variance[$0] + expected[1].variance[$0]) / 2 }, tolerance: .doubleRounding)
    for entry in net.layout.entries where !entry.name.hasPrefix("net.1.running") {
      #expect(Array(net.values[entry.range]) == Array(fresh.values[entry.range]), "\(entry.name) changed")
    }
  }
}
