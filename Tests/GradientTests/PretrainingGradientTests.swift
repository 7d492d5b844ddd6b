import Reference
import Testing
import TestSupport

/// Central differences through one whole tiny pretraining step: both views through U-Net and
/// projection head, the warp of the first view's features, the loss, for every parameter tensor.
@Suite struct PretrainingGradientTests {
  typealias Net = Pix2RepNetwork<ReferenceBackend>
  static let config = ModelConfig.tiny

  static func batch(seed: UInt64) -> PretrainingBatch<Double> {
    let s = config.imageSize
    var rng = SplitMix64(seed: seed, stream: 3)
    func image() -> Tensor<Double> {
      Tensor(shape: Shape(2, 1, s, s), data: (0..<(2 * s * s)).map { _ in rng.normal() })
    }
    // A rotation with a zoom, and a flip with a shift: sources fall between pixels (bilinear weights
    // are smooth there) and some outside the image (excluded from the positions).
    let affines = [
      Affine2D(a: 0.8, b: -0.3, tx: 0.05, c: 0.3, d: 0.8, ty: -0.1),
      Affine2D(a: -0.7, b: 0, tx: 0.2, c: 0, d: 0.9, ty: 0.15),
    ]
    let valid = validityMask(affines: affines, height: s, width: s)
    let positions = samplePixelPositions(valid: valid, count: 7, rng: &rng)
    return PretrainingBatch(view: image(), otherView: image(), affines: affines, positions: positions)
  }

  static let cases: [(PretrainingObjective, String)] = PretrainingObjective.allCases.flatMap { objective in
    ParameterLayout(config: config).entries
      .filter { $0.role.isTrainable && $0.group != .segmentation }
      .map { (objective, $0.name) }
  }

  @Test func theBatchIsAwayFromKinksAtThisSeed() {
    var net = Net(config: Self.config, backend: ReferenceBackend(), seed: 21)
    let b = Self.batch(seed: 4)
    let warped = warpForward(input: b.otherView, affines: b.affines)
    let margin = min(
      NetworkGradientTests.kinkMargin(&net, images: b.view), NetworkGradientTests.kinkMargin(&net, images: warped))
    #expect(margin > 1e-4, "kink margin \(margin): choose another seed")
    #expect(b.positions.count == 7)
  }

  @Test(arguments: cases)
  func centralDifferencesMatchBackpropagation(objective: PretrainingObjective, parameterName: String) throws {
    let settings = PretrainingLoss(objective: objective, temperature: 0.53, lambda: 5e-3)
    let batch = Self.batch(seed: 4)
    var net = Net(config: Self.config, backend: ReferenceBackend(), seed: 21)
    let start = net.values
    let analytic = try #require(net.pretrainingLoss(batch, loss: settings, training: true, computeGradients: true).gradients)
    let entry = net.layout[parameterName]
    let mismatch = FiniteDifference.check(
      "\(objective) \(parameterName)", point: Array(start[entry.range]), analytic: Array(analytic[entry.range]),
      maxSamples: 8
    ) { point in
      var probe = Net(config: Self.config, backend: ReferenceBackend(), values: start)
      probe.setParameter(parameterName, point)
      return probe.pretrainingLoss(batch, loss: settings, training: true, computeGradients: false).loss
    }
    #expect(mismatch == nil, "\(mismatch.map(String.init(describing:)) ?? "")")
  }

  /// The step applies g's last layer to the M sampled rows after the warp; this is the literal
  /// definition (g at every pixel, then the warp, then the rows) it must equal, for both objectives.
  /// The check can fail: scaling net.3's bias by 0.999 on the rows moved the InfoNCE loss by 4.6e-5
  /// (Barlow Twins standardises each feature over the rows, so a bias never changes its loss).
  @Test(arguments: PretrainingObjective.allCases)
  func theLastLayerOnSampledRowsEqualsGThenWarp(objective: PretrainingObjective) {
    let settings = PretrainingLoss(objective: objective, temperature: 0.53, lambda: 5e-3)
    let batch = Self.batch(seed: 4)
    var net = Net(config: Self.config, backend: ReferenceBackend(), seed: 21)
    // A nonzero bias in g's last layer, so the weights' sum at the positions matters.
    let width = net.layout["net.3.bias"].range.count
    net.setParameter("net.3.bias", (0..<width).map { 0.3 * Double($0 % 5) - 0.6 })
    let fast = net.pretrainingLoss(batch, loss: settings, training: true, computeGradients: false).loss

    let z = warpForward(input: net.projectionForward(net.backboneForward(batch.view, training: true).output, training: true).output, affines: batch.affines)
    let other = net.projectionForward(net.backboneForward(warpForward(input: batch.otherView, affines: batch.affines), training: true).output, training: true).output
    let rows = gatherPixels(tensor: z, positions: batch.positions)
    let otherRows = gatherPixels(tensor: other, positions: batch.positions)
    let literal: Double
    switch objective {
    case .infoNCE:
      literal = infoNCE(z: l2NormalizeForward(input: rows), zPrime: l2NormalizeForward(input: otherRows), temperature: 0.53).loss
    case .barlowTwins:
      literal = barlowTwins(z: rows, zPrime: otherRows, lambda: 5e-3).loss
    }
    #expect(abs(fast - literal) <= 1e-9 * max(1, abs(literal)), "\(objective): rows \(fast), literal \(literal)")
  }

  @Test func theSegmentationHeadGetsNoPretrainingGradient() throws {
    var net = Net(config: Self.config, backend: ReferenceBackend(), seed: 21)
    let g = try #require(
      net.pretrainingLoss(Self.batch(seed: 4), loss: PretrainingLoss(objective: .infoNCE), training: true, computeGradients: true).gradients)
    for entry in net.layout.entries where entry.group == .segmentation {
      #expect(g[entry.range].allSatisfy { $0 == 0 }, "\(entry.name)")
    }
  }
}
