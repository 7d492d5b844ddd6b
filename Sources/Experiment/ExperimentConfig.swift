import Reference

/// Everything that decides the numbers of a `verify reproduce` run. Two runs with equal
/// configurations (and data) give the same table; the run folder stores it to refuse a resume
/// under another one.
public struct ExperimentConfig: Codable, Hashable, Sendable {
  public var preset: String
  public var model: ModelConfig
  public var seed: UInt64

  // MARK: Pretraining (PROTOCOL section 3)
  public var pretrainingSteps: Int
  public var pretrainingBatch = 8
  public var pretrainingLearningRate = 4.7e-4
  /// Validation loss every this many steps; the best-validation backbone is kept.
  public var pretrainingValidationInterval: Int
  /// Slices in the validation loss (a fixed seeded subset of the validation split).
  public var pretrainingValidationSlices: Int
  public var positions = 1000
  public var temperature = 0.53
  public var barlowLambda = 5e-3

  // MARK: Downstream (PROTOCOL section 4)
  public var downstreamBatch = 16
  public var linearProbeLearningRate = 7.6e-3
  public var linearProbeSteps: Int
  public var fineTuneBackboneLearningRate = 5e-5
  public var fineTuneHeadLearningRate = 1e-2
  /// Most steps of a fine-tuning (and baseline) run; validation every `validationInterval` steps,
  /// stop after `patience` validations without a new best.
  public var fineTuneMaxSteps: Int
  public var validationInterval: Int
  public var patience = 6
  public var baselineLearningRates = [5e-5, 4.7e-4, 1e-3]

  // MARK: Budgets
  /// Labelled training patients per budget, and the number of seeded draws of each.
  public var budgets: [Int]
  public var draws: [Int: Int]

  // MARK: Data
  public var phantomSeed: UInt64 = 2024
  public var phantomDifficulty = 1.0
  /// Grid the phantom is rendered on before the preprocessing resizes it to `model.imageSize`.
  public var phantomGrid = 128
  /// Test volumes used for evaluation (nil: all).
  public var testPatientLimit: Int?

  public func drawCount(budget: Int) -> Int { draws[budget] ?? 1 }
}

extension ExperimentConfig {
  // MARK: - Presets

  /// Finishes in a few minutes on 2 cores: CI's end-to-end test. Its numbers mean little.
  public static func smoke(seed: UInt64) -> ExperimentConfig {
    ExperimentConfig(
      preset: "smoke", model: .smoke, seed: seed,
      pretrainingSteps: 40, pretrainingValidationInterval: 20, pretrainingValidationSlices: 16,
      positions: 256,
      linearProbeSteps: 60, fineTuneMaxSteps: 30, validationInterval: 10,
      budgets: [1, 5], draws: [1: 2],
      phantomGrid: 64, testPatientLimit: 10)
  }

  /// The default: the whole table in under 45 minutes on the 2-core development machine. What it
  /// costs there (measured in a release build with the protocol's full schedule shape): a
  /// pretraining step 0.62 s, a fine-tuning step of batch 16 0.45 s with its validation, a test
  /// evaluation of all 50 test patients 8.5 s. The 42 fine-tuning runs (12 draws x Pix2Rep,
  /// Pix2Rep-v2 and the baseline, plus the baseline's rate search) and 66 test evaluations
  /// dominate, so:
  /// - 500 pretraining steps per objective (about 2.3 epochs of the phantom's slices);
  /// - at most 50 fine-tuning steps per run, validation every 10, and 200 linear-probing steps;
  /// - the baseline's rate is chosen from {4.7e-4, 1e-3}: at these step counts 5e-5 barely moves a
  ///   random network (it had the highest validation loss of the three at budget 1 even after 200);
  /// - evaluation on 25 of the 50 test patients, 5 per pathology group (50 volumes).
  public static func cpu(seed: UInt64) -> ExperimentConfig {
    var config = ExperimentConfig(
      preset: "cpu", model: .cpu, seed: seed,
      pretrainingSteps: 500, pretrainingValidationInterval: 100, pretrainingValidationSlices: 64,
      linearProbeSteps: 200, fineTuneMaxSteps: 50, validationInterval: 10,
      budgets: [1, 2, 5, 10, 20, 100], draws: [1: 3, 2: 3, 5: 3], testPatientLimit: 25)
    config.patience = 4
    config.baselineLearningRates = [4.7e-4, 1e-3]
    return config
  }

  /// The paper's sizes and schedule (days on a CPU; it prints its estimate before starting).
  public static func paper(seed: UInt64) -> ExperimentConfig {
    ExperimentConfig(
      preset: "paper", model: .paper, seed: seed,
      // 200 epochs over ~1,700 training slices in batches of 8.
      pretrainingSteps: 200 * 212, pretrainingValidationInterval: 5 * 212, pretrainingValidationSlices: 190,
      linearProbeSteps: 200 * 10, fineTuneMaxSteps: 200 * 10, validationInterval: 5 * 10,
      budgets: [1, 2, 5, 10, 20, 100], draws: [1: 3, 2: 3, 5: 3])
  }

  public static let presetNames = ["smoke", "cpu", "paper"]

  public static func preset(_ name: String, seed: UInt64) -> ExperimentConfig? {
    switch name {
    case "smoke": return smoke(seed: seed)
    case "cpu": return cpu(seed: seed)
    case "paper": return paper(seed: seed)
    default: return nil
    }
  }
}

extension ExperimentConfig {
  /// The schedule and the protocol deviations it implies, for results.md.
  public var scheduleText: String {
    let draws = budgets.map { "\($0): \(drawCount(budget: $0))" }.joined(separator: ", ")
    return """
      Schedule: pretraining \(pretrainingSteps) steps of batch \(pretrainingBatch) per objective (Adam lr \(pretrainingLearningRate), \
      M = \(positions), tau = \(temperature), lambda = \(barlowLambda)), validation loss every \(pretrainingValidationInterval) steps \
      on \(pretrainingValidationSlices) slices; downstream batch \(downstreamBatch); linear probing \(linearProbeSteps) steps \
      (lr \(linearProbeLearningRate)); fine-tuning and baseline at most \(fineTuneMaxSteps) steps (lr \(fineTuneBackboneLearningRate) \
      backbone, \(fineTuneHeadLearningRate) head), validation every \(validationInterval) steps, patience \(patience); baseline \
      backbone rate chosen from \(baselineLearningRates) on each budget's first draw; draws per budget \(draws); phantom \
      rendered at \(phantomGrid)\(testPatientLimit.map { "; test limited to \($0) patients" } ?? "").

      Deviations from PROTOCOL: schedules are counted in steps, not epochs; linear probing trains on \
      cached features of un-augmented slices (PROTOCOL augments its training slices); the baseline's \
      rate is chosen once per budget, on the first draw.
      """
  }
}

