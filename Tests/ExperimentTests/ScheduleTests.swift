import Experiment
import Foundation
import Reference
import Testing

/// The downstream schedule (validation interval, patience, cap) and the pretraining flatness figure.
@Suite struct ScheduleTests {
  @Test("the estimate assumes a run's best near step 2000, then patience, within the cap")
  func assumedSteps() {
    let config = ExperimentConfig.cpu(seed: 1)
    // One patient: the cap (400 steps) comes first.
    #expect(Plan.assumedSteps(config.downstreamSchedule(trainingSlices: 18)) == 400)
    // 100 patients, 1776 slices: epochs of 111 steps; best at validation 19 (step 2109), 6 more.
    let hundred = config.downstreamSchedule(trainingSlices: 1776)
    #expect(hundred.validationInterval == 111)
    #expect(Plan.assumedSteps(hundred) == 25 * 111)
    // An interval that divides 2000: best at step 2000 exactly, then 6 validations of 20 steps.
    #expect(Plan.assumedSteps(DownstreamSchedule(stepsPerEpoch: 20, validationInterval: 20, maxSteps: 10_000, patience: 6)) == 2120)
  }

  @Test("a run resuming from its checkpoint counts only the steps it still has to go")
  func stepsLeftAfterACheckpoint() {
    let hundred = ExperimentConfig.cpu(seed: 1).downstreamSchedule(trainingSlices: 1776)  // 111 steps a validation, cap 22,200
    #expect(Plan.stepsLeft(hundred, resumed: nil) == (666, 25 * 111, 22_200))
    // Half-way to the assumed length: the rest of it.
    let half = CheckpointedProgress(step: 12 * 111, sinceBest: 0, seconds: 1)
    #expect(Plan.stepsLeft(hundred, resumed: half) == (666, 13 * 111, 22_200 - 12 * 111))
    // Past the assumed length, still finding new bests (the 100-patient Mean Teacher run at step
    // 7,992): at least the patience it has left, 4 validations after 2 without a new best.
    let past = CheckpointedProgress(step: 72 * 111, sinceBest: 2, seconds: 1)
    #expect(Plan.stepsLeft(hundred, resumed: past) == (4 * 111, 4 * 111, 22_200 - 72 * 111))
    // Near the cap: no more than the cap allows.
    let nearCap = CheckpointedProgress(step: 22_200 - 50, sinceBest: 0, seconds: 1)
    #expect(Plan.stepsLeft(hundred, resumed: nearCap) == (50, 50, 50))
  }

  @Test("an epoch is ceil(slices / batch) steps; validation every epoch or 20 steps, whichever is longer")
  func scheduleArithmetic() {
    let config = ExperimentConfig.cpu(seed: 1)
    let onePatient = config.downstreamSchedule(trainingSlices: 18)
    #expect(onePatient == DownstreamSchedule(stepsPerEpoch: 2, validationInterval: 20, maxSteps: 400, patience: 6))
    #expect(onePatient.minimumSteps == 120)
    let hundred = config.downstreamSchedule(trainingSlices: 1800)
    #expect(hundred == DownstreamSchedule(stepsPerEpoch: 113, validationInterval: 113, maxSteps: 22_600, patience: 6))
  }

  @Test("the last quarter's relative change compares the last validation with the one nearest 3/4 of the steps")
  func relativeChangeOverTheLastQuarter() {
    let curve = [(100, 8.0), (200, 7.0), (300, 6.0), (400, 5.5)].map { CurvePoint(step: $0.0, loss: $0.1) }
    let change = PretrainingOutcome.relativeChangeLastQuarter(curve, steps: 400)
    #expect(change.map { abs($0 - (5.5 - 6) / 6) < 1e-12 } == true, "\(String(describing: change))")
    #expect(PretrainingOutcome.relativeChangeLastQuarter([CurvePoint(step: 400, loss: 1)], steps: 400) == nil)
  }

