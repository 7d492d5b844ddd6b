import Foundation
import Reference

/// The reproduction as separate stages, for an existing scheduler (a Slurm job array, GNU
/// parallel) over a run folder on a shared file system: `verify reproduce --list-stages` prints
/// them in dependency order, `verify reproduce --stage NAME` computes one, and the plain command
/// then assembles the table from the finished stages. Every stage draws its randomness from its
/// own name, so the results do not depend on which process or machine ran it, nor in which order.
extension Reproduction {
  /// One stage: its name, the stages whose results it reads, and its level (every input has a lower
  /// level, so the stages of one level can run at the same time once the lower levels are done).
  public struct Stage: Sendable {
    public var name: String
    public var inputs: [String]
    public var level: Int
  }

  /// Every stage of the plan, in dependency order. The first draw's baseline run is not listed: the
  /// budget's rate search stores it (`baseline-B-lr-RATE` trains one candidate rate; `baseline-rate-B`
  /// chooses among them and makes the chosen trial the draw's run).
  public static func stages(_ config: ExperimentConfig) -> [Stage] {
    var list: [Stage] = PretrainingObjective.allCases.map { Stage(name: "pretrain-\($0.rawValue)", inputs: [], level: 0) }
    list.append(Stage(name: Reproduction.randomStatisticsStage, inputs: [], level: 0))
    list.append(Stage(name: Reproduction.simCLRStage, inputs: [], level: 0))
    for budget in config.budgets {
      for rate in config.baselineLearningRates {
        list.append(Stage(name: baselineTrialStage(budget: budget, rate: rate), inputs: [], level: 0))
      }
    }
    for budget in config.budgets {
      let trials = config.baselineLearningRates.map { baselineTrialStage(budget: budget, rate: $0) }
      list.append(Stage(name: "baseline-rate-\(budget)", inputs: trials, level: 1))
    }
    for budget in config.budgets {
      for draw in 1...config.drawCount(budget: budget) {
        for (method, _) in methods(config, budget: budget, baselineRate: 0) where !(method == .supervised && draw == 1) {
          list.append(Stage(
            name: runStageName(method, budget: budget, draw: draw), inputs: [input(of: method, budget: budget)],
            level: method == .supervised || method == .meanTeacher ? 2 : 1))
        }
      }
    }
    list.append(Stage(name: "equivariance", inputs: ["pretrain-\(PretrainingObjective.infoNCE.rawValue)"], level: 1))
    return list + inContextStages(config)
  }

  static let randomStatisticsStage = "random-backbone-statistics"
  /// The SimCLR pretraining stage (the image-level baseline's encoder).
  static let simCLRStage = "pretrain-simclr"

  /// The stage a downstream run of `method` reads its starting weights (or rate) from.
  static func input(of method: Method, budget: Int) -> String {
    switch method {
    case .supervised, .meanTeacher: "baseline-rate-\(budget)"
    case .pix2repLinear, .pix2repFineTune, .pix2repMeanTeacher: "pretrain-\(PretrainingObjective.infoNCE.rawValue)"
    case .simCLRLinear, .simCLRFineTune: Reproduction.simCLRStage
    case .barlowLinear, .barlowFineTune: "pretrain-\(PretrainingObjective.barlowTwins.rawValue)"
    case .randomLinear: Reproduction.randomStatisticsStage
    case .pix2repInContext: InContextBackbone.infoNCE.inputStage
    case .barlowInContext: InContextBackbone.barlowTwins.inputStage
    case .randomInContext: InContextBackbone.random.inputStage
    }
  }

  /// Computes one stage into the run folder (nothing when it has finished); refuses a stage whose
  /// inputs have not finished, naming them.
  public mutating func computeStage(named name: String) throws {
    guard let stage = Reproduction.stages(config).first(where: { $0.name == name }) else {
      throw ExperimentError("unknown stage '\(name)' (verify reproduce --list-stages lists the stages of this preset)")
    }
    let missing = stage.inputs.filter { !finished($0) }
    guard missing.isEmpty else {
      throw ExperimentError("stage \(name) needs \(missing.joined(separator: ", ")), which has not finished: run it first")
    }
    if finished(name) {
      say("\(name): finished earlier")
      return
    }
    let random = try randomInitial()
    if name == Reproduction.simCLRStage {
      _ = try simCLRPretrained(random)
    } else if name.hasPrefix("pretrain-"), let objective = PretrainingObjective(rawValue: String(name.dropFirst("pretrain-".count))) {
      _ = try pretrained(objective, initial: initialBackbone == nil ? nil : random)
    } else if name == Reproduction.randomStatisticsStage {
      _ = try randomBackboneForProbing(random)
    } else if name.hasPrefix("baseline-rate-"), let budget = Int(name.dropFirst("baseline-rate-".count)) {
      _ = try baselineRate(firstDraw(budget, stage: name), random: random)
    } else if let rate = config.baselineLearningRates.first(where: { name.hasSuffix("-lr-\($0)") }), name.hasPrefix("baseline-"),
      let budget = config.budgets.first(where: { name == Reproduction.baselineTrialStage(budget: $0, rate: rate) })
    {
      _ = try baselineTrial(firstDraw(budget, stage: name), rate: rate, random: random)
    } else if name == "equivariance" {
      let pretrainedValues = try WeightsFile.read(from: store.weightsURL("pretrain-infoNCE"), expecting: config.model)
      _ = try equivarianceFigures(pretrained: pretrainedValues, random: random)
    } else if try computeInContextStage(named: name, random: random) {
      return
    } else {
      try runDownstreamStage(name, random: random)
    }
  }

