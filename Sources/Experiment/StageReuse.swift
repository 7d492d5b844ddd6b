import Foundation

/// Stages shared between run folders whose configurations differ only in options that some stages
/// never read: a longer pretraining leaves the supervised baselines as they were, another epoch
/// cap leaves the pretrainings and every downstream run that stopped by patience before either cap,
/// other evaluation-mode convolutions leave the pretrainings (their validation loss runs the
/// training-mode network), the random backbone's statistics and the equivariance figures (the
/// taped network's frozen features). `verify reproduce --reuse DIR` copies such finished stages of DIR
/// into the run folder instead of computing them again; each keeps its `.build` record of the build
/// that computed it, and the log names every stage copied.
public enum StageReuse {
  /// The options in which two run folders may differ and still share stages.
  public enum Option: String, CaseIterable, Sendable {
    case pretrainingSteps = "pretraining-steps"
    case maxEpochs = "max-epochs"
    case inferenceConvolutions = "inference-convolutions"

    func value(_ config: ExperimentConfig) -> String {
      switch self {
      case .pretrainingSteps: String(config.pretrainingSteps)
      case .maxEpochs: String(config.maxEpochs)
      case .inferenceConvolutions: config.inferenceConvolutions.rawValue
      }
    }

    func set(_ config: inout ExperimentConfig, from other: ExperimentConfig) {
      switch self {
      case .pretrainingSteps: config.pretrainingSteps = other.pretrainingSteps
      case .maxEpochs: config.maxEpochs = other.maxEpochs
      case .inferenceConvolutions: config.inferenceConvolutions = other.inferenceConvolutions
      }
    }
  }

  /// The options a stage reads itself, its inputs aside: pretrainings their length; the baseline's
  /// trials, its rate choice and every downstream run their epoch cap and the evaluation-mode
  /// convolutions (validation, test Dice, linear probing's features); the random backbone's
  /// statistics and the equivariance figures none. A stage of any other kind counts as reading
  /// every option, so it is never shared across a difference.
  package static func optionsRead(by stage: String) -> Set<Option> {
    if stage.hasPrefix("pretrain-") { return [.pretrainingSteps] }
    if stage.hasPrefix("baseline-") || stage.hasPrefix("run-") { return downstreamRunOptions }
    if stage == Reproduction.randomStatisticsStage || stage == "equivariance" { return [] }
    return Set(Option.allCases)
  }

  /// What a downstream run (or a baseline trial or rate choice) reads.
  static let downstreamRunOptions: Set<Option> = [.maxEpochs, .inferenceConvolutions]

  /// Results a stage stores under other names: the rate choice `baseline-rate-B` stores the chosen
  /// trial as the budget's first baseline run.
  static func companions(of stage: String) -> [String] {
    guard stage.hasPrefix("baseline-rate-"), let budget = Int(stage.dropFirst("baseline-rate-".count)) else { return [] }
    return [Reproduction.runStageName(.supervised, budget: budget, draw: 1)]
  }

  /// The stages of `identity`'s plan that a folder made with `other` computed to the same bits:
  /// those that, with their inputs, read none of the options in which the two differ; and, when
  /// only the epoch cap differs, the downstream runs that `finishedRun` (the other folder's result
  /// of a stage, nil when it has none) shows stopped by patience within both caps
  /// (`stoppedWithinCaps`), with the rate choices whose trials all did. Nil, with the reason,
  /// when the two differ in anything else (data, initial backbone, seed, sizes, rates...).
  public static func shareable(
    _ identity: RunIdentity, from other: RunIdentity, finishedRun: (String) -> RunResult? = { _ in nil }
  ) -> (stages: [String], differing: [Option])? {
    var aligned = other
    for option in Option.allCases { option.set(&aligned.config, from: identity.config) }
    guard aligned == identity else { return nil }
    let differing = Option.allCases.filter { $0.value(identity.config) != $0.value(other.config) }
    var shareable = Set<String>()
    for stage in Reproduction.stages(identity.config) where stage.inputs.allSatisfy(shareable.contains) {  // inputs come first
      let read = optionsRead(by: stage.name)
      if read.isDisjoint(with: differing) {
        shareable.insert(stage.name)
      } else if differing == [.maxEpochs] && read == downstreamRunOptions {
        // A rate choice reads the cap only through its trials (its inputs, shared above).
        let runs = stage.name.hasPrefix("baseline-rate-") ? companions(of: stage.name) : [stage.name]
        if runs.allSatisfy({ finishedRun($0).map { stoppedWithinCaps($0, maxEpochs: identity.config.maxEpochs) } ?? false }) {
          shareable.insert(stage.name)
        }
      }
    }
    return (Reproduction.stages(identity.config).map(\.name).filter(shareable.contains), differing)
  }