  @Test("one long pretraining gives the last-quarter change of the shorter lengths (a quarter, a half, three quarters)")
  func changesAtShorterLengths() {
    let losses = [9.0, 8.0, 7.0, 6.5, 6.0, 5.9, 5.8, 5.79]
    let outcome = PretrainingOutcome(
      objective: .barlowTwins, steps: 800, bestStep: 800, bestValidationLoss: 5.79, training: [],
      validation: losses.enumerated().map { CurvePoint(step: 100 * ($0.offset + 1), loss: $0.element) }, seconds: 1,
      relativeChangeLastQuarter: nil)
    let shorter = outcome.changesAtShorterLengths
    // 200 steps: 8 against step 100's 9 (the validation nearest 150); 400 steps: 6.5 against
    // step 300's 7; 600 steps: 5.9 against step 400's 6.5 (400 and 500 are equally near 450: the
    // first wins).
    #expect(shorter.map { $0.steps } == [200, 400, 600])
    let expected = [(8.0 - 9) / 9, (6.5 - 7) / 7, (5.9 - 6.5) / 6.5]
    #expect(zip(shorter.map { $0.change }, expected).allSatisfy { abs($0 - $1) < 1e-12 }, "\(shorter)")
    #expect(outcome.reportLine("barlowTwins").contains("had it stopped earlier: -11.11% at 200, -7.14% at 400, -9.23% at 600 steps"))
  }

  @Test("a downstream run's last-quarter change compares its best validation with its best up to 3/4 of the steps")
  func downstreamChangeOverTheLastQuarter() {
    var run = ClaimTests.run(.pix2repFineTune, 1, 1, 0.5)
    run.steps = 400
    // Best up to step 300 is 0.4 (at 200; 300 is worse); the best overall is 0.3 at 400.
    run.curve = [(0, 0.9), (100, 0.5), (200, 0.4), (300, 0.45), (400, 0.3)].map { CurvePoint(step: $0.0, loss: $0.1) }
    let change = run.relativeChangeLastQuarter
    #expect(change.map { abs($0 - (0.3 - 0.4) / 0.4) < 1e-12 } == true, "\(String(describing: change))")
    // A run whose best came early and did not improve after: 0.
    run.curve = [(0, 0.9), (100, 0.2), (200, 0.4), (300, 0.45), (400, 0.3)].map { CurvePoint(step: $0.0, loss: $0.1) }
    #expect(run.relativeChangeLastQuarter == 0)
    run.curve = nil
    #expect(run.relativeChangeLastQuarter == nil)
  }

  /// Four labelled 4 x 4 slices of the tiny model, each with every class.
  static func slices(seed: UInt64) -> SliceSet {
    var rng = SplitMix64(seed: seed)
    var set = SliceSet(size: 4)
    for i in 0..<4 {
      set.append(
        image: (0..<16).map { _ in Float(rng.uniform()) }, label: (0..<16).map { UInt8($0 % 4) },
        volume: .init(patient: i / 2, phase: "ED"))
    }
    return set
  }

  /// The tiny model's seeded initial values.
  static let initial = Pix2RepNetwork(config: .tiny, backend: ReferenceBackend(), seed: 5).values.map { Float($0) }

  /// A downstream run of the tiny model on the reference, with the smoke preset changed by `change`.
  static func train(
    _ mode: DownstreamMode, validationSeed: UInt64, checkpoint: CheckpointPolicy? = nil, _ change: (inout ExperimentConfig) -> Void
  ) throws -> DownstreamOutcome {
    var config = ExperimentConfig.smoke(seed: 1)
    config.model = .tiny
    change(&config)
    return try trainDownstream(
      backend: ReferenceBackend(), mode: mode, initial: initial, train: slices(seed: 1),
      validation: slices(seed: validationSeed), config: config, seed: 9, label: "test", checkpoint: checkpoint)
  }

  /// Fine-tuning of the tiny model for 12 steps, validated every 3 (batches of 2 of the 4 slices:
  /// 2 steps an epoch, the order reshuffled every epoch, so validations at 3 and 9 fall mid-epoch).
  static func checkpointedRun(_ checkpoint: CheckpointPolicy?) throws -> DownstreamOutcome {
    try train(.fineTune(backboneRate: 1e-3, headRate: 1e-2), validationSeed: 2, checkpoint: checkpoint) {
      $0.downstreamBatch = 2
      $0.maxEpochs = 6
      $0.minimumValidationSteps = 3
      $0.patience = 100
    }
  }

