import Foundation
import Optimized
import Reference

/// The data of a reproduction, already split (PROTOCOL section 1).
public protocol ExperimentData: Sendable {
  /// "synthetic phantom, seed S, difficulty D" or "ACDC at DIR".
  var source: String { get }
  /// Every kept slice of the training patients (both frames), split 90/10 by slice.
  var pretrainingTrain: SliceSet { get }
  var pretrainingValidation: SliceSet { get }
  /// Every kept slice of the test patients, grouped by volume.
  var test: SliceSet { get }
  /// A pathology-balanced seeded draw of `budget` labelled training patients, their slices split
  /// 90/10 into train and validation.
  func labelled(budget: Int, seed: UInt64) throws -> (patients: [Int], train: SliceSet, validation: SliceSet)
}

/// `verify reproduce`: pretraining with both objectives, the downstream runs of every budget and
/// draw, evaluation, the claims and the equivariance figures. Every finished stage is stored in the
/// run folder and skipped when the run is resumed.
public struct Reproduction {
  public let config: ExperimentConfig
  public let data: any ExperimentData
  public let store: RunStore
  public let backend: OptimizedBackend
  var stageSeconds: [String: Double] = [:]
  /// Baseline runs stored by this session's rate search (not "finished earlier" when the plan reaches them).
  var recordedBySearch: Set<String> = []
  /// A backbone (safetensors, official keys) that replaces the seeded random initialisation every
  /// method starts from (`verify reproduce --init`).
  public var initialBackbone: (entries: [SafetensorsEntry], file: String)? = nil
  /// Also write the test volumes' predicted segmentations as NIfTI (`--save-predictions`).
  public var savePredictions = false

  public init(config: ExperimentConfig, data: any ExperimentData, store: RunStore, workers: Int) {
    self.config = config
    self.data = data
    self.store = store
    self.backend = OptimizedBackend(workers: workers)
  }

  /// A seed for a named stage, fixed by the run seed.
  func seed(_ stage: String) -> UInt64 {
    Reproduction.stageSeed(stage, runSeed: config.seed)
  }

  /// Runs (or resumes) everything and returns the report.
  public mutating func run() throws -> Report {
    let start = Date()
    say("data: \(data.source)")
    say("  pretraining slices: \(data.pretrainingTrain.count) train, \(data.pretrainingValidation.count) validation; test: \(data.test.count) slices in \(data.test.volumes.count) volumes")
    // The random backbone every method starts from before its own training (same init for all).
    var random = Pix2RepNetwork(config: config.model, backend: backend, seed: seed("init")).values
    if let initial = initialBackbone {
      try Safetensors.loadBackbone(initial.entries, file: initial.file, into: &random, layout: ParameterLayout(config: config.model))
      say("initial backbone: \(initial.file) (replaces the random initialisation of every method)")
    }
    var backbones: [PretrainingObjective: [Float]] = [:]
    for objective in PretrainingObjective.allCases {
      backbones[objective] = try pretrained(objective, initial: initialBackbone == nil ? nil : random)
    }
    var runs: [RunResult] = []
    var chosenRates: [String] = []
    for budget in config.budgets {
      for draw in 1...config.drawCount(budget: budget) {
        let (patients, train, validation) = try data.labelled(budget: budget, seed: seed("draw-\(budget)-\(draw)"))
        say("budget \(budget), draw \(draw): patients \(patients.map(String.init).joined(separator: ", ")) (\(train.count) train, \(validation.count) validation slices)")
        let rate = try baselineRate(budget: budget, draw: draw, patients: patients, train: train, validation: validation, random: random)
        if draw == 1 { chosenRates.append("budget \(budget): \(rate)") }
        var plan: [(Method, DownstreamMode, [Float])] = [
          (.supervised, .fineTune(backboneRate: rate, headRate: config.fineTuneHeadLearningRate), random),
          (.pix2repLinear, .linearProbe, backbones[.infoNCE]!),
          (.pix2repFineTune, .fineTune(backboneRate: config.fineTuneBackboneLearningRate, headRate: config.fineTuneHeadLearningRate), backbones[.infoNCE]!),
          (.barlowLinear, .linearProbe, backbones[.barlowTwins]!),
          (.barlowFineTune, .fineTune(backboneRate: config.fineTuneBackboneLearningRate, headRate: config.fineTuneHeadLearningRate), backbones[.barlowTwins]!),
        ]
        if budget == 1 { plan.append((.randomLinear, .linearProbe, random)) }
        for (method, mode, initial) in plan {
          runs.append(try downstream(method, mode: mode, initial: initial, budget: budget, draw: draw, patients: patients, train: train, validation: validation))
        }
      }
    }
    let equivariance = try equivarianceFigures(pretrained: backbones[.infoNCE]!, random: random)
    let table = ResultTable(runs: runs, budgets: config.budgets)
    let report = Report(
      dataSource: data.source, configuration: config, runs: runs, claims: Claims.evaluate(table),
      equivariance: equivariance, baselineLearningRates: chosenRates, stageSeconds: stageSeconds,
      totalSeconds: Date().timeIntervalSince(start))
    try report.write(to: store.directory)
    let pictures = try writePictures(runs: runs, backbones: backbones, random: random)
    try report.writeHTML(pictures: pictures, to: store.directory)
    say("pictures: \(pictures.count) in \(store.directory.path)/pictures; report: report.html")
    if savePredictions {
      say("predictions: \(try writePredictions(runs: runs)) NIfTI files in \(store.directory.path)/predictions")
    }
    return report
  }

