import Reference
import Testing

/// The flat parameter table: official names, counts and PyTorch's default initialisation.
@Suite struct ParameterLayoutTests {
  @Test func thePaperPresetCountsTheOfficialModelsParameters() {
    let layout = ParameterLayout(config: .paper)
    #expect(layout.trainableCount(.backbone) == 134_883_072)
    #expect(layout.trainableCount(.projection) == 328_704)
    #expect(layout.trainableCount(.segmentation) == 1024 * 4 + 4)
  }

  @Test func namesAreTheOfficialStateDictKeys() {
    let layout = ParameterLayout(config: .paper)
    let expected: [(String, [Int])] = [
      ("inc.double_conv.0.weight", [64, 1, 3, 3]),
      ("inc.double_conv.1.running_mean", [64]),
      ("down1.maxpool_conv.1.double_conv.3.weight", [128, 128, 3, 3]),
      ("down5.maxpool_conv.1.double_conv.0.weight", [2048, 1024, 3, 3]),
      ("up1.up.weight", [2048, 1024, 2, 2]),
      ("up1.conv.double_conv.4.bias", [1024]),
      ("up5.conv.double_conv.0.weight", [1024, 128, 3, 3]),
      ("net.0.weight", [256, 1024, 1, 1]),
      ("net.1.running_var", [256]),
      ("net.3.bias", [256]),
      ("conv.weight", [4, 1024, 1, 1]),
    ]
    for (name, shape) in expected {
      #expect(layout.contains(name), "missing \(name)")
      if layout.contains(name) { #expect(layout[name].shape == shape, "\(name)") }
    }
  }

  @Test func entriesTileTheBufferWithoutGapsOrOverlap() {
    let layout = ParameterLayout(config: .cpu)
    var next = 0
    for entry in layout.entries {
      #expect(entry.offset == next, "\(entry.name) starts at \(entry.offset), expected \(next)")
      next = entry.range.upperBound
    }
    #expect(next == layout.count)
  }

  @Test func initialisationFollowsPyTorchDefaults() {
    let layout = ParameterLayout(config: .smoke)
    var rng = SplitMix64(seed: 3)
    let values = layout.initialValues(rng: &rng)
    for entry in layout.entries {
      let v = values[entry.range]
      switch entry.role {
      case .convWeight, .convBias:
        let bound = 1 / Double(entry.fanIn).squareRoot()
        #expect(v.allSatisfy { abs($0) <= bound }, "\(entry.name) outside ±\(bound)")
        // Over a few hundred draws the extremes approach the bound.
        if v.count >= 200 { #expect(v.max()! > 0.9 * bound && v.min()! < -0.9 * bound, "\(entry.name)") }
      case .bnWeight, .runningVariance: #expect(v.allSatisfy { $0 == 1 }, "\(entry.name)")
      case .bnBias, .runningMean: #expect(v.allSatisfy { $0 == 0 }, "\(entry.name)")
      }
    }
    // ConvTranspose2d takes its fan-in from weight dimension 1 (out channels x 2 x 2), as PyTorch.
    #expect(layout["up1.up.weight"].fanIn == 16 * 4)
  }

  @Test func sameSeedSameBits() {
    let layout = ParameterLayout(config: .smoke)
    var a = SplitMix64(seed: 9), b = SplitMix64(seed: 9), c = SplitMix64(seed: 10)
    let x = layout.initialValues(rng: &a)
    #expect(x == layout.initialValues(rng: &b))
    #expect(x != layout.initialValues(rng: &c))
  }
}
