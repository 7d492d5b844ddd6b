import Foundation
import Optimized
import Reference

/// The data of a reproduction, already split (docs/PROTOCOL.md section 1).
public protocol ExperimentData: Sendable {
  /// "synthetic phantom version V, seed S, difficulty D" or "ACDC at DIR".
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
  /// Runs done and time left, for the progress lines.
  var tracker = Tracker(plan: nil)
  /// Work this invocation did before `run()` (`--jobs`: the stage processes) with the estimate
  /// printed before it, so the report's total time and estimate describe the whole invocation.
  public var earlierWork: (seconds: Double, estimate: String, estimatedSeconds: Double)? = nil

  public init(config: ExperimentConfig, data: any ExperimentData, store: RunStore, workers: Int) {
    self.config = config
    self.data = data
    self.store = store
    self.backend = OptimizedBackend(workers: workers, inferenceConvolutions: config.inferenceConvolutions)
  }

  /// A seed for a named stage, fixed by the run seed.
  func seed(_ stage: String) -> UInt64 {
    Reproduction.stageSeed(stage, runSeed: config.seed)
  }

  /// The seed of a named stage for a run seed (FNV-1a of the name as a SplitMix64 stream). The one
  /// derivation: `seed(_:)` calls it, and `verify equivariance` uses it to measure on the slices
  /// and transforms of `verify reproduce`.
  public static func stageSeed(_ stage: String, runSeed: UInt64) -> UInt64 {
    var rng = SplitMix64(seed: runSeed, stream: FNV1a.hash(stage.utf8))
    return rng.next()
  }

  /// Runs (or resumes) everything and returns the report.
  public mutating func run() throws -> Report {
    let start = Date()
    say("data: \(data.source)")
    say("build: \(Build.fingerprint) (recorded beside every stage it computes)")
    say("  pretraining slices: \(data.pretrainingTrain.count) train, \(data.pretrainingValidation.count) validation; test: \(data.test.count) slices in \(data.test.volumes.count) volumes")
    let random = try randomInitial()
    if let initial = initialBackbone {
      say("initial backbone: \(initial.file) (replaces the random initialisation of every method)")
    }
    let draws = try labelledDraws()
    let plan = try makePlan(draws)
    say(plan.description)
    if let target = ExperimentConfig.targetSeconds[config.preset], plan.assumedSeconds > target {
      say("  that is more than the \(formatDuration(target)) this preset aims at on a 2-core machine: the schedule is not shortened to fit, it takes what it takes (README).")
    }
    tracker = Tracker(plan: plan)
    var backbones: [PretrainingObjective: [Float]] = [:]
    for objective in PretrainingObjective.allCases {
      backbones[objective] = try pretrained(objective, initial: initialBackbone == nil ? nil : random)
    }
    let probedRandom = try randomBackboneForProbing(random)
    let simCLRBackbone = try simCLRPretrained(random)
    var runs: [RunResult] = []
    var chosenRates: [String] = []
    for d in draws {
      say("budget \(d.budget), draw \(d.draw): patients \(d.patients.map(String.init).joined(separator: ", ")) (\(d.train.count) train, \(d.validation.count) validation slices)")
      let rate = try baselineRate(d, random: random)
      if d.draw == 1 { chosenRates.append("budget \(d.budget): \(rate)") }
      for (method, mode) in Reproduction.methods(config, budget: d.budget, baselineRate: rate) {
        let initial = Reproduction.initial(
          method, random: random, probedRandom: probedRandom, backbones: backbones, simCLR: simCLRBackbone)
        runs.append(try downstream(method, mode: mode, initial: initial, d))
      }
    }
    let equivariance = try equivarianceFigures(pretrained: backbones[.infoNCE]!, random: random)
    // The claims and sanity checks see the trained rows only, as before the in-context rows existed.
    let table = ResultTable(runs: runs, budgets: config.budgets)
    let inContextValues: [InContextBackbone: [Float]] = [
      .infoNCE: backbones[.infoNCE]!, .barlowTwins: backbones[.barlowTwins]!, .random: try randomBackboneForInContext(probedRandom),
    ]
    for d in draws {
      say("in context, budget \(d.budget), draw \(d.draw):")
      for backbone in InContextBackbone.allCases {
        runs.append(try inContextRun(backbone, values: inContextValues[backbone]!, d))
      }
    }
    let propagation = try InContextBackbone.allCases.map { try self.propagation($0, values: inContextValues[$0]!) }
    let report = Report(
      dataSource: data.source, configuration: config, runs: runs, claims: Claims.evaluate(table),
      equivariance: equivariance, baselineLearningRates: chosenRates, stageSeconds: stageSeconds,
      totalSeconds: Date().timeIntervalSince(start) + (earlierWork?.seconds ?? 0), pretraining: try pretrainingOutcomes(),
      sanity: Claims.sanity(table), estimate: earlierWork?.estimate ?? plan.description,
      estimatedSeconds: earlierWork?.estimatedSeconds ?? plan.assumedSeconds, builds: store.buildsText(),
      simCLR: try store.load(SimCLROutcome.self, stage: Reproduction.simCLRStage), propagation: propagation)
    if report.builds?.hasPrefix("Computed by: ") == false { say(report.builds!) }
    try report.write(to: store.directory)
    let pictures = try writePictures(runs: runs, backbones: backbones, random: random, propagation: propagation)
    try report.writeHTML(pictures: pictures, to: store.directory)
    say("pictures: \(pictures.count) in \(store.directory.path)/pictures; report: report.html")
    if savePredictions {
      say("predictions: \(try writePredictions(runs: runs)) NIfTI files in \(store.directory.path)/predictions")
    }
    return report
  }

