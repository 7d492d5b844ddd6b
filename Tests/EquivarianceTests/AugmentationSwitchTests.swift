import Reference
import Testing

/// The ablation's switches on the pretraining views (`AugmentationSwitches`): the default is the
/// protocol's draw, bit for bit; a switched-off transform is drawn but not applied; the spatial
/// identity warps nothing. Every switch consumes the same random numbers as the protocol's draw.
@Suite struct AugmentationSwitchTests {
  static let shape = Shape(1, 1, 7, 9)
  static let seeds: [UInt64] = Array(1...200)

  /// One draw with and without switches from the same stream: both parameter sets, and whether the
  /// two streams are at the same place afterwards.
  static func draws(_ switches: AugmentationSwitches, seed: UInt64) -> (plain: IntensityParameters, switched: IntensityParameters, aligned: Bool) {
    var a = SplitMix64(seed: seed), b = SplitMix64(seed: seed)
    let plain = sampleIntensityParameters(rng: &a)
    let switched = sampleIntensityParameters(rng: &b, switches: switches)
    return (plain, switched, a.next() == b.next())
  }

  @Test("the default switches draw the protocol's parameters and transforms, from the same random numbers")
  func defaultsUnchanged() {
    #expect(AugmentationSwitches().isProtocol)
    for seed in Self.seeds {
      let (plain, switched, aligned) = Self.draws(.protocolViews, seed: seed)
      #expect(plain == switched, "seed \(seed)")
      #expect(aligned, "seed \(seed)")
      var a = SplitMix64(seed: seed), b = SplitMix64(seed: seed)
      #expect(sampleSpatialTransform(rng: &a) == sampleSpatialTransform(rng: &b, switches: .protocolViews), "seed \(seed)")
    }
  }

  @Test("a transform left out is absent from every draw, and every other parameter is the protocol's", arguments: IntensityTransform.allCases)
  func leftOutDraws(transform: IntensityTransform) {
    for seed in Self.seeds {
      let (plain, switched, aligned) = Self.draws(AugmentationSwitches(leftOut: [transform]), seed: seed)
      var expected = plain
      switch transform {
      case .noise: expected.noise = nil
      case .blur: expected.blur = nil
      case .gamma: expected.logGamma = nil
      case .biasField: expected.biasCoefficients = nil
      }
      #expect(switched == expected, "\(transform), seed \(seed)")
      #expect(aligned, "\(transform), seed \(seed)")
    }
  }

  @Test("a view whose only transform is switched off is the image itself", arguments: IntensityTransform.allCases)
  func leftOutLeavesImage(transform: IntensityTransform) {
    let image = randomTensor(Self.shape, seed: 41)
    var only = IntensityParameters()
    switch transform {
    case .noise: only.noise = NoiseParameters(sigma: 0.4, seed: 42)
    case .blur: only.blur = BlurParameters(sigmaX: 1.1, sigmaY: 0.7)
    case .gamma: only.logGamma = 0.04
    case .biasField: only.biasCoefficients = (0..<biasFieldTermCount).map { Double($0 % 5) * 0.1 - 0.2 }
    }
    #expect(augmentIntensity(image, parameters: only) != image, "\(transform) changes the image when applied")
    expectExact("\(transform) left out", augmentIntensity(image, parameters: AugmentationSwitches(leftOut: [transform]).apply(to: only)), image)
  }

  @Test("noise scale: sigma times the scale with the same field; scale 0 is the noise left out")
  func noiseScale() {
    for seed in Self.seeds {
      let (plain, scaled, aligned) = Self.draws(AugmentationSwitches(noiseScale: 0.01), seed: seed)
      #expect(aligned)
      #expect(scaled.noise?.sigma == plain.noise.map { $0.sigma * 0.01 }, "seed \(seed)")
      #expect(scaled.noise?.seed == plain.noise?.seed, "seed \(seed)")
      #expect(Self.draws(AugmentationSwitches(noiseScale: 0), seed: seed).switched == Self.draws(AugmentationSwitches(leftOut: [.noise]), seed: seed).switched)
    }
  }

  @Test("spatial identity: every phi is the identity affine, the warp returns its input exactly, and the stream advances as the protocol's")
  func spatialIdentity() {
    let switches = AugmentationSwitches(spatialIdentity: true)
    let image = randomTensor(Shape(2, 1, 9, 13), seed: 43)
    for seed in Self.seeds.prefix(20) {
      var a = SplitMix64(seed: seed), b = SplitMix64(seed: seed)
      _ = sampleSpatialTransform(rng: &a)
      let phi = sampleSpatialTransform(rng: &b, switches: switches)
      #expect(phi.affine == .identity, "seed \(seed)")
      #expect(a.next() == b.next(), "seed \(seed)")
      expectExact("spatial identity warp", warpForward(input: image, affines: [phi.affine, phi.affine]), image)
    }
  }
}
