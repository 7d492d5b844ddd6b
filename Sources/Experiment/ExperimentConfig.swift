import Optimized
import Reference

/// Everything that decides the numbers of a `verify reproduce` run. Two runs with equal
/// configurations (and data) give the same table; the run folder stores it to refuse a resume
/// under another one.
public struct ExperimentConfig: Codable, Hashable, Sendable {
  public var preset: String
  public var model: ModelConfig
  public var seed: UInt64

  // MARK: Pretraining (docs/PROTOCOL.md section 3)
  public var pretrainingSteps: Int
  public var pretrainingBatch = BatchSizes.pretraining
  public var pretrainingLearningRate = 4.7e-4
  /// Validation loss every this many steps; the best-validation backbone is kept.
  public var pretrainingValidationInterval: Int
  /// Slices in the validation loss (a fixed seeded subset of the validation split).
  public var pretrainingValidationSlices: Int
  public var positions = InfoNCEConstants.sampledPositions
  public var temperature = InfoNCEConstants.temperature
  public var barlowLambda = BarlowTwinsConstants.lambda
  /// How the pretraining views depart from section 3's (`verify ablate` only: noise scaled,
  /// transforms left out, phi the identity); the default is the protocol. Downstream training keeps
  /// the protocol's augmentations.
  public var pretrainingAugmentation = AugmentationSwitches.protocolViews

  // MARK: Downstream (docs/PROTOCOL.md section 4)
  public var downstreamBatch = BatchSizes.downstream
  public var linearProbeLearningRate = 7.6e-3
  public var fineTuneBackboneLearningRate = 5e-5
  public var fineTuneHeadLearningRate = 1e-2
  /// Every downstream run (linear probing, fine-tuning, the baseline) validates every epoch of its
  /// labelled training slices or every `minimumValidationSteps` steps, whichever is longer, stops
  /// after `patience` validations without a new best or after `maxEpochs` epochs, and keeps the
  /// best-validation weights (with their BatchNorm running statistics).
  public var maxEpochs = 200
  public var minimumValidationSteps = 20
  public var patience = 6
  public var baselineLearningRates = [5e-5, 4.7e-4, 1e-3]
  /// Linear probing on cached features of un-augmented slices instead of the protocol's augmented
  /// slices through the frozen backbone (`verify reproduce --lp-cached-features`; faster, a deviation).
  public var linearProbeCachedFeatures = false
  /// The algorithms of the evaluation-mode network's 3x3 convolutions, which decide validation
  /// (model selection), test Dice and linear probing's frozen features; the two choices round
  /// differently, so they give different bits. A config.json without it was made when F(2x2, 3x3)
  /// was the only one, and decodes as that. The presets keep F(2x2, 3x3), the arithmetic of the
  /// README's tables; F(4x4, 3x3) predicts faster (`InferenceConvolutions`) and is chosen with
  /// `--inference-convolutions winograd4x4`.
  public var inferenceConvolutions = InferenceConvolutions.winograd2x2

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

  /// CI's end-to-end test: finishes in about a minute on 2 cores. Its numbers mean little (a tiny
  /// model, a few dozen steps per run, validation every 5 steps and patience 2).
  public static func smoke(seed: UInt64) -> ExperimentConfig {
    var config = ExperimentConfig(
      preset: "smoke", model: .smoke, seed: seed,
      pretrainingSteps: 40, pretrainingValidationInterval: 10, pretrainingValidationSlices: 16,
      positions: 256,
      budgets: [1, 5], draws: [1: 2],
      phantomGrid: 64, testPatientLimit: 10)
    config.maxEpochs = 15
    config.minimumValidationSteps = 5
    config.patience = 2
    return config
  }