  /// The time estimate of the whole run from step times measured now (each the median of
  /// `repeats` after a warm-up; 1: a single timing without warm-up, for the paper preset).
  public func estimate(repeats: Int = 3) throws -> String {
    try makePlan(labelledDraws(), repeats: repeats).description
  }

  /// The printed estimate, every unfinished stage's assumed seconds (the plan's: measured step
  /// times times the steps a run is assumed still to take), for a scheduler that starts the longest
  /// stages first (`verify reproduce --jobs`), and the folder's `calibration`.
  public func estimateWithStageSeconds() throws -> (
    description: String, seconds: Double, stageSeconds: [String: Double], calibration: StageCalibration?
  ) {
    let draws = try labelledDraws()
    let plan = try makePlan(draws)
    var seconds: [String: Double] = [:]
    for stage in pretrainingStageNames where !finished(stage) {
      seconds[stage] = Double(plan.pretrainingSteps - (resumable(stage)?.step ?? 0)) * plan.times.pretraining
    }
    var untried = Dictionary(uniqueKeysWithValues: config.budgets.map { budget in
      (budget, untriedBaselineRates(budget: budget).map { Reproduction.baselineTrialStage(budget: budget, rate: $0) })
    })
    for stage in plan.searchStages { seconds[stage.name] = plan.seconds(stage) }
    for run in plan.runs {
      // The first draw's baseline runs are the rate search's trials, one stage each.
      var stage = runStage(run.method, budget: run.budget, draw: run.draw)
      if run.method == .supervised && run.draw == 1, let trial = untried[run.budget]?.first {
        stage = trial
        untried[run.budget]?.removeFirst()
      }
      seconds[stage, default: 0] += plan.seconds(run, steps: plan.assumedSteps(run))
    }
    return (plan.description, plan.assumedSeconds, seconds, calibration(plan, draws: draws))
  }

