import Experiment
import Foundation
import Reference
import Testing

/// Pretraining checkpoints: an interrupted pretraining (InfoNCE's `pretrain`, SimCLR's
/// `pretrainSimCLR`) resumes to the same bits as an uninterrupted one; another build's checkpoint is
/// not resumed.
@Suite struct PretrainingCheckpointTests {
  /// The tiny model's widths on 16 x 16 slices (at the tiny model's 4 x 4 the bottleneck is one
  /// pixel and both losses sit at their collapsed value), 13 steps of batch 2 over 6 slices (3 steps
  /// an epoch), validated every 4 steps and at 13: the checkpoint at step 8 falls mid-epoch and
  /// between two points of the training curve (every 10 steps), so the partial training average is
  /// part of what must be restored.
  static var config: ExperimentConfig {
    var c = ExperimentConfig.smoke(seed: 3)
    c.model = ModelConfig(widths: [2, 4, 8], features: 3, imageSize: 16, projectionHidden: 3, projectionOutput: 3)
    c.pretrainingSteps = 13
    c.pretrainingBatch = 2
    c.pretrainingValidationInterval = 4
    c.pretrainingValidationSlices = 2
    c.positions = 16
    c.downstreamBatch = 2
    return c
  }

  static var train: SliceSet { slices(6, firstPatient: 1, seed: 1) }
  static var validation: SliceSet { slices(2, firstPatient: 10, seed: 2) }

  /// `count` smooth random 16 x 16 slices (a random blob each, with noise) of patients
  /// `firstPatient`, `firstPatient + 1`, … (two each).
  static func slices(_ count: Int, firstPatient: Int, seed: UInt64) -> SliceSet {
    var rng = SplitMix64(seed: seed, stream: 5)
    var set = SliceSet(size: 16)
    for i in 0..<count {
      let (cy, cx, r) = (rng.uniform(4, 12), rng.uniform(4, 12), rng.uniform(2, 5))
      let image = (0..<256).map { p -> Float in
        let (y, x) = (Double(p / 16), Double(p % 16))
        let inside = (y - cy) * (y - cy) + (x - cx) * (x - cx) < r * r
        return Float((inside ? 0.8 : 0.2) + rng.uniform(-0.1, 0.1))
      }
      set.append(image: image, label: (0..<256).map { UInt8($0 % 4) }, volume: .init(patient: firstPatient + i / 2, phase: "ED"))
    }
    return set
  }
  static let initial = Pix2RepNetwork(config: config.model, backend: ReferenceBackend(), seed: 7).values.map { Float($0) }

  /// The two pretrainings checkpointed, as one kind of outcome.
  enum Trainer: CaseIterable, CustomStringConvertible {
    case infoNCE, simCLR

    var description: String { self == .infoNCE ? "InfoNCE" : "SimCLR" }

    func run(_ checkpoint: CheckpointPolicy?) throws -> Run {
      let config = PretrainingCheckpointTests.config
      let (train, validation) = (PretrainingCheckpointTests.train, PretrainingCheckpointTests.validation)
      switch self {
      case .infoNCE:
        let (values, outcome) = try pretrain(
          backend: ReferenceBackend(), loss: PretrainingLoss(objective: .infoNCE), train: train, validation: validation,
          config: config, seed: 9, label: "test", checkpoint: checkpoint)
        return Run(values: values, training: outcome.training, validation: outcome.validation, bestStep: outcome.bestStep,
          bestLoss: outcome.bestValidationLoss)
      case .simCLR:
        let (values, outcome) = try pretrainSimCLR(
          backend: ReferenceBackend(), initial: PretrainingCheckpointTests.initial, train: train, validation: validation,
          config: config, seed: 9, label: "test", checkpoint: checkpoint)
        return Run(values: values, training: outcome.training, validation: outcome.validation, bestStep: outcome.bestStep,
          bestLoss: outcome.bestValidationLoss)
      }
    }
  }

