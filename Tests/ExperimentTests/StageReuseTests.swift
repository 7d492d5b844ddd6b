import Experiment
import Foundation
import Testing

/// `verify reproduce --reuse`: which stages two run folders share, and the copy.
@Suite struct StageReuseTests {
  static let base = RunIdentity(config: ExperimentConfig.smoke(seed: 1), data: "phantom")

  static func with(_ change: (inout ExperimentConfig) -> Void) -> RunIdentity {
    var identity = base
    change(&identity.config)
    return identity
  }

  @Test("a longer pretraining shares the baselines and the random backbone; a larger cap shares the pretrainings")
  func shareableStages() throws {
    let all = Reproduction.stages(Self.base.config).map(\.name)
    #expect(StageReuse.shareable(Self.base, from: Self.base)?.stages == all)

    let longer = try #require(StageReuse.shareable(Self.with { $0.pretrainingSteps *= 2 }, from: Self.base))
    #expect(longer.differing == [.pretrainingSteps])
    #expect(longer.stages.contains("baseline-rate-1") && longer.stages.contains("run-supervised-1-2"))
    #expect(longer.stages.contains("run-mean-teacher-1-1") && longer.stages.contains("run-random-lp-1-1"))
    #expect(longer.stages.contains(where: { $0.hasPrefix("pretrain-") || $0.hasPrefix("run-pix2rep") || $0.hasPrefix("run-simclr") }) == false)
    #expect(!longer.stages.contains("equivariance"))

    let capped = try #require(StageReuse.shareable(Self.with { $0.maxEpochs += 1 }, from: Self.base))
    #expect(Set(capped.stages) == ["pretrain-infoNCE", "pretrain-barlowTwins", "pretrain-simclr", "random-backbone-statistics", "equivariance"])

    #expect(StageReuse.shareable(Self.with { $0.seed += 1 }, from: Self.base) == nil)
    #expect(StageReuse.shareable(Self.with { $0.temperature = 0.1 }, from: Self.base) == nil)
    // A kind of stage not listed counts as reading every option.
    #expect(StageReuse.optionsRead(by: "incontext-infoNCE-1-1") == Set(StageReuse.Option.allCases))
  }

  @Test("the copy brings a stage's result, build record and weights, and a rate choice's first baseline run")
  func copiesFinishedStages() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("stage-reuse-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let source = RunStore(directory: root.appendingPathComponent("source"))
    try source.open(configuration: Self.base, fresh: false)
    try source.save(0.25, stage: "pretrain-infoNCE")
    try Data([1, 2, 3]).write(to: source.weightsURL("pretrain-infoNCE"))
    try source.save(0.001, stage: "baseline-rate-1")
    try source.save(7.0, stage: "run-supervised-1-1")

    let longer = Self.with { $0.pretrainingSteps *= 2 }
    let target = RunStore(directory: root.appendingPathComponent("target"))
    try target.open(configuration: longer, fresh: false)
    #expect(try target.reuseStages(from: source.directory, identity: longer) == ["baseline-rate-1"])
    #expect(try target.load(Double.self, stage: "baseline-rate-1") == 0.001)
    #expect(try target.load(Double.self, stage: "run-supervised-1-1") == 7.0)
    #expect(try target.load(Double.self, stage: "pretrain-infoNCE") == nil)
    #expect(FileManager.default.fileExists(atPath: target.directory.appendingPathComponent("stages/baseline-rate-1.build").path))
    // Finished stages are not copied twice.
    #expect(try target.reuseStages(from: source.directory, identity: longer).isEmpty)

    let capped = Self.with { $0.maxEpochs += 1 }
    let other = RunStore(directory: root.appendingPathComponent("capped"))
    try other.open(configuration: capped, fresh: false)
    #expect(try other.reuseStages(from: source.directory, identity: capped) == ["pretrain-infoNCE"])
    #expect(FileManager.default.contents(atPath: other.weightsURL("pretrain-infoNCE").path) == Data([1, 2, 3]))

    let reseeded = Self.with { $0.seed += 1 }
    #expect(throws: ExperimentError.self) { try other.reuseStages(from: source.directory, identity: reseeded) }
    #expect(throws: ExperimentError.self) { try other.reuseStages(from: root.appendingPathComponent("missing"), identity: capped) }
  }
}