  // MARK: - Stages

  /// The best-validation weights of one pretraining objective (trained now or loaded).
  mutating func pretrained(_ objective: PretrainingObjective, initial: [Float]? = nil) throws -> [Float] {
    let stage = "pretrain-\(objective.rawValue)"
    let url = store.weightsURL(stage)
    if let outcome = try store.load(PretrainingOutcome.self, stage: stage) {
      say("\(stage): finished earlier (best validation \(String(format: "%.4f", outcome.bestValidationLoss)) at step \(outcome.bestStep)), loading \(url.lastPathComponent)")
      stageSeconds[stage] = outcome.seconds
      return try WeightsFile.read(from: url, expecting: config.model)
    }
    say("\(stage): \(config.pretrainingSteps) steps of batch \(config.pretrainingBatch), Adam lr \(config.pretrainingLearningRate)")
    let settings = PretrainingLoss(objective: objective, temperature: config.temperature, lambda: config.barlowLambda)
    let (values, outcome) = Experiment.pretrain(
      backend: backend, loss: settings, train: data.pretrainingTrain, validation: data.pretrainingValidation,
      config: config, seed: seed("init"), label: stage, initial: initial)
    try WeightsFile.write(values: values, config: config.model, to: url)
    try store.save(outcome, stage: stage)
    stageSeconds[stage] = outcome.seconds
    return values
  }

  /// The supervised baseline's backbone learning rate for a budget: chosen on the first draw's
  /// validation split among `baselineLearningRates`, then kept for the budget's other draws. The
  /// chosen rate's run is the first draw's baseline run (same seed, same schedule), so it is
  /// evaluated and stored as that run instead of being trained a second time.
  mutating func baselineRate(budget: Int, draw: Int, patients: [Int], train: SliceSet, validation: SliceSet, random: [Float]) throws -> Double {
    let stage = "baseline-rate-\(budget)"
    if let chosen = try store.load(Double.self, stage: stage) { return chosen }
    precondition(draw == 1, "the baseline rate is chosen on the first draw")
    var best: (rate: Double, outcome: DownstreamOutcome, seconds: Double)? = nil
    var searchSeconds = 0.0
    for rate in config.baselineLearningRates {
      let start = Date()
      let outcome = trainDownstream(
        backend: backend, mode: .fineTune(backboneRate: rate, headRate: config.fineTuneHeadLearningRate), initial: random,
        train: train, validation: validation, config: config, seed: seed(runStage(.supervised, budget: budget, draw: draw)),
        label: "baseline lr \(rate), budget \(budget)")
      say(String(format: "  baseline lr %g: best validation loss %.4f", rate, outcome.bestValidationLoss))
      let seconds = Date().timeIntervalSince(start)
      searchSeconds += seconds
      if best == nil || outcome.bestValidationLoss < best!.outcome.bestValidationLoss {
        best = (rate, outcome, seconds)
      }
    }
    guard let best else { throw ExperimentError("no baseline learning rates to choose from") }
    say("  baseline learning rate for budget \(budget): \(best.rate) (lowest validation loss)")
    // The rates not chosen (the chosen run's time is counted with the downstream runs).
    stageSeconds["baseline rate search", default: 0] += searchSeconds - best.seconds
    let runStage = runStage(.supervised, budget: budget, draw: draw)
    if try store.load(RunResult.self, stage: runStage) == nil {
      _ = try record(.supervised, rate: best.rate, outcome: best.outcome, budget: budget, draw: draw, patients: patients, trainingSeconds: best.seconds)
      recordedBySearch.insert(runStage)
    }
    try store.save(best.rate, stage: stage)
    return best.rate
  }