  /// Whether a downstream run would have taken the same steps under a cap of `maxEpochs` epochs: it
  /// stopped by patience at a validation of its schedule (not at its cap's extra validation) and
  /// within the new cap. Its validations, its early stop and Mean Teacher's ramp-up (as long as the
  /// shortest run, which a run stopped by patience has reached) then do not depend on the cap.
  package static func stoppedWithinCaps(_ run: RunResult, maxEpochs: Int) -> Bool {
    guard let schedule = run.schedule, run.stopReason == .patience else { return false }
    return run.steps % schedule.validationInterval == 0 && run.steps <= maxEpochs * schedule.stepsPerEpoch
  }
}

extension RunStore {
  /// Copies into this folder (opened with `identity`) every finished stage of the run folder
  /// `source` that `StageReuse.shareable` allows and this folder lacks: its result, its `.build`
  /// record and its weights. Says which, and returns their names. An error names `source` when it
  /// is not a run folder or was made with a configuration that differs in more than the shareable
  /// options. `only`, when given, limits the copy to those stages (`verify ablate` takes the
  /// InfoNCE pretraining and its runs).
  public func reuseStages(from source: URL, identity: RunIdentity, only: Set<String>? = nil) throws -> [String] {
    let configFile = source.appendingPathComponent("config.json")
    guard let data = FileManager.default.contents(atPath: configFile.path) else {
      throw ExperimentError("\(configFile.path): not found; --reuse takes a run folder")
    }
    guard let other = try? JSONDecoder().decode(RunIdentity.self, from: data) else {
      throw ExperimentError("\(configFile.path): not a run folder's configuration of this version")
    }
    let from = RunStore(directory: source)
    let finishedRun = { (stage: String) in try? from.load(RunResult.self, stage: stage) }
    guard let (stages, differing) = StageReuse.shareable(identity, from: other, finishedRun: finishedRun) else {
      let options = StageReuse.Option.allCases.map { "--\($0.rawValue)" }.joined(separator: ", ")
      throw ExperimentError("\(source.path): made with another configuration, data or initial backbone; --reuse shares stages only across \(options)")
    }
    let fm = FileManager.default
    var copied: [String] = []
    for stage in stages where only?.contains(stage) != false && fm.fileExists(atPath: from.stageURL(stage).path)
      && !fm.fileExists(atPath: stageURL(stage).path)
    {
      // Weights and build records first, the stage's own result last: a stage counts as finished
      // once its result exists, so an interrupted copy leaves it unfinished, never half there.
      // A rate choice also stored its budget's first baseline run (`chooseBaselineRate`).
      let names = StageReuse.companions(of: stage) + [stage]
      for name in names {
        for (file, target) in [(from.weightsURL(name), weightsURL(name)), (from.buildURL(name), buildURL(name))]
        where fm.fileExists(atPath: file.path) {
          try writeAtomically(try Data(contentsOf: file), to: target)
        }
      }
      for name in names where fm.fileExists(atPath: from.stageURL(name).path) {
        if differing.contains(.maxEpochs), var run = finishedRun(name), let schedule = run.schedule {
          // A run shared across caps (it stopped before either): the schedule this folder gives it.
          run.schedule?.maxSteps = identity.config.maxEpochs * schedule.stepsPerEpoch
          try writeAtomically(try encoder().encode(run), to: stageURL(name))
        } else {
          try writeAtomically(try Data(contentsOf: from.stageURL(name)), to: stageURL(name))
        }
      }
      copied.append(stage)
    }
    let what = differing.isEmpty ? "the same configuration" : "a configuration differing in " + differing.map { "--\($0.rawValue)" }.joined(separator: ", ")
    say("--reuse \(source.path) (\(what)): \(copied.count) finished stage(s) copied" + (copied.isEmpty ? "" : ": " + copied.joined(separator: ", ")))
    return copied
  }
}