  /// The default: the whole protocol at a CPU model size (64 x 64, widths 16-128, D = 64) with the
  /// protocol's schedule rules (docs/PROTOCOL.md sections 3-4), never a shortened one:
  /// - pretraining 4,000 steps of batch 8 per objective (32,000 slices, about 18 passes over the
  ///   phantom's pretraining split), validation every 100 steps; the run prints the relative change
  ///   of the validation loss over the last quarter, and what it would have been at 1,000, 2,000 and
  ///   3,000 steps. The length was chosen from one 4,000-step run of each objective
  ///   (`--pretraining-steps 4000`, 2026-11-30, docs/PROTOCOL.md section 3): at 1,000 steps, the
  ///   previous length, Barlow Twins' validation loss was still falling 17% per quarter; at 4,000,
  ///   8%. The longest measured length, since the next doubling costs about an hour per objective;
  ///   Barlow Twins is not flat at it, and the report says so;
  /// - every downstream run validates every epoch or 20 steps, whichever is longer, with patience
  ///   6 and a cap of 200 epochs;
  /// - 5 draws at budgets 1 and 2, 3 at budget 5 (paired comparisons need several);
  /// - evaluation on 25 of the 50 test patients, 5 per pathology group (50 volumes).
  /// `verify reproduce` prints its time estimate, from step times it measures, before it starts;
  /// on a 2-core machine it runs for hours (README).
  public static func cpu(seed: UInt64) -> ExperimentConfig {
    ExperimentConfig(
      preset: "cpu", model: .cpu, seed: seed,
      pretrainingSteps: 4000, pretrainingValidationInterval: 100, pretrainingValidationSlices: 64,
      budgets: [1, 2, 5, 10, 20, 100], draws: [1: 5, 2: 5, 5: 3], testPatientLimit: 25)
  }

  /// The paper's sizes and schedule (days on a CPU; it prints its estimate before starting).
  public static func paper(seed: UInt64) -> ExperimentConfig {
    ExperimentConfig(
      preset: "paper", model: .paper, seed: seed,
      // 200 epochs over ~1,700 training slices in batches of 8.
      pretrainingSteps: 200 * 212, pretrainingValidationInterval: 5 * 212, pretrainingValidationSlices: 190,
      budgets: [1, 2, 5, 10, 20, 100], draws: [1: 5, 2: 5, 5: 3])
  }

  public static let presetNames = ["smoke", "cpu", "paper"]

  /// How long a preset aims to take on a 2-core machine; the run says so up front when its estimate
  /// is longer (training is never shortened to fit).
  public static let targetSeconds: [String: Double] = ["smoke": 180, "cpu": 3600]

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
  /// The downstream schedule of a run on `trainingSlices` labelled slices: an epoch is
  /// ceil(slices / batch) steps; validation every epoch or `minimumValidationSteps` steps, whichever
  /// is longer; at most `maxEpochs` epochs.
  public func downstreamSchedule(trainingSlices: Int) -> DownstreamSchedule {
    let stepsPerEpoch = max(1, (trainingSlices + downstreamBatch - 1) / downstreamBatch)
    return DownstreamSchedule(
      stepsPerEpoch: stepsPerEpoch, validationInterval: max(stepsPerEpoch, minimumValidationSteps),
      maxSteps: maxEpochs * stepsPerEpoch, patience: patience)
  }

  /// The schedule and the protocol deviations it implies, for results.md.
  public var scheduleText: String {
    let draws = budgets.map { "\($0): \(drawCount(budget: $0))" }.joined(separator: ", ")
    let probing = linearProbeCachedFeatures
      ? "linear probing on cached features of un-augmented slices (--lp-cached-features; the protocol augments them)"
      : "linear probing on intensity-augmented slices through the frozen backbone"
    return """
      Schedule: pretraining \(pretrainingSteps) steps of batch \(pretrainingBatch) per objective (Adam lr \(pretrainingLearningRate), \
      M = \(positions), tau = \(temperature), lambda = \(barlowLambda)\(pretrainingAugmentation.isProtocol ? "" : "; views: " + pretrainingAugmentation.text)), validation loss every \(pretrainingValidationInterval) steps \
      on \(pretrainingValidationSlices) slices, best-validation backbone kept; downstream batch \(downstreamBatch); \(probing) (lr \(linearProbeLearningRate)); \
      fine-tuning lr \(fineTuneBackboneLearningRate) backbone, \(fineTuneHeadLearningRate) head; every downstream run validates every \
      epoch of its training slices or every \(minimumValidationSteps) steps, whichever is longer, stops after \(patience) validations \
      without a new best or at \(maxEpochs) epochs, and keeps its best-validation weights; baseline backbone rate chosen from \
      \(baselineLearningRates) on each budget's first draw; draws per budget \(draws); phantom rendered at \(phantomGrid)\
      \(testPatientLimit.map { "; test limited to \($0) patients (balanced over the groups)" } ?? "").

      Deviations from docs/PROTOCOL.md: pretraining is counted in steps, not epochs; downstream validation every epoch or \
      \(minimumValidationSteps) steps instead of every 5 epochs (the allowed shortening); the baseline's rate is chosen once per \
      budget, on the first draw\(linearProbeCachedFeatures ? "; linear probing without intensity augmentation" : "").

      Evaluation-mode 3x3 convolutions (validation, test prediction, frozen features): \(inferenceConvolutions.text).
      """
  }
}