  /// The finished downstream runs' and pretrainings' recorded wall seconds against what the plan's
  /// step times, measured here and now, give for the steps they trained: how much slower than those
  /// step times this folder's stages ran (as `--jobs` children sharing the cores, on a loaded
  /// machine), so that `--jobs`'s time left is right before a stage of its own has finished. Nil
  /// when nothing has finished or nothing is left to time. A stage resumed from a checkpoint by a
  /// build from before 2026-12-01 recorded only its last process's seconds, which lowers the ratio.
  func calibration(_ plan: Plan, draws: [LabelledDraw]) -> StageCalibration? {
    guard plan.times.fineTuning > 0 else { return nil }
    var c = StageCalibration(assumedSeconds: 0, recordedSeconds: 0, stages: 0)
    for d in draws {
      let schedule = config.downstreamSchedule(trainingSlices: d.train.count)
      for (method, mode) in Reproduction.methods(config, budget: d.budget, baselineRate: 0) {
        guard let r = try? store.load(RunResult.self, stage: runStage(method, budget: d.budget, draw: d.draw)), r.seconds > 0
        else { continue }
        let run = Plan.Run(
          method: method, budget: d.budget, draw: d.draw, schedule: r.schedule ?? schedule, validationSlices: d.validation.count,
          linearProbe: mode.isLinearProbe)
        c.add(assumed: plan.seconds(run, steps: r.steps), recorded: r.seconds)
      }
    }
    for stage in pretrainingStageNames {
      let outcome: (any PretrainingSummary)? = stage == Reproduction.simCLRStage
        ? try? store.load(SimCLROutcome.self, stage: stage) : try? store.load(PretrainingOutcome.self, stage: stage)
      if let outcome, outcome.seconds > 0 { c.add(assumed: Double(outcome.steps) * plan.times.pretraining, recorded: outcome.seconds) }
    }
    return c.stages > 0 ? c : nil
  }

  /// The candidate baseline rates of a budget whose trial has not finished.
  func untriedBaselineRates(budget: Int) -> [Double] {
    config.baselineLearningRates.filter { !finished(Reproduction.baselineTrialStage(budget: budget, rate: $0)) }
  }

  /// The finished pretraining stages' outcomes, in objective order.
  func pretrainingOutcomes() throws -> [PretrainingOutcome] {
    try PretrainingObjective.allCases.compactMap { try store.load(PretrainingOutcome.self, stage: "pretrain-\($0.rawValue)") }
  }

  /// Every budget's seeded draws of labelled patients.
  func labelledDraws() throws -> [LabelledDraw] {
    var draws: [LabelledDraw] = []
    for budget in config.budgets {
      for draw in 1...config.drawCount(budget: budget) {
        let (patients, train, validation) = try data.labelled(budget: budget, seed: seed("draw-\(budget)-\(draw)"))
        draws.append(LabelledDraw(budget: budget, draw: draw, patients: patients, train: train, validation: validation))
      }
    }
    return draws
  }

  /// The random backbone every method starts from before its own training (the same for all):
  /// the seeded initialisation, or the `--init` backbone.
  func randomInitial() throws -> [Float] {
    var random = Pix2RepNetwork(config: config.model, backend: backend, seed: seed("init")).values
    if let initial = initialBackbone {
      try Safetensors.loadBackbone(initial.entries, file: initial.file, into: &random, layout: ParameterLayout(config: config.model))
    }
    return random
  }

  /// The weights a method's downstream run starts from.
  static func initial(
    _ method: Method, random: [Float], probedRandom: [Float], backbones: [PretrainingObjective: [Float]], simCLR: [Float]
  ) -> [Float] {
    switch method {
    case .supervised, .meanTeacher: random
    case .pix2repLinear, .pix2repFineTune, .pix2repMeanTeacher: backbones[.infoNCE]!
    case .simCLRLinear, .simCLRFineTune: simCLR
    case .barlowLinear, .barlowFineTune: backbones[.barlowTwins]!
    case .randomLinear: probedRandom
    case .pix2repInContext, .barlowInContext, .randomInContext: preconditionFailure("\(method.rawValue) trains nothing (InContext.swift)")
    }
  }

  /// The methods trained on every draw of a budget, in table order (the random-backbone control at
  /// budget 1 only). Mean Teacher trains at the budget's chosen baseline rate (it differs from the
  /// supervised U-Net only by its teacher), Pix2Rep FT + MT at the fine-tuning rates; both are
  /// `fineTune` modes that `train` hands to `trainMeanTeacher`.
  static func methods(_ config: ExperimentConfig, budget: Int, baselineRate: Double) -> [(Method, DownstreamMode)] {
    let fineTune = DownstreamMode.fineTune(backboneRate: config.fineTuneBackboneLearningRate, headRate: config.fineTuneHeadLearningRate)
    var list: [(Method, DownstreamMode)] = [
      (.supervised, .fineTune(backboneRate: baselineRate, headRate: config.fineTuneHeadLearningRate)),
      (.pix2repLinear, .linearProbe), (.pix2repFineTune, fineTune),
      (.barlowLinear, .linearProbe), (.barlowFineTune, fineTune),
    ]
    if budget == 1 { list.append((.randomLinear, .linearProbe)) }
    list += [
      (.simCLRLinear, .linearProbe), (.simCLRFineTune, fineTune),
      (.meanTeacher, .fineTune(backboneRate: baselineRate, headRate: config.fineTuneHeadLearningRate)),
      (.pix2repMeanTeacher, fineTune),
    ]
    return list
  }