  /// The first draw of `budget`, on which the baseline's rate is chosen.
  func firstDraw(_ budget: Int, stage: String) throws -> LabelledDraw {
    guard let first = try labelledDraws().first(where: { $0.budget == budget && $0.draw == 1 }) else {
      throw ExperimentError("stage \(stage): budget \(budget) has no draws")
    }
    return first
  }

  /// A `run-METHOD-B-D` stage: the draw's data, the method's starting weights, its training.
  mutating func runDownstreamStage(_ name: String, random: [Float]) throws {
    guard let (method, budget, draw) = Method.allCases.lazy.compactMap({ method -> (Method, Int, Int)? in
      let prefix = "run-\(method.key)-"
      guard name.hasPrefix(prefix) else { return nil }
      // Exactly "B-D" after the key ("run-pix2rep-ft-" also begins "run-pix2rep-ft-mt-1-1").
      let parts = name.dropFirst(prefix.count).split(separator: "-", omittingEmptySubsequences: false)
      guard parts.count == 2, let budget = Int(parts[0]), let draw = Int(parts[1]) else { return nil }
      return (method, budget, draw)
    }).first, let d = try labelledDraws().first(where: { $0.budget == budget && $0.draw == draw })
    else { throw ExperimentError("stage \(name): not a run of this plan") }
    let rate = method == .supervised || method == .meanTeacher
      ? try store.load(Double.self, stage: "baseline-rate-\(budget)") ?? 0 : 0
    guard let mode = Reproduction.methods(config, budget: budget, baselineRate: rate).first(where: { $0.0 == method })?.1 else {
      throw ExperimentError("stage \(name): \(method.rawValue) is not trained at budget \(budget)")
    }
    // The baseline and Mean Teacher start from the random initialisation; every other method from the weights its
    // input stage stored.
    let initial = method == .supervised || method == .meanTeacher
      ? random : try WeightsFile.read(from: store.weightsURL(Reproduction.input(of: method, budget: budget)), expecting: config.model)
    _ = try downstream(method, mode: mode, initial: initial, d)
  }
}

extension Reproduction {
  /// The table, claims and checks of the stages finished so far, training nothing (`verify
  /// reproduce --partial`): to look at a long run while it goes on, or at one that stopped early.
  /// Cells and claims with missing runs say so; the stage times are the finished stages' own.
  public func partialReport() throws -> Report {
    var runs: [RunResult] = []
    var rates: [String] = []
    var seconds: [String: Double] = [:]
    for budget in config.budgets {
      if let rate = try store.load(Double.self, stage: "baseline-rate-\(budget)") { rates.append("budget \(budget): \(rate)") }
      for draw in 1...config.drawCount(budget: budget) {
        for (method, _) in Reproduction.methods(config, budget: budget, baselineRate: 0) {
          if let run = try store.load(RunResult.self, stage: runStage(method, budget: budget, draw: draw)) {
            runs.append(run)
            seconds["downstream", default: 0] += run.seconds
          }
        }
      }
    }
    let pretraining = try pretrainingOutcomes()
    for outcome in pretraining { seconds["pretrain-\(outcome.objective.rawValue)"] = outcome.seconds }
    let simCLR = try store.load(SimCLROutcome.self, stage: Reproduction.simCLRStage)
    if let simCLR { seconds[Reproduction.simCLRStage] = simCLR.seconds }
    let table = ResultTable(runs: runs, budgets: config.budgets)
    let inContext = try finishedInContext()
    for run in inContext.runs { seconds["in-context", default: 0] += run.seconds }
    for result in inContext.propagation { seconds["propagation", default: 0] += result.seconds }
    return Report(
      dataSource: data.source, configuration: config, runs: runs + inContext.runs, claims: Claims.evaluate(table),
      equivariance: try store.load([EquivarianceFigure].self, stage: "equivariance") ?? [], baselineLearningRates: rates,
      stageSeconds: seconds, totalSeconds: seconds.values.reduce(0, +), pretraining: pretraining, sanity: Claims.sanity(table),
      estimate: "partial: \(runs.count) of \(Reproduction.stages(config).filter { $0.name.hasPrefix("run-") }.count + config.budgets.count) downstream runs finished",
      builds: store.buildsText(), simCLR: simCLR, propagation: inContext.propagation)
  }
}