/// How long a downstream run trains and how often it validates, in steps.
public struct DownstreamSchedule: Codable, Hashable, Sendable {
  public var stepsPerEpoch: Int
  public var validationInterval: Int
  public var maxSteps: Int
  public var patience: Int

  public init(stepsPerEpoch: Int, validationInterval: Int, maxSteps: Int, patience: Int) {
    self.stepsPerEpoch = stepsPerEpoch
    self.validationInterval = validationInterval
    self.maxSteps = maxSteps
    self.patience = patience
  }

  /// The fewest steps a run can take: stopped by patience with its best at the first validation.
  public var minimumSteps: Int { min(maxSteps, validationInterval * patience) }
}

extension ExperimentConfig {
  /// The lines `verify reproduce` prints under its first line: model, pretraining, downstream
  /// schedule, budgets and draws.
  public var summaryLines: [String] {
    [
      "model: widths \(model.widths), D = \(model.features), S = \(model.imageSize), projection \(model.projectionHidden)-\(model.projectionOutput)",
      "pretraining: \(pretrainingSteps) steps, batch \(pretrainingBatch), lr \(pretrainingLearningRate), M = \(positions), tau = \(temperature), lambda = \(barlowLambda)"
        + (pretrainingAugmentation.isProtocol ? "" : "; views: \(pretrainingAugmentation.text)"),
      "downstream: batch \(downstreamBatch); LP lr \(linearProbeLearningRate)\(linearProbeCachedFeatures ? " on cached un-augmented features" : " on augmented slices"); FT lr \(fineTuneBackboneLearningRate)/\(fineTuneHeadLearningRate); validation every epoch or \(minimumValidationSteps) steps, patience \(patience), at most \(maxEpochs) epochs; baseline rate chosen from \(baselineLearningRates)",
      "budgets \(budgets), draws \(budgets.map { drawCount(budget: $0) })",
      "evaluation-mode 3x3 convolutions: \(inferenceConvolutions.text)",
    ]
  }
}

extension ExperimentConfig {
  /// Decodes a run folder's configuration. An option with a default that a folder's config.json
  /// lacks (the folder was made before the option existed) takes its default, the value such a run
  /// used, so adding an option does not make every earlier run folder unreadable; the options
  /// without defaults must be present.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    self.init(
      preset: try c.decode(String.self, forKey: .preset), model: try c.decode(ModelConfig.self, forKey: .model),
      seed: try c.decode(UInt64.self, forKey: .seed), pretrainingSteps: try c.decode(Int.self, forKey: .pretrainingSteps),
      pretrainingValidationInterval: try c.decode(Int.self, forKey: .pretrainingValidationInterval),
      pretrainingValidationSlices: try c.decode(Int.self, forKey: .pretrainingValidationSlices),
      budgets: try c.decode([Int].self, forKey: .budgets), draws: try c.decode([Int: Int].self, forKey: .draws))
    func optional<T: Decodable>(_ key: CodingKeys, _ field: inout T) throws {
      if let value = try c.decodeIfPresent(T.self, forKey: key) { field = value }
    }
    try optional(.pretrainingBatch, &pretrainingBatch)
    try optional(.pretrainingLearningRate, &pretrainingLearningRate)
    try optional(.positions, &positions)
    try optional(.temperature, &temperature)
    try optional(.barlowLambda, &barlowLambda)
    try optional(.pretrainingAugmentation, &pretrainingAugmentation)
    try optional(.downstreamBatch, &downstreamBatch)
    try optional(.linearProbeLearningRate, &linearProbeLearningRate)
    try optional(.fineTuneBackboneLearningRate, &fineTuneBackboneLearningRate)
    try optional(.fineTuneHeadLearningRate, &fineTuneHeadLearningRate)
    try optional(.maxEpochs, &maxEpochs)
    try optional(.minimumValidationSteps, &minimumValidationSteps)
    try optional(.patience, &patience)
    try optional(.baselineLearningRates, &baselineLearningRates)
    try optional(.linearProbeCachedFeatures, &linearProbeCachedFeatures)
    try optional(.inferenceConvolutions, &inferenceConvolutions)
    try optional(.phantomSeed, &phantomSeed)
    try optional(.phantomDifficulty, &phantomDifficulty)
    try optional(.phantomGrid, &phantomGrid)
    testPatientLimit = try c.decodeIfPresent(Int.self, forKey: .testPatientLimit)
  }
}