  /// Every downstream run of the reproduction, with the baseline's rate search, and the step times
  /// measured here.
  func makePlan(_ draws: [LabelledDraw], repeats: Int = 3) throws -> Plan {
    var runs: [Plan.Run] = []
    for d in draws {
      let schedule = config.downstreamSchedule(trainingSlices: d.train.count)
      for (method, mode) in Reproduction.methods(config, budget: d.budget, baselineRate: 0)
      where !finished(runStage(method, budget: d.budget, draw: d.draw)) && !(method == .supervised && d.draw == 1) {
        runs.append(Plan.Run(
          method: method, budget: d.budget, draw: d.draw, schedule: schedule, validationSlices: d.validation.count,
          linearProbe: mode.isLinearProbe, resumed: resumable(runStage(method, budget: d.budget, draw: d.draw))))
      }
      if d.draw == 1 && !finished(runStage(.supervised, budget: d.budget, draw: 1)) {
        // The draw's baseline run is the chosen one of the rate search's trials: one run per untried rate.
        let untried = untriedBaselineRates(budget: d.budget)
        for (i, rate) in untried.enumerated() {
          runs.append(Plan.Run(
            method: .supervised, budget: d.budget, draw: d.draw, schedule: schedule, validationSlices: d.validation.count,
            linearProbe: false, searchOnly: i < untried.count - 1,
            resumed: resumable(Reproduction.baselineTrialStage(budget: d.budget, rate: rate))))
        }
      }
    }
    // SimCLR's stage is timed as a Pix2Rep pretraining step (its encoder-only step costs less).
    let pretrainingStages = PretrainingObjective.allCases.filter { !finished("pretrain-\($0.rawValue)") }.count
      + (finished(Reproduction.simCLRStage) ? 0 : 1)
    let searches = unfinishedSearchStages(draws)
    // Nothing to time when every stage has finished (a resumed run that only assembles the table).
    let times = runs.isEmpty && pretrainingStages == 0 && searches.isEmpty
      ? Plan.StepTimes(pretraining: 0, fineTuning: 0, linearProbing: 0, forward: 0, meanTeacher: 0)
      : Plan.measure(backend: backend, config: config, data: data.pretrainingTrain, repeats: repeats)
    let pretrainingStepsDone = pretrainingStageNames.filter { !finished($0) }.reduce(0) { $0 + (resumable($1)?.step ?? 0) }
    return Plan(
      runs: runs, pretrainingSteps: config.pretrainingSteps, pretrainingStages: pretrainingStages,
      pretrainingStepsDone: pretrainingStepsDone,
      times: times, testSlices: data.test.count, batch: config.downstreamBatch, searchStages: searches)
  }

  // MARK: - Stages

  /// The best-validation weights of one pretraining objective (trained now or loaded).
  mutating func pretrained(_ objective: PretrainingObjective, initial: [Float]? = nil) throws -> [Float] {
    let stage = "pretrain-\(objective.rawValue)"
    return try pretrainingStage(
      stage, PretrainingOutcome.self,
      plan: "\(config.pretrainingSteps) steps of batch \(config.pretrainingBatch), Adam lr \(config.pretrainingLearningRate)"
    ) { r, checkpoint in
      let settings = PretrainingLoss(objective: objective, temperature: r.config.temperature, lambda: r.config.barlowLambda)
      return try Experiment.pretrain(
        backend: r.backend, loss: settings, train: r.data.pretrainingTrain, validation: r.data.pretrainingValidation,
        config: r.config, seed: r.seed("init"), label: stage, initial: initial, checkpoint: checkpoint)
    }
  }

