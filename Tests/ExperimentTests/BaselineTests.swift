import Experiment
import Foundation
import Reference
import Testing

/// The image-level and semi-supervised baselines in the protocol: their claims on known answers,
/// their stages, and their training loops (seeded, decoder untouched by SimCLR, unlabelled slices
/// from the other patients).
@Suite struct BaselineClaimTests {
  static func run(_ method: Method, _ budget: Int, _ draw: Int, _ dice: Double) -> RunResult {
    ClaimTests.run(method, budget, draw, dice)
  }

  /// Budgets 1, 2, 5 with 5, 5, 3 draws: `a` = `b` + `gain(draw)` for each pair.
  static func pairedRuns(_ a: Method, _ b: Method, gain: (Int) -> Double) -> [RunResult] {
    var runs: [RunResult] = []
    for (budget, draws) in [(1, 5), (2, 5), (5, 3)] {
      for d in 1...draws {
        let base = 0.3 + 0.05 * Double(d) + 0.02 * Double(budget)
        runs += [run(b, budget, d, base), run(a, budget, d, base + gain(d))]
      }
    }
    return runs
  }

  @Test("Pix2Rep vs SimCLR: a steady fine-tuning gain reproduces, an alternating probing gain is inconclusive")
  func pix2repAgainstSimCLR() {
    let runs = Self.pairedRuns(.pix2repFineTune, .simCLRFineTune) { 0.03 + 0.002 * Double($0) }
      + Self.pairedRuns(.pix2repLinear, .simCLRLinear) { $0 % 2 == 0 ? 0.02 : -0.02 }
    let claims = Claims.evaluate(ResultTable(runs: runs, budgets: [1, 2, 5]))
    #expect(claims.count == 9)
    #expect(claims[5].claim.contains("SimCLR") && claims[5].claim.contains("linear probing"))
    #expect(claims[5].verdict == "inconclusive", "\(claims[5].ours)")
    #expect(claims[6].claim.contains("SimCLR") && claims[6].claim.contains("fine-tuning"))
    #expect(claims[6].verdict == "reproduced", "\(claims[6].ours)")
    #expect(claims[6].comparisons[0].count == 13)
    #expect(claims[6].paper.contains("no number"))
    // The Mean Teacher claims have no runs here.
    #expect(claims[7].verdict == "not measured" && claims[8].verdict == "not measured")
  }

  @Test("Pix2Rep FT + MT below Mean Teacher on every draw is contradicted; above Pix2Rep FT reproduces")
  func meanTeacherClaims() {
    var runs = Self.pairedRuns(.pix2repMeanTeacher, .meanTeacher) { -0.05 - 0.001 * Double($0) }
    // Pix2Rep FT 0.01 below Pix2Rep FT + MT at every draw (the same bases as above, shifted).
    runs += runs.filter { $0.method == .pix2repMeanTeacher }.map { Self.run(.pix2repFineTune, $0.budget, $0.draw, $0.summary.mean - 0.01 - 0.001 * Double($0.draw)) }
    let claims = Claims.evaluate(ResultTable(runs: runs, budgets: [1, 2, 5]))
    #expect(claims[7].claim.contains("Mean Teacher alone") && claims[7].verdict == "contradicted", "\(claims[7].ours)")
    #expect(claims[8].claim.contains("Mean Teacher adds") && claims[8].verdict == "reproduced", "\(claims[8].ours)")
    #expect(claims[5].verdict == "not measured" && claims[6].verdict == "not measured")
  }

  @Test("the new rows' stages: SimCLR pretraining at level 0, its runs and Pix2Rep FT + MT read their backbones, Mean Teacher the baseline rate")
  func stages() throws {
    let stages = Reproduction.stages(.smoke(seed: 1))
    let byName = Dictionary(uniqueKeysWithValues: stages.map { ($0.name, $0) })
    let simCLR = try #require(byName["pretrain-simclr"])
    #expect(simCLR.level == 0 && simCLR.inputs.isEmpty)
    #expect(byName["run-simclr-lp-1-1"]?.inputs == ["pretrain-simclr"] && byName["run-simclr-ft-5-1"]?.inputs == ["pretrain-simclr"])
    #expect(byName["run-pix2rep-ft-mt-1-2"]?.inputs == ["pretrain-infoNCE"] && byName["run-pix2rep-ft-mt-1-2"]?.level == 1)
    #expect(byName["run-mean-teacher-1-1"]?.inputs == ["baseline-rate-1"] && byName["run-mean-teacher-1-1"]?.level == 2)
    // Every input is a stage of a lower level.
    for stage in stages {
      for input in stage.inputs { #expect((byName[input]?.level ?? .max) < stage.level, "\(stage.name) reads \(input)") }
    }
  }
}

@Suite struct BaselineTrainingTests {
  /// The tiny model on a few seeded slices, with a schedule of a handful of steps.
  static var config: ExperimentConfig {
    var c = ExperimentConfig.smoke(seed: 3)
    c.model = .tiny
    c.pretrainingSteps = 4
    c.pretrainingBatch = 2
    c.pretrainingValidationInterval = 2
    c.pretrainingValidationSlices = 2
    c.downstreamBatch = 2
    c.maxEpochs = 2
    c.minimumValidationSteps = 1
    return c
  }