  static func expectSameRun(_ a: DownstreamOutcome, _ b: DownstreamOutcome, sourceLocation: SourceLocation = #_sourceLocation) {
    let differing = zip(a.values, b.values).filter { $0 != $1 }.count
    #expect(a.values.count == b.values.count && differing == 0, "\(differing) final weights differ", sourceLocation: sourceLocation)
    #expect(a.curve == b.curve && a.steps == b.steps && a.bestStep == b.bestStep, sourceLocation: sourceLocation)
    #expect(a.bestValidationLoss == b.bestValidationLoss && a.stopReason == b.stopReason, sourceLocation: sourceLocation)
  }

  @Test("a run interrupted after its checkpoint resumes to the same bits as an uninterrupted run")
  func checkpointResumesExactly() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pix2rep-checkpoint-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let url = folder.appendingPathComponent("run.checkpoint")
    let uninterrupted = try Self.checkpointedRun(nil)
    #expect(uninterrupted.steps == 12)
    // Killed right after the checkpoint of step 9, half-way through an epoch's shuffled order.
    #expect(throws: TrainingInterrupted.self) {
      try Self.checkpointedRun(CheckpointPolicy(url: url, interval: .infinity, interruptAfterStep: 9))
    }
    #expect(FileManager.default.fileExists(atPath: url.path))
    // What the time-left estimate reads from the header: the step, the validations since the best,
    // and the seconds trained, which the resumed run adds to its own.
    let saved = try #require(CheckpointedProgress.resumable(at: url))
    #expect(saved.step == 9)
    #expect(saved.sinceBest != nil)
    #expect(saved.seconds > 0)
    #expect(uninterrupted.earlierSeconds == 0)
    let resumed = try Self.checkpointedRun(CheckpointPolicy(url: url, interval: .infinity))
    Self.expectSameRun(resumed, uninterrupted)
    #expect(resumed.earlierSeconds == saved.seconds)

    // A damaged file, or one saved by another build, is not resumed: the run starts over.
    var bytes = [UInt8](try Data(contentsOf: url))
    try Data(bytes.dropLast(3)).write(to: url)
    Self.expectSameRun(try Self.checkpointedRun(CheckpointPolicy(url: url, interval: .infinity)), uninterrupted)
    #expect(throws: TrainingInterrupted.self) {
      try Self.checkpointedRun(CheckpointPolicy(url: url, interval: .infinity, interruptAfterStep: 3))
    }
    bytes = [UInt8](try Data(contentsOf: url))
    let fingerprint = Array(Build.fingerprint.utf8)
    let at = (0...(bytes.count - fingerprint.count)).first { Array(bytes[$0..<($0 + fingerprint.count)]) == fingerprint }!
    bytes[at + fingerprint.count - 1] ^= 1  // the last hex digit of the build's checksum
    try Data(bytes).write(to: url)
    Self.expectSameRun(try Self.checkpointedRun(CheckpointPolicy(url: url, interval: .infinity)), uninterrupted)
  }

  @Test("a run whose validation never improves stops by patience and returns its initial weights")
  func patienceStopsARunThatDoesNotImprove() throws {
    // Learning rate 0: the validation loss stays at its initial value, which no later one beats.
    let outcome = try Self.train(.linearProbe, validationSeed: 2) {
      $0.linearProbeLearningRate = 0
      $0.minimumValidationSteps = 3
      $0.patience = 2
    }
    #expect(outcome.stopReason == .patience)
    #expect(outcome.steps == 6, "validation every 3 steps, patience 2")
    #expect(outcome.bestStep == 0)
    #expect(outcome.curve.map(\.step) == [0, 3, 6])
    for entry in ParameterLayout(config: .tiny).entries where entry.group == .backbone {
      #expect(Array(outcome.values[entry.range]) == Array(Self.initial[entry.range]), "\(entry.name) changed in linear probing")
    }
  }

  @Test("a run still improving at the cap stops by the cap with its best weights")
  func theCapStopsARunThatKeepsImproving() throws {
    let outcome = try Self.train(.fineTune(backboneRate: 1e-3, headRate: 1e-2), validationSeed: 1) {
      $0.maxEpochs = 3
      $0.minimumValidationSteps = 1
      $0.patience = 100
    }
    #expect(outcome.stopReason == .cap)
    #expect(outcome.steps == 3, "one step per epoch (4 slices), 3 epochs")
    #expect(outcome.curve.count == 4)
    let best = outcome.curve.min { $0.loss < $1.loss }!
    #expect(outcome.bestStep == best.step && outcome.bestValidationLoss == best.loss)
  }
}