  /// The SimCLR-pretrained backbone (trained now or loaded), from the random backbone every method
  /// starts from.
  mutating func simCLRPretrained(_ random: [Float]) throws -> [Float] {
    let stage = Reproduction.simCLRStage
    return try pretrainingStage(
      stage, SimCLROutcome.self,
      plan: "\(config.pretrainingSteps) steps of batch \(config.pretrainingBatch), Adam lr \(config.pretrainingLearningRate), tau \(BaselineSettings.simCLRTemperature)"
    ) { r, checkpoint in
      try pretrainSimCLR(
        backend: r.backend, initial: random, train: r.data.pretrainingTrain, validation: r.data.pretrainingValidation,
        config: r.config, seed: r.seed(stage), label: stage, checkpoint: checkpoint)
    }
  }

  /// A pretraining stage's best-validation weights: loaded when the stage has finished, else
  /// trained by `train` (under the stage's claim, with the stage's checkpoint policy: an
  /// interrupted pretraining resumes from its last checkpoint) and stored with its outcome, the
  /// checkpoint then removed. `plan` describes the schedule in the log.
  mutating func pretrainingStage<Outcome: PretrainingSummary>(
    _ stage: String, _: Outcome.Type, plan: String,
    train: (Reproduction, CheckpointPolicy) throws -> (values: [Float], outcome: Outcome)
  ) throws -> [Float] {
    let url = store.weightsURL(stage)
    if let outcome = try store.load(Outcome.self, stage: stage) {
      say("\(stage): finished earlier (best validation \(String(format: "%.4f", outcome.bestValidationLoss)) at step \(outcome.bestStep)), loading \(url.lastPathComponent)")
      stageSeconds[stage] = outcome.seconds
      return try WeightsFile.read(from: url, expecting: config.model)
    }
    return try store.withClaim(stage) {
      if finished(stage) { return try WeightsFile.read(from: url, expecting: config.model) }
      say("\(stage): \(plan)")
      let (values, outcome) = try train(self, CheckpointPolicy(url: store.checkpointURL(stage)))
      try WeightsFile.write(values: values, config: config.model, to: url)
      try store.save(outcome, stage: stage)
      try? FileManager.default.removeItem(at: store.checkpointURL(stage))  // finished: nothing to resume
      stageSeconds[stage] = outcome.seconds
      say(String(format: "%@: best validation %.4f at step %d of %d; validation loss changed by %+.2f%% over the last quarter", stage,
        outcome.bestValidationLoss, outcome.bestStep, outcome.steps, (outcome.relativeChangeLastQuarter ?? .nan) * 100))
      tracker.finishedPretraining()
      return values
    }
  }

  /// Whether a stage has finished (its result file exists).
  func finished(_ stage: String) -> Bool { FileManager.default.fileExists(atPath: store.stageURL(stage).path) }

  /// How far an unfinished stage's checkpoint has trained, when this build saved it (the stage will
  /// resume from there); nil otherwise.
  func resumable(_ stage: String) -> CheckpointedProgress? { CheckpointedProgress.resumable(at: store.checkpointURL(stage)) }

  /// The pretraining stages: Pix2Rep's objectives, then SimCLR.
  var pretrainingStageNames: [String] {
    PretrainingObjective.allCases.map { "pretrain-\($0.rawValue)" } + [Reproduction.simCLRStage]
  }

  /// The random backbone for the random-backbone probe: its BatchNorm running statistics
  /// re-estimated on the unlabelled pretraining slices (training-mode forward passes, cumulative
  /// average, no weight change), so evaluation-mode BatchNorm normalises as it would after
  /// training. Without this the statistics stay at mean 0, variance 1 and the probe sees a signal
  /// that fades through the layers.
  mutating func randomBackboneForProbing(_ random: [Float]) throws -> [Float] {
    try statisticsStage(
      Reproduction.randomStatisticsStage, of: random, what: "BatchNorm running statistics", use: "the random-backbone probe"
    ) { net, batches in net.reestimateBatchNormStatistics(over: batches) }
  }

