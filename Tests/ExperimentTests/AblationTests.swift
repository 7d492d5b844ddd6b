import Experiment
import Foundation
import Reference
import Testing

/// `verify ablate`'s grid and stages: one factor differs from the preset at each point, every point
/// is computed once, and the stages are those of the reproduction, in dependency order.
@Suite struct AblationTests {
  static let cpu = AblationGrid(preset: .cpu(seed: 1), values: .standard(preset: "cpu"))
  static let smoke = AblationGrid(preset: .smoke(seed: 1), values: .standard(preset: "smoke"))

  @Test("every factor's table has the preset's level once; every point is one configuration, computed once")
  func levelsAndPoints() {
    for grid in [Self.cpu, Self.smoke] {
      #expect(Set(grid.points.map(\.key)).count == grid.points.count)
      #expect(Set(grid.points.map(\.config)).count == grid.points.count)
      #expect(grid.points.first?.config == grid.preset)
      for factor in AblationFactor.allCases {
        let levels = grid.levels.filter { $0.factor == factor }
        #expect(levels.filter(\.isPreset).count == 1, "\(factor)")
        #expect(levels.allSatisfy { level in grid.points.contains { $0.key == level.point } }, "\(factor)")
      }
      #expect(grid.budgets == [1, 5])
    }
  }

  @Test("the cpu grid is issue 15's: D, M, tau, lengths, noise scales, four augmentations left out, phi the identity")
  func cpuGrid() throws {
    let grid = Self.cpu, preset = grid.preset
    func labels(_ factor: AblationFactor) -> [String] { grid.levels.filter { $0.factor == factor }.map(\.label) }
    #expect(labels(.features) == ["16", "64", "256"])
    #expect(labels(.positions) == ["250", "1000", "4000"])
    #expect(labels(.temperature) == ["0.1", "0.53", "1"])
    #expect(labels(.length) == ["250", "500", "1000", "2000", "4000"])
    #expect(labels(.noise) == ["none", "x0.01", "protocol"])
    #expect(labels(.leftOut).count == 5)
    #expect(labels(.spatial) == ["protocol phi", "identity"])
    // 2 + 2 + 2 + 4 + 2 (noise) + 3 (blur, gamma, bias field; noise left out is noise 0) + 1, and the preset.
    #expect(grid.points.count == 17)
    func config(_ key: String) throws -> ExperimentConfig { try #require(grid.points.first { $0.key == key }).config }
    var expected = preset
    expected.model.features = 256
    #expect(try config("D-256") == expected)
    expected = preset
    expected.pretrainingAugmentation = AugmentationSwitches(noiseScale: 0)
    #expect(try config("noise-0") == expected)
    #expect(grid.levels.first { $0.factor == .leftOut && $0.label == IntensityTransform.noise.title }?.point == "noise-0")
    expected = preset
    expected.pretrainingAugmentation = AugmentationSwitches(leftOut: [.biasField])
    #expect(try config("no-bias-field") == expected)
    expected = preset
    expected.pretrainingSteps = 250
    #expect(try config("steps-250") == expected)
  }

  @Test("stage names are unique, every input is listed earlier at a lower level, and each is a stage of its point's reproduction")
  func stages() throws {
    for grid in [Self.cpu, Self.smoke] {
      let stages = grid.stages()
      #expect(Set(stages.map(\.name)).count == stages.count)
      var seen: [String: Int] = [:]
      for stage in stages {
        for input in stage.inputs {
          let level = try #require(seen[input], "\(stage.name) reads \(input), not listed before it")
          #expect(level < stage.level, "\(stage.name)")
        }
        seen[stage.name] = stage.level
        let parts = stage.name.split(separator: "/", maxSplits: 1).map(String.init)
        let point = try #require(grid.points.first { $0.key == parts[0] })
        #expect(Reproduction.stages(point.config).contains { $0.name == parts[1] }, "\(stage.name)")
      }
      // Per point: a pretraining, 3 methods on each draw of budgets 1 and 5; equivariance for the preset and phi = identity.
      let draws = grid.budgets.reduce(0) { $0 + grid.preset.drawCount(budget: $1) }
      #expect(stages.count == grid.points.count * (1 + 3 * draws) + 2)
    }
  }

  @Test("bad --values are one-line errors naming the value")
  func badValues() {
    var values = AblationValues.standard(preset: "cpu")
    for (factor, text) in [
      (AblationFactor.features, "0"), (.features, "16,x"), (.positions, "1"), (.temperature, "0"), (.temperature, "-1"), (.length, "0"),
      (.noise, "-0.5"), (.leftOut, "inversion"), (.spatial, "rotation"),
    ] {
      #expect(throws: ExperimentError.self, "\(factor)=\(text)") { try values.set(factor, from: text) }
    }
    #expect(throws: Never.self) { try values.set(.features, from: "8, 128") }
    #expect(values.features == [8, 128])
  }

  @Test("a level is compared with the preset in Dice points over the draws both have finished, paired by draw")
  func pairedByDraw() {
    let c = AblationReport.comparison([0.50, nil, 0.70, 0.65], against: [0.40, 0.60, 0.65, nil], label: "test")
    #expect(c.count == 2)
    #expect(c.differences.count == 2)
    for (difference, expected) in zip(c.differences, [10.0, 5.0]) { #expect(abs(difference - expected) < 1e-9) }
    #expect(abs((c.mean ?? .nan) - 7.5) < 1e-9)
    #expect(c.lower != nil && c.upper != nil)
    #expect(AblationReport.comparison([0.5], against: [nil], label: "none").mean == nil)
  }
}
