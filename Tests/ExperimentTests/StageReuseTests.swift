import Experiment
import Foundation
import Optimized
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

    // Other evaluation-mode convolutions: only what never runs the inference network is shared.
    let otherConvolutions = try #require(StageReuse.shareable(Self.with { $0.inferenceConvolutions = .winograd4x4 }, from: Self.base))
    #expect(otherConvolutions.differing == [.inferenceConvolutions])
    #expect(Set(otherConvolutions.stages) == ["pretrain-infoNCE", "pretrain-barlowTwins", "pretrain-simclr", "random-backbone-statistics", "equivariance"])
    // With the cap as well, a run stopped by patience is not shared: its validations ran the other network.
    let both = try #require(StageReuse.shareable(
      Self.with { $0.inferenceConvolutions = .winograd4x4; $0.maxEpochs += 1 }, from: Self.base) { _ in
        Self.run(.pix2repFineTune, steps: 20, .patience)
      })
    #expect(!both.stages.contains(where: { $0.hasPrefix("run-") || $0.hasPrefix("baseline-") }))

    #expect(StageReuse.shareable(Self.with { $0.seed += 1 }, from: Self.base) == nil)
    #expect(StageReuse.shareable(Self.with { $0.temperature = 0.1 }, from: Self.base) == nil)
    // A kind of stage not listed counts as reading every option.
    #expect(StageReuse.optionsRead(by: "incontext-infoNCE-1-1") == Set(StageReuse.Option.allCases))
  }

  /// A smoke-preset downstream run (budget 1: 2 steps an epoch, validation every 5 steps, cap 15
  /// epochs = 30 steps) that stopped after `steps` steps for `reason`.
  static func run(_ method: Method, steps: Int, _ reason: StopReason) -> RunResult {
    let volumes = [VolumeScore(patient: 1, phase: "ED", dice: [0.5, 0.6, 0.7])]
    var run = RunResult(
      method: method, budget: 1, draw: 1, patients: [1], summary: DiceSummary(volumes), volumes: volumes, chosenLearningRate: nil,
      steps: steps, bestValidationLoss: 0.5, seconds: 1)
    run.schedule = base.config.downstreamSchedule(trainingSlices: 20)
    run.stopReason = reason
    return run
  }

  @Test("across epoch caps, the downstream runs that stopped by patience within both caps are shared")
  func runsStoppedWithinCaps() throws {
    let schedule = Self.base.config.downstreamSchedule(trainingSlices: 20)
    #expect(schedule.stepsPerEpoch == 2 && schedule.validationInterval == 5 && schedule.maxSteps == 30)
    let source: [String: RunResult] = [
      "run-pix2rep-ft-1-1": Self.run(.pix2repFineTune, steps: 20, .patience),
      "run-pix2rep-lp-1-1": Self.run(.pix2repLinear, steps: 30, .cap),
      "run-pix2rep-v2-ft-1-1": Self.run(.barlowFineTune, steps: 25, .patience),
      "baseline-1-lr-5e-05": Self.run(.supervised, steps: 15, .patience),
      "baseline-1-lr-0.00047": Self.run(.supervised, steps: 20, .patience),
      "baseline-1-lr-0.001": Self.run(.supervised, steps: 25, .patience),
      "run-supervised-1-1": Self.run(.supervised, steps: 20, .patience),
    ]
    let larger = try #require(StageReuse.shareable(Self.with { $0.maxEpochs = 40 }, from: Self.base) { source[$0] })
    #expect(larger.differing == [.maxEpochs])
    for stage in ["run-pix2rep-ft-1-1", "run-pix2rep-v2-ft-1-1", "baseline-1-lr-0.001", "baseline-rate-1"] {
      #expect(larger.stages.contains(stage), "\(stage)")
    }
    // Stopped by the cap, or not finished in the source folder: computed anew.
    #expect(!larger.stages.contains("run-pix2rep-lp-1-1") && !larger.stages.contains("run-pix2rep-ft-1-2"))
    // A smaller cap (10 epochs = 20 steps) shares only the runs that stopped within it.
    let smaller = try #require(StageReuse.shareable(Self.with { $0.maxEpochs = 10 }, from: Self.base) { source[$0] })
    #expect(smaller.stages.contains("run-pix2rep-ft-1-1") && smaller.stages.contains("baseline-1-lr-5e-05"))
    #expect(!smaller.stages.contains("run-pix2rep-v2-ft-1-1") && !smaller.stages.contains("baseline-rate-1"))
    // A run stopped by patience at its cap's extra validation (not a multiple of the interval) is not shared.
    #expect(!StageReuse.stoppedWithinCaps(Self.run(.pix2repFineTune, steps: 28, .patience), maxEpochs: 40))
  }

  @Test("a run shared across caps is copied with the schedule of the folder it is copied into")
  func copiesRunsAcrossCaps() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("stage-reuse-caps-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let source = RunStore(directory: root.appendingPathComponent("source"))
    try source.open(configuration: Self.base, fresh: false)
    try source.save(0.25, stage: "pretrain-infoNCE")
    try source.save(Self.run(.pix2repFineTune, steps: 20, .patience), stage: "run-pix2rep-ft-1-1")
    try source.save(Self.run(.pix2repFineTune, steps: 30, .cap), stage: "run-pix2rep-ft-1-2")
    let larger = Self.with { $0.maxEpochs = 40 }
    let target = RunStore(directory: root.appendingPathComponent("target"))
    try target.open(configuration: larger, fresh: false)
    #expect(try target.reuseStages(from: source.directory, identity: larger) == ["pretrain-infoNCE", "run-pix2rep-ft-1-1"])
    let copied = try #require(try target.load(RunResult.self, stage: "run-pix2rep-ft-1-1"))
    #expect(copied.schedule?.maxSteps == 80 && copied.steps == 20 && copied.stopReason == .patience)
    var expected = Self.run(.pix2repFineTune, steps: 20, .patience)
    expected.schedule?.maxSteps = 80
    #expect(copied == expected)
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