  /// A stage that re-estimates running statistics of `values` on the unlabelled pretraining slices
  /// (`reestimate` passes the batches through the network) and stores the weights: computed now,
  /// under the stage's claim, or loaded when it has finished. `what` and `use` name the statistics
  /// and their user in the log.
  mutating func statisticsStage(
    _ stage: String, of values: [Float], what: String, use: String,
    reestimate: (inout Pix2RepNetwork<OptimizedBackend>, LazyMapSequence<[[Int]], Tensor<Float>>) -> Void
  ) throws -> [Float] {
    let url = store.weightsURL(stage)
    if finished(stage) { return try WeightsFile.read(from: url, expecting: config.model) }
    return try store.withClaim(stage) {
      if finished(stage) { return try WeightsFile.read(from: url, expecting: config.model) }
      let start = Date()
      var net = Pix2RepNetwork(config: config.model, backend: backend, values: values)
      let train = data.pretrainingTrain
      reestimate(&net, train.batches(of: config.downstreamBatch).lazy.map { train.imageTensor($0) as Tensor<Float> })
      try WeightsFile.write(values: net.values, config: config.model, to: url)
      let seconds = Date().timeIntervalSince(start)
      try store.save(seconds, stage: stage)
      say(String(format: "random backbone: %@ re-estimated on the %d unlabelled pretraining slices in %.1f s (for %@)", what, train.count, seconds, use))
      return net.values
    }
  }

  /// The supervised baseline's backbone learning rate for a budget: chosen on the first draw's
  /// validation split among `baselineLearningRates`, then kept for the budget's other draws. The
  /// chosen rate's run is the first draw's baseline run (same seed, same schedule), so it is
  /// evaluated and stored as that run instead of being trained a second time.
  mutating func baselineRate(_ d: LabelledDraw, random: [Float]) throws -> Double {
    let stage = "baseline-rate-\(d.budget)"
    if let chosen = try store.load(Double.self, stage: stage) { return chosen }
    precondition(d.draw == 1, "the baseline rate is chosen on the first draw")
    var trials: [RunResult] = []
    for rate in config.baselineLearningRates {
      trials.append(try baselineTrial(d, rate: rate, random: random))
    }
    return try store.withClaim(stage) {
      if let chosen = try store.load(Double.self, stage: stage) { return chosen }
      return try chooseBaselineRate(d, trials: trials, stage: stage)
    }
  }

  /// The stage of the baseline trained at one candidate rate on a budget's first draw.
  static func baselineTrialStage(budget: Int, rate: Double) -> String { "baseline-\(budget)-lr-\(rate)" }

  /// The baseline trained at `rate` on the budget's first draw and evaluated (a stage of its own,
  /// so the candidate rates can train at the same time, and an interruption loses at most one).
  /// Every candidate uses the seed of the draw's baseline run, which the chosen one becomes.
  mutating func baselineTrial(_ d: LabelledDraw, rate: Double, random: [Float]) throws -> RunResult {
    let stage = Reproduction.baselineTrialStage(budget: d.budget, rate: rate)
    if let done = try store.load(RunResult.self, stage: stage) { return done }
    return try store.withClaim(stage) {
      if let done = try store.load(RunResult.self, stage: stage) { return done }
      let start = Date()
      let outcome = try trainDownstream(
        backend: backend, mode: .fineTune(backboneRate: rate, headRate: config.fineTuneHeadLearningRate), initial: random,
        train: d.train, validation: d.validation, config: config, seed: seed(runStage(.supervised, budget: d.budget, draw: d.draw)),
        label: "baseline lr \(rate), budget \(d.budget)", checkpoint: CheckpointPolicy(url: store.checkpointURL(stage)))
      say(String(format: "  baseline lr %g: best validation loss %.4f at step %d of %d (%@)", rate, outcome.bestValidationLoss,
        outcome.bestStep, outcome.steps, outcome.stopReason.rawValue))
      let weights = d.budget == 1 ? store.weightsURL(stage) : nil
      let result = try record(
        .supervised, rate: rate, outcome: outcome, d, trainingSeconds: outcome.earlierSeconds + Date().timeIntervalSince(start),
        stage: stage, weights: weights)
      let searchOnly = tracker.remaining.contains { $0.method == .supervised && $0.budget == d.budget && $0.draw == d.draw && $0.searchOnly }
      tracker.finished(
        .supervised, budget: d.budget, draw: d.draw, searchOnly: searchOnly, seconds: result.seconds - outcome.earlierSeconds,
        steps: outcome.steps)
      return result
    }
  }