  /// What must be the same bits after a resumption (everything of the outcome but its seconds).
  struct Run {
    var values: [Float]
    var training: [CurvePoint]
    var validation: [CurvePoint]
    var bestStep: Int
    var bestLoss: Double

    /// How many final weights differ from `other`'s (a bit pattern compare, so NaN differs).
    func differingValues(_ other: Run) -> Int {
      zip(values, other.values).filter { $0.bitPattern != $1.bitPattern }.count + abs(values.count - other.values.count)
    }
  }

  static func expectSameRun(_ a: Run, _ b: Run, sourceLocation: SourceLocation = #_sourceLocation) {
    let differing = a.differingValues(b)
    #expect(differing == 0, "\(differing) final weights differ", sourceLocation: sourceLocation)
    #expect(a.training == b.training, "training curves differ", sourceLocation: sourceLocation)
    #expect(a.validation == b.validation, "validation curves differ", sourceLocation: sourceLocation)
    #expect(a.bestStep == b.bestStep && a.bestLoss == b.bestLoss, sourceLocation: sourceLocation)
  }

  /// A fresh folder for one test's checkpoint file.
  static func withCheckpointURL(_ body: (URL) throws -> Void) throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pix2rep-pretraining-checkpoint-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    try body(folder.appendingPathComponent("pretrain.checkpoint"))
  }

  @Test("a pretraining interrupted after its checkpoint resumes to the same bits as an uninterrupted one", arguments: Trainer.allCases)
  func resumesExactly(_ trainer: Trainer) throws {
    let uninterrupted = try trainer.run(nil)
    #expect(uninterrupted.validation.map(\.step) == [4, 8, 12, 13] && uninterrupted.training.map(\.step) == [10, 13])
    try Self.withCheckpointURL { url in
      // Killed right after the checkpoint of step 8: mid-epoch, 8 losses into the training average.
      #expect(throws: TrainingInterrupted.self) { try trainer.run(CheckpointPolicy(url: url, interval: .infinity, interruptAfterStep: 8)) }
      #expect(FileManager.default.fileExists(atPath: url.path))
      Self.expectSameRun(try trainer.run(CheckpointPolicy(url: url, interval: .infinity)), uninterrupted)
    }
  }

  @Test("a pretraining checkpoint is resumed only by the build that saved it", arguments: Trainer.allCases)
  func anotherBuildStartsOver(_ trainer: Trainer) throws {
    let uninterrupted = try trainer.run(nil)
    try Self.withCheckpointURL { url in
      #expect(throws: TrainingInterrupted.self) { try trainer.run(CheckpointPolicy(url: url, interval: .infinity, interruptAfterStep: 8)) }
      // Every saved value perturbed (bit 32 of each Double, a relative 2^-20, which the Float
      // result keeps): a run that resumes from the file now ends elsewhere...
      var bytes = [UInt8](try Data(contentsOf: url))
      var headerLength = 0
      for k in 0..<8 { headerLength |= Int(bytes[8 + k]) << (8 * k) }
      for at in stride(from: 16 + headerLength + 4, to: bytes.count, by: 8) { bytes[at] ^= 1 }
      try Data(bytes).write(to: url)
      let fromPerturbed = try trainer.run(CheckpointPolicy(url: url, interval: .infinity))
      #expect(fromPerturbed.differingValues(uninterrupted) > 0, "the perturbed checkpoint was not resumed")
      // ...but saved by another build (the last hex digit of its checksum changed), it is not
      // resumed: the pretraining starts over and ends as the uninterrupted one.
      let fingerprint = Array(Build.fingerprint.utf8)
      let at = try #require((0...(bytes.count - fingerprint.count)).first { Array(bytes[$0..<($0 + fingerprint.count)]) == fingerprint })
      bytes[at + fingerprint.count - 1] ^= 1
      try Data(bytes).write(to: url)
      Self.expectSameRun(try trainer.run(CheckpointPolicy(url: url, interval: .infinity)), uninterrupted)
    }
  }
}