  /// `count` random slices (S = 4) of patients `firstPatient`, `firstPatient + 1`, … (two each).
  static func slices(_ count: Int, firstPatient: Int, seed: UInt64) -> SliceSet {
    var rng = SplitMix64(seed: seed, stream: 5)
    var set = SliceSet(size: 4)
    for i in 0..<count {
      set.append(
        image: (0..<16).map { _ in Float(rng.uniform(0, 1)) }, label: (0..<16).map { _ in UInt8(rng.next() % 4) },
        volume: .init(patient: firstPatient + i / 2, phase: "ED"))
    }
    return set
  }

  @Test("SimCLR pretraining is seeded (two runs equal bit for bit) and leaves the decoder's weights as initialised")
  func simCLRIsSeededAndLeavesTheDecoder() throws {
    let initial = Pix2RepNetwork(config: Self.config.model, backend: ReferenceBackend(), seed: 7).values.map { Float($0) }
    let train = Self.slices(6, firstPatient: 1, seed: 1), validation = Self.slices(2, firstPatient: 10, seed: 2)
    let first = try pretrainSimCLR(backend: ReferenceBackend(), initial: initial, train: train, validation: validation, config: Self.config, seed: 9, label: "test")
    let second = try pretrainSimCLR(backend: ReferenceBackend(), initial: initial, train: train, validation: validation, config: Self.config, seed: 9, label: "test")
    #expect(first.values == second.values)
    #expect(first.outcome.validation.map(\.loss) == second.outcome.validation.map(\.loss))
    #expect(first.outcome.validation.count == 2 && first.outcome.steps == 4)
    let layout = ParameterLayout(config: Self.config.model)
    var encoderChanged = false
    for entry in layout.entries where entry.role.isTrainable && entry.group == .backbone {
      let same = Array(first.values[entry.range]) == Array(initial[entry.range])
      if entry.name.hasPrefix("up") { #expect(same, "decoder \(entry.name) changed") } else if !same { encoderChanged = true }
    }
    #expect(encoderChanged, "no encoder weight moved")
  }

  @Test("Mean Teacher training is seeded, and its unlabelled slices are the other patients'")
  func meanTeacherIsSeeded() throws {
    let initial = Pix2RepNetwork(config: Self.config.model, backend: ReferenceBackend(), seed: 7).values.map { Float($0) }
    let pool = Self.slices(8, firstPatient: 1, seed: 3)  // patients 1-4
    let unlabelled = unlabelledSlices(pool, excluding: [2, 3], fallback: pool)
    #expect(unlabelled.volumes.map(\.patient) == [1, 4] && unlabelled.count == 4)
    #expect(unlabelledSlices(pool, excluding: [1, 2, 3, 4], fallback: Self.slices(2, firstPatient: 9, seed: 4)).volumes.map(\.patient) == [9])
    let train = Self.slices(4, firstPatient: 2, seed: 5), validation = Self.slices(2, firstPatient: 2, seed: 6)
    func once(_ config: ExperimentConfig = Self.config, _ checkpoint: CheckpointPolicy? = nil) throws -> DownstreamOutcome {
      try trainMeanTeacher(
        backend: ReferenceBackend(), initial: initial, backboneRate: 1e-3, headRate: 1e-2, train: train, unlabelled: unlabelled,
        validation: validation, config: config, seed: 11, label: "test", checkpoint: checkpoint)
    }
    #expect(try once().values == once().values)

    // Killed after its checkpoint at the first validation, then resumed: the same bits.
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pix2rep-mt-checkpoint-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let url = folder.appendingPathComponent("run.checkpoint")
    var config = Self.config
    config.maxEpochs = 4
    config.minimumValidationSteps = 3  // 2 steps an epoch: validations at 3 (mid-epoch) and 6, the cap 8
    config.patience = 100
    let uninterrupted = try once(config)
    #expect(uninterrupted.steps == 8 && uninterrupted.curve.map(\.step) == [0, 3, 6, 8])
    #expect(throws: TrainingInterrupted.self) { try once(config, CheckpointPolicy(url: url, interval: .infinity, interruptAfterStep: 3)) }
    let resumed = try once(config, CheckpointPolicy(url: url, interval: .infinity))
    #expect(resumed.values == uninterrupted.values && resumed.curve == uninterrupted.curve && resumed.steps == uninterrupted.steps)
  }
}