  /// Chooses the candidate with the lowest best validation loss (the first on a tie) and makes its
  /// trial the draw's baseline run.
  mutating func chooseBaselineRate(_ d: LabelledDraw, trials: [RunResult], stage: String) throws -> Double {
    guard var best = trials.first else { throw ExperimentError("no baseline learning rates to choose from") }
    for trial in trials.dropFirst() where trial.bestValidationLoss < best.bestValidationLoss { best = trial }
    guard let rate = best.chosenLearningRate else { throw ExperimentError("stage \(stage): a baseline trial without its rate") }
    say("  baseline learning rate for budget \(d.budget): \(rate) (lowest validation loss)")
    // The rates not chosen (the chosen run's time is counted with the downstream runs).
    stageSeconds["baseline rate search", default: 0] += trials.reduce(0) { $0 + $1.seconds } - best.seconds
    let runStage = runStage(.supervised, budget: d.budget, draw: d.draw)
    if try store.load(RunResult.self, stage: runStage) == nil {
      if d.budget == 1 {
        let values = try WeightsFile.read(from: store.weightsURL(Reproduction.baselineTrialStage(budget: 1, rate: rate)), expecting: config.model)
        try WeightsFile.write(values: values, config: config.model, to: downstreamWeightsURL(.supervised))
      }
      try store.save(best, stage: runStage)
      stageSeconds["downstream", default: 0] += best.seconds
      recordedBySearch.insert(runStage)
    }
    try store.save(rate, stage: stage)
    return rate
  }

  /// The stage name of a downstream run, also the name its seed is derived from.
  func runStage(_ method: Method, budget: Int, draw: Int) -> String {
    Reproduction.runStageName(method, budget: budget, draw: draw)
  }

  static func runStageName(_ method: Method, budget: Int, draw: Int) -> String { "run-\(method.key)-\(budget)-\(draw)" }

  /// One downstream run, trained and evaluated now or loaded.
  mutating func downstream(_ method: Method, mode: DownstreamMode, initial: [Float], _ d: LabelledDraw) throws -> RunResult {
    let stage = runStage(method, budget: d.budget, draw: d.draw)
    if let done = try store.load(RunResult.self, stage: stage) {
      if !recordedBySearch.contains(stage) {
        say(String(format: "  %@: finished earlier, Dice %.3f", method.rawValue, done.summary.mean))
        stageSeconds["downstream", default: 0] += done.seconds
      }
      return done
    }
    return try store.withClaim(stage) {
      if let done = try store.load(RunResult.self, stage: stage) { return done }
      return try train(method, mode: mode, initial: initial, d, stage: stage)
    }
  }

  /// Trains and records one downstream run.
  mutating func train(_ method: Method, mode: DownstreamMode, initial: [Float], _ d: LabelledDraw, stage: String) throws -> RunResult {
    if method.isMeanTeacher, case .fineTune(let backboneRate, let headRate) = mode {
      return try trainMeanTeacherRun(method, backboneRate: backboneRate, headRate: headRate, initial: initial, d, stage: stage)
    }
    let start = Date()
    let outcome = try trainDownstream(
      backend: backend, mode: mode, initial: initial, train: d.train, validation: d.validation, config: config,
      seed: seed(stage), label: "\(method.rawValue), budget \(d.budget), draw \(d.draw)",
      checkpoint: CheckpointPolicy(url: store.checkpointURL(stage)))
    var rate: Double? = nil
    if case .fineTune(let r, _) = mode, method == .supervised { rate = r }
    return try recordTrained(method, rate: rate, outcome: outcome, d, since: start, stage: stage)
  }

  /// Trains and records one Mean Teacher run (`trainMeanTeacher`): its unlabelled slices are the
  /// pretraining training slices of the training patients not drawn (`unlabelledSlices`).
  mutating func trainMeanTeacherRun(
    _ method: Method, backboneRate: Double, headRate: Double, initial: [Float], _ d: LabelledDraw, stage: String
  ) throws -> RunResult {
    let start = Date()
    let outcome = try trainMeanTeacher(
      backend: backend, initial: initial, backboneRate: backboneRate, headRate: headRate, train: d.train,
      unlabelled: unlabelledSlices(data.pretrainingTrain, excluding: d.patients, fallback: d.train), validation: d.validation,
      config: config, seed: seed(stage), label: "\(method.rawValue), budget \(d.budget), draw \(d.draw)",
      checkpoint: CheckpointPolicy(url: store.checkpointURL(stage)))
    return try recordTrained(method, rate: nil, outcome: outcome, d, since: start, stage: stage)
  }