  /// The stage name of a downstream run, also the name its seed is derived from.
  func runStage(_ method: Method, budget: Int, draw: Int) -> String { "run-\(method.key)-\(budget)-\(draw)" }

  /// One downstream run, trained and evaluated now or loaded.
  mutating func downstream(
    _ method: Method, mode: DownstreamMode, initial: [Float], budget: Int, draw: Int, patients: [Int],
    train: SliceSet, validation: SliceSet
  ) throws -> RunResult {
    let stage = runStage(method, budget: budget, draw: draw)
    if let done = try store.load(RunResult.self, stage: stage) {
      if !recordedBySearch.contains(stage) {
        say(String(format: "  %@: finished earlier, Dice %.3f", method.rawValue, done.summary.mean))
        stageSeconds["downstream", default: 0] += done.seconds
      }
      return done
    }
    let start = Date()
    let outcome = trainDownstream(
      backend: backend, mode: mode, initial: initial, train: train, validation: validation, config: config,
      seed: seed(stage), label: "\(method.rawValue), budget \(budget), draw \(draw)")
    var rate: Double? = nil
    if case .fineTune(let r, _) = mode, method == .supervised { rate = r }
    return try record(method, rate: rate, outcome: outcome, budget: budget, draw: draw, patients: patients, trainingSeconds: Date().timeIntervalSince(start))
  }

  /// Evaluates a trained downstream run on the test volumes and stores it as a finished stage.
  mutating func record(
    _ method: Method, rate: Double?, outcome: DownstreamOutcome, budget: Int, draw: Int, patients: [Int], trainingSeconds: Double
  ) throws -> RunResult {
    let start = Date()
    var net = Pix2RepNetwork(config: config.model, backend: backend, values: outcome.values)
    let scores = evaluate(&net, test: data.test, batchSize: config.downstreamBatch)
    let result = RunResult(
      method: method, budget: budget, draw: draw, patients: patients, summary: DiceSummary(scores), volumes: scores,
      chosenLearningRate: rate, steps: outcome.steps, bestValidationLoss: outcome.bestValidationLoss,
      seconds: trainingSeconds + Date().timeIntervalSince(start), curve: outcome.curve)
    if budget == 1 && draw == 1 {
      // Kept for the pictures and predictions (written before the stage, so a resumed run has them).
      try WeightsFile.write(values: outcome.values, config: config.model, to: downstreamWeightsURL(method))
    }
    try store.save(result, stage: runStage(method, budget: budget, draw: draw))
    say(String(format: "  %@: test Dice %.3f (RV %.3f, MYO %.3f, LV %.3f) after %d steps, %@", method.rawValue, result.summary.mean,
      result.summary.perClass[0], result.summary.perClass[1], result.summary.perClass[2], outcome.steps, formatDuration(result.seconds)))
    stageSeconds["downstream", default: 0] += result.seconds
    return result
  }

  /// The learned equivariance figures of the InfoNCE backbone and of the random one.
  func equivarianceFigures(pretrained: [Float], random: [Float]) throws -> [EquivarianceFigure] {
    if let done = try store.load([EquivarianceFigure].self, stage: "equivariance") { return done }
    let figures = [("Pix2Rep (InfoNCE)", pretrained), (initialLabel, random)].map { (name, values) in
      var net = Pix2RepNetwork(config: config.model, backend: backend, values: values)
      return measureEquivariance(&net, name: name, test: data.test, slices: 32, seed: seed("equivariance"))
    }
    try store.save(figures, stage: "equivariance")
    return figures
  }
}
