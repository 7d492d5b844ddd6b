import Reference
import Testing
import TestSupport

/// Central differences through the whole tiny network (U-Net, projection head and segmentation
/// head together, BatchNorm in training mode), for every parameter tensor.
@Suite struct NetworkGradientTests {
  typealias Net = Pix2RepNetwork<ReferenceBackend>
  static let config = ModelConfig.tiny

  /// Images (2, 1, 4, 4) and upstream gradients for both heads, all seeded.
  struct Problem {
    var images: Tensor<Double>
    var projectionUpstream: [Double]
    var segmentationUpstream: [Double]
  }

  static func problem(seed: UInt64) -> Problem {
    let s = config.imageSize
    var rng = SplitMix64(seed: seed, stream: 7)
    let images = Tensor<Double>(shape: Shape(2, 1, s, s), data: (0..<(2 * s * s)).map { _ in rng.normal() })
    return Problem(
      images: images,
      projectionUpstream: FiniteDifference.upstream(count: 2 * config.projectionOutput * s * s, seed: seed + 1),
      segmentationUpstream: FiniteDifference.upstream(count: 2 * config.classes * s * s, seed: seed + 2))
  }

  /// L = sum(g(f(x)) · dz) + sum(head(f(x)) · dy) and, when asked, its gradient.
  static func loss(_ net: inout Net, _ p: Problem, gradients: inout [Double]?) -> Double {
    let tape = net.backboneForward(p.images, training: true)
    let projection = net.projectionForward(tape.output, training: true)
    let logits = net.segmentationForward(tape.output)
    let value =
      FiniteDifference.dot(projection.output.data, p.projectionUpstream)
      + FiniteDifference.dot(logits.data, p.segmentationUpstream)
    if gradients != nil {
      var g = net.zeroGradients()
      let gradProjection = Tensor(shape: projection.output.shape, data: p.projectionUpstream)
      let gradLogits = Tensor(shape: logits.shape, data: p.segmentationUpstream)
      var gradFeatures = net.projectionBackward(projection, gradOutput: gradProjection, gradients: &g)
      let fromHead = net.segmentationBackward(features: tape.output, gradLogits: gradLogits, gradients: &g)
      for i in 0..<gradFeatures.data.count { gradFeatures.data[i] += fromHead.data[i] }
      net.backboneBackward(tape, gradOutput: gradFeatures, gradients: &g)
      gradients = g
    }
    return value
  }

  /// The smallest distance of any pre-ReLU value from 0 and of any max-pool winner from its
  /// runner-up: finite differences are only valid where no step of ±h crosses a kink.
  static func kinkMargin(_ net: inout Net, images: Tensor<Double>) -> Double {
    let tape = net.backboneForward(images, training: true)
    let projection = net.projectionForward(tape.output, training: true)
    // BN weight is 1 and bias 0 at initialisation, so the pre-ReLU value is the normalised one.
    var normalised: [(Tensor<Double>, BatchNormSaved<Double>)] = [(projection.beforeNorm, projection.norm)]
    for block in [tape.inc] + tape.downs.map(\.block) + tape.ups.map(\.block) {
      normalised += [(block.conv1, block.norm1), (block.conv2, block.norm2)]
    }
    var margin = Double.infinity
    for (t, saved) in normalised {
      let s = t.shape
      for n in 0..<s.n { for c in 0..<s.c { for y in 0..<s.h { for x in 0..<s.w {
        margin = min(margin, abs((t[n, c, y, x] - saved.mean[c]) * saved.inverseStd[c]))
      } } } }
    }
    for down in tape.downs {
      let t = down.poolInput
      let s = t.shape
      for n in 0..<s.n { for c in 0..<s.c { for y in stride(from: 0, to: s.h, by: 2) { for x in stride(from: 0, to: s.w, by: 2) {
        let window = [t[n, c, y, x], t[n, c, y, x + 1], t[n, c, y + 1, x], t[n, c, y + 1, x + 1]].sorted()
        // An all-zero window (every input cut by its ReLU) stays zero within the ReLU margin above.
        if window[3] > 0 { margin = min(margin, window[3] - window[2]) }
      } } } }
    }
    return margin
  }

  @Test func theTinyNetworkIsAwayFromKinksAtThisSeed() {
    var net = Net(config: Self.config, backend: ReferenceBackend(), seed: 11)
    let margin = Self.kinkMargin(&net, images: Self.problem(seed: 5).images)
    // With h = 1e-6 on a parameter, activations move by far less than 1e-4.
    #expect(margin > 1e-4, "kink margin \(margin): choose another seed")
  }

  @Test(arguments: ParameterLayout(config: config).entries.filter { $0.role.isTrainable }.map(\.name))
  func centralDifferencesMatchBackpropagation(parameterName: String) throws {
    var net = Net(config: Self.config, backend: ReferenceBackend(), seed: 11)
    let p = Self.problem(seed: 5)
    var gradients: [Double]? = []
    _ = Self.loss(&net, p, gradients: &gradients)
    let analytic = try #require(gradients)
    let entry = net.layout[parameterName]
    let start = net.values
    let mismatch = FiniteDifference.check(
      parameterName, point: Array(start[entry.range]), analytic: Array(analytic[entry.range]), maxSamples: 12
    ) { point in
      var probe = Net(config: Self.config, backend: ReferenceBackend(), values: start)
      probe.setParameter(parameterName, point)
      var none: [Double]? = nil
      return Self.loss(&probe, p, gradients: &none)
    }
    #expect(mismatch == nil, "\(mismatch.map(String.init(describing:)) ?? "")")
  }

  @Test func runningStatisticsGetNoGradient() {
    var net = Net(config: Self.config, backend: ReferenceBackend(), seed: 11)
    var gradients: [Double]? = []
    _ = Self.loss(&net, Self.problem(seed: 5), gradients: &gradients)
    for entry in net.layout.entries where !entry.role.isTrainable {
      #expect(gradients![entry.range].allSatisfy { $0 == 0 }, "\(entry.name) has a gradient")
    }
  }
}