  /// Records a run trained since `start` (evaluated, stored as its stage, its weights kept at budget
  /// 1, draw 1 for the pictures) and counts its time.
  mutating func recordTrained(
    _ method: Method, rate: Double?, outcome: DownstreamOutcome, _ d: LabelledDraw, since start: Date, stage: String
  ) throws -> RunResult {
    let weights = d.budget == 1 && d.draw == 1 ? downstreamWeightsURL(method) : nil
    let result = try record(
      method, rate: rate, outcome: outcome, d, trainingSeconds: outcome.earlierSeconds + Date().timeIntervalSince(start),
      stage: stage, weights: weights)
    stageSeconds["downstream", default: 0] += result.seconds
    // This process's seconds: the tracker's assumed seconds of a resumed run are those it had left.
    tracker.finished(
      method, budget: d.budget, draw: d.draw, searchOnly: false, seconds: result.seconds - outcome.earlierSeconds, steps: outcome.steps)
    return result
  }

  /// Evaluates a trained downstream run on the test volumes and stores it as the finished `stage`,
  /// with its weights at `weights` when given (budget 1, draw 1: for the pictures and predictions).
  mutating func record(
    _ method: Method, rate: Double?, outcome: DownstreamOutcome, _ d: LabelledDraw, trainingSeconds: Double, stage: String,
    weights: URL?
  ) throws -> RunResult {
    let start = Date()
    var net = Pix2RepNetwork(config: config.model, backend: backend, values: outcome.values)
    let scores = evaluate(&net, test: data.test, batchSize: config.downstreamBatch)
    let result = RunResult(
      method: method, budget: d.budget, draw: d.draw, patients: d.patients, summary: DiceSummary(scores), volumes: scores,
      chosenLearningRate: rate, steps: outcome.steps, bestValidationLoss: outcome.bestValidationLoss,
      seconds: trainingSeconds + Date().timeIntervalSince(start), curve: outcome.curve, bestStep: outcome.bestStep,
      schedule: outcome.schedule, stopReason: outcome.stopReason)
    if let weights {
      // Written before the stage, so a resumed run has them.
      try WeightsFile.write(values: outcome.values, config: config.model, to: weights)
    }
    try store.save(result, stage: stage)
    try? FileManager.default.removeItem(at: store.checkpointURL(stage))  // finished: nothing to resume
    say(String(format: "  %@: test Dice %.3f (RV %.3f, MYO %.3f, LV %.3f); stopped by %@ after %d steps (%.1f epochs), best at step %d; %@",
      method.rawValue, result.summary.mean, result.summary.perClass[0], result.summary.perClass[1], result.summary.perClass[2],
      outcome.stopReason.rawValue, outcome.steps, result.epochs ?? 0, outcome.bestStep, formatDuration(result.seconds)))
    return result
  }

  /// The learned equivariance figures of the InfoNCE backbone and of the random one.
  func equivarianceFigures(pretrained: [Float], random: [Float]) throws -> [EquivarianceFigure] {
    if let done = try store.load([EquivarianceFigure].self, stage: "equivariance") { return done }
    return try store.withClaim("equivariance") {
      if let done = try store.load([EquivarianceFigure].self, stage: "equivariance") { return done }
      return try measureEquivarianceFigures(pretrained: pretrained, random: random)
    }
  }

  /// Measures and stores the equivariance figures.
  func measureEquivarianceFigures(pretrained: [Float], random: [Float]) throws -> [EquivarianceFigure] {
    let figures = [("Pix2Rep (InfoNCE)", pretrained), (initialLabel, random)].map { (name, values) in
      var net = Pix2RepNetwork(config: config.model, backend: backend, values: values)
      return measureEquivariance(&net, name: name, test: data.test, slices: 32, seed: seed("equivariance"))
    }
    try store.save(figures, stage: "equivariance")
    return figures
  }
}
