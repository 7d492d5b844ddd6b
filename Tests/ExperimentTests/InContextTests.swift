import Experiment
import Foundation
import Reference
import Testing

/// In-context segmentation and ED-to-ES propagation (docs/PROTOCOL.md section 9): the per-class
/// support sample, the stages, the paired comparisons, and the whole rule on the tiny model.
@Suite struct InContextTests {
  @Test("the support keeps every pixel of a class with at most the limit, exactly the limit of a larger one, seeded")
  func supportSample() {
    // 50 background, 7 RV, 20 MYO, no LV, shuffled.
    var labels = [UInt8](repeating: 0, count: 50) + [UInt8](repeating: 1, count: 7) + [UInt8](repeating: 2, count: 20)
    var shuffle = SplitMix64(seed: 9)
    labels = shuffle.permutation(labels.count).map { labels[$0] }
    var rng = SplitMix64(seed: 1)
    let (positions, sample) = subsampleSupport(labels: labels, classes: 4, limit: 10, rng: &rng)
    #expect(sample.available == [50, 7, 20, 0])
    #expect(sample.used == [10, 7, 10, 0])
    #expect(positions.count == 27 && positions == positions.sorted() && Set(positions).count == 27)
    #expect((0..<4).map { k in positions.filter { labels[$0] == UInt8(k) }.count } == sample.used)
    #expect(labels.indices.filter { labels[$0] == 1 }.allSatisfy(positions.contains), "a class under the limit lost pixels")
    var same = SplitMix64(seed: 1), other = SplitMix64(seed: 2)
    #expect(subsampleSupport(labels: labels, classes: 4, limit: 10, rng: &same).positions == positions)
    #expect(subsampleSupport(labels: labels, classes: 4, limit: 10, rng: &other).positions != positions)
  }

  @Test("in-context stages read their backbone: the pretrainings, or the random backbone's re-estimated statistics")
  func stages() throws {
    let config = ExperimentConfig.smoke(seed: 1)
    let stages = Reproduction.stages(config)
    let byName = Dictionary(uniqueKeysWithValues: stages.map { ($0.name, $0) })
    #expect(byName.count == stages.count, "duplicate stage names")
    #expect(byName["incontext-infoNCE-b1-d1"]?.inputs == ["pretrain-infoNCE"])
    #expect(byName["incontext-barlowTwins-b5-d1"]?.inputs == ["pretrain-barlowTwins"])
    #expect(byName["incontext-random-b1-d2"]?.inputs == ["random-backbone-projection-statistics"])
    #expect(byName["random-backbone-projection-statistics"]?.inputs == ["random-backbone-statistics"])
    for backbone in ["infoNCE", "barlowTwins", "random"] { #expect(byName["propagation-\(backbone)"] != nil) }
    let draws = config.budgets.reduce(0) { $0 + config.drawCount(budget: $1) }
    #expect(stages.filter { $0.name.hasPrefix("incontext-") }.count == 3 * draws)
    for stage in stages {
      for input in stage.inputs { #expect((byName[input]?.level ?? .max) < stage.level, "\(stage.name) reads \(input)") }
    }
  }

  @Test("the in-context comparisons: pretrained above random on every draw reproduces, with the paper's number missing")
  func comparisons() {
    var runs: [RunResult] = []
    for (budget, draws) in [(1, 5), (2, 5)] {
      for d in 1...draws {
        let base = 0.2 + 0.03 * Double(d)
        runs += [
          ClaimTests.run(.randomInContext, budget, d, base), ClaimTests.run(.pix2repInContext, budget, d, base + 0.3),
          ClaimTests.run(.barlowInContext, budget, d, base + 0.3 + (d % 2 == 0 ? 0.01 : -0.01)),
        ]
      }
    }
    let results = Claims.inContext(ResultTable(runs: runs, budgets: [1, 2]))
    #expect(results.count == 3)
    #expect(results.allSatisfy { $0.paper.hasPrefix("missing") && $0.paper.contains("2609.01427") })
    #expect(results[0].verdict == Verdict.reproduced.rawValue && results[1].verdict == Verdict.reproduced.rawValue)
    #expect(results[2].verdict == Verdict.inconclusive.rawValue, "\(results[2].ours)")
    #expect(Claims.evaluate(ResultTable(runs: runs, budgets: [1, 2])).allSatisfy { !$0.claim.contains("in context") })
  }

  /// `count` slices (S = 4) of `patient`'s `phase`, labels in blocks so every class is present.
  static func slices(_ count: Int, patient: Int, phase: String, seed: UInt64, into set: inout SliceSet) {
    var rng = SplitMix64(seed: seed, stream: 7)
    for _ in 0..<count {
      set.append(
        image: (0..<16).map { _ in Float(rng.uniform(0, 1)) }, label: (0..<16).map { UInt8($0 / 4) },
        volume: .init(patient: patient, phase: phase))
    }
  }

  /// The tiny model with D = 16 and a 16-16 projection: with 3 channels a random pixel's ReLU
  /// features are all 0 one time in 8, and such pixels all get the same g(f(x)), whatever their label.
  static let model = ModelConfig(widths: [2, 4, 8], features: 16, imageSize: 4, projectionHidden: 16, projectionOutput: 16)

  @Test("in-context segmentation of the support itself, with no subsampling and distinct features, scores Dice 1")
  func selfSupport() {
    var test = SliceSet(size: 4)
    Self.slices(3, patient: 101, phase: "ED", seed: 1, into: &test)
    Self.slices(2, patient: 101, phase: "ES", seed: 2, into: &test)
    let net = Pix2RepNetwork(config: Self.model, backend: ReferenceBackend(), seed: 4)
    let (scores, sample) = segmentInContext(net, support: test, test: test, limit: 1000, seed: 1, batchSize: 2)
    #expect(sample.used == sample.available && sample.available == [20, 20, 20, 20])
    #expect(scores.count == 2)
    for score in scores { #expect(score.dice == [1, 1, 1], "\(score)") }
  }

  @Test("propagation labels each patient's ES volume from its ED volume, seeded, and keeps the pictured slices")
  func propagation() {
    var test = SliceSet(size: 4)
    for patient in [101, 102] {
      Self.slices(3, patient: patient, phase: "ED", seed: UInt64(patient), into: &test)
      Self.slices(2, patient: patient, phase: "ES", seed: UInt64(patient) + 50, into: &test)
    }
    let net = Pix2RepNetwork(config: .tiny, backend: ReferenceBackend(), seed: 5)
    let a = propagateEndDiastole(net, backbone: .random, test: test, limit: 3, seed: 7, batchSize: 2)
    let b = propagateEndDiastole(net, backbone: .random, test: test, limit: 3, seed: 7, batchSize: 2)
    #expect(a.volumes.map(\.patient) == [101, 102] && a.volumes.allSatisfy { $0.phase == "ES" })
    #expect(a.supports.allSatisfy { $0.used == [3, 3, 3, 3] && $0.available == [12, 12, 12, 12] })
    #expect(a.volumes == b.volumes && a.pictured.map(\.labels) == b.pictured.map(\.labels))
    #expect(!a.pictured.isEmpty && a.pictured.allSatisfy { $0.labels.count == 16 })
  }
}
