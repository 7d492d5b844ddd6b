import Foundation
import Optimized
import Reference

/// `verify ablate` (docs/PROTOCOL.md section 10): for every point of an `AblationGrid`, the InfoNCE
/// pretraining with that point's configuration, then linear probing, fine-tuning and in-context
/// segmentation on the reproduction's draws at budgets 1 and 5.
///
/// Each point is a reproduction run folder of its own (`points/KEY`, holding its configuration),
/// and its stages are the reproduction's stages of the same names, computed by `Reproduction`: the
/// same seeds (a stage's seed comes from its name and the run seed), so the points differ only by
/// their factor, every comparison is paired by draw (the same patients), and the preset's point is
/// bit for bit the `verify reproduce` run of the same preset and seed (`--reuse` copies it from
/// one). The ablation's stage names are "KEY/STAGE".
public struct Ablation {
  public let grid: AblationGrid
  public let data: any ExperimentData
  public let directory: URL
  let workers: Int
  /// Each point's reproduction over its folder, opened on first use.
  var reproductions: [String: Reproduction] = [:]

  public init(grid: AblationGrid, data: any ExperimentData, directory: URL, workers: Int) {
    self.grid = grid
    self.data = data
    self.directory = directory
    self.workers = workers
  }

  /// The methods every point is measured with, per draw.
  public static let methods: [Method] = [.pix2repLinear, .pix2repFineTune, .pix2repInContext]
  static let pretrainingStage = "pretrain-\(PretrainingObjective.infoNCE.rawValue)"
  static let equivarianceStage = "equivariance"

  /// The stage, inside a point's folder, of a method's run on one draw.
  static func runStage(_ method: Method, budget: Int, draw: Int) -> String {
    method == .pix2repInContext
      ? Reproduction.inContextStageName(.infoNCE, budget: budget, draw: draw)
      : Reproduction.runStageName(method, budget: budget, draw: draw)
  }

  /// "KEY/STAGE" split into the point's key and its stage.
  static func split(_ name: String) -> (point: String, stage: String)? {
    guard let slash = name.firstIndex(of: "/") else { return nil }
    return (String(name[..<slash]), String(name[name.index(after: slash)...]))
  }

  /// Every stage in dependency order (`AblationGrid.stages`).
  public func stages() -> [Reproduction.Stage] { grid.stages() }

  public func pointDirectory(_ key: String) -> URL { directory.appendingPathComponent("points/\(key)") }

  /// A stage's result file (the stage has finished when it exists).
  public func stageFile(_ name: String) -> URL {
    guard let (point, stage) = Ablation.split(name) else { return directory.appendingPathComponent("stages/\(name).json") }
    return RunStore(directory: pointDirectory(point)).stageURL(stage)
  }

  public func isFinished(_ name: String) -> Bool { FileManager.default.fileExists(atPath: stageFile(name).path) }

  func identity(_ config: ExperimentConfig) -> RunIdentity { RunIdentity(config: config, data: data.source) }

  /// The reproduction of a point, its folder opened with the point's configuration.
  mutating func reproduction(_ key: String) throws -> Reproduction {
    if let done = reproductions[key] { return done }
    guard let point = grid.points.first(where: { $0.key == key }) else { throw ExperimentError("no ablation point '\(key)'") }
    let store = RunStore(directory: pointDirectory(key))
    try store.open(configuration: identity(point.config), fresh: false)
    let reproduction = Reproduction(config: point.config, data: data, store: store, workers: workers)
    reproductions[key] = reproduction
    return reproduction
  }

  /// Computes one stage (nothing when it has finished); an unknown name is a one-line error.
  public mutating func computeStage(named name: String) throws {
    guard stages().contains(where: { $0.name == name }), let (key, stage) = Ablation.split(name) else {
      throw ExperimentError("unknown stage '\(name)' (verify ablate --list-stages lists the stages of this grid)")
    }
    var reproduction = try reproduction(key)
    try reproduction.computeStage(named: stage)
    reproductions[key] = reproduction
  }

  /// Computes every unfinished stage in order, then assembles the report.
  public mutating func run(estimate: String, earlierSeconds: Double = 0) throws -> AblationReport {
    let start = Date()
    let waiting = stages().filter { !isFinished($0.name) }
    for (i, stage) in waiting.enumerated() {
      Console.shared.setStatus("ablation: stage \(i + 1) of \(waiting.count) left to compute")
      say("\(stage.name):")
      try computeStage(named: stage.name)
    }
    Console.shared.setStatus("")
    return try report(estimate: estimate, seconds: Date().timeIntervalSince(start) + earlierSeconds)
  }

  /// Copies the preset point's finished stages from a `verify reproduce` run folder of the same
  /// preset, seed and data (`RunStore.reuseStages`, which refuses any other), and returns them.
  public mutating func reusePreset(from source: URL) throws -> [String] {
    let wanted = Set(stages().compactMap { Ablation.split($0.name) }.filter { $0.point == AblationGrid.presetKey }.map(\.stage))
    return try reproduction(AblationGrid.presetKey).store.reuseStages(from: source, identity: identity(grid.preset), only: wanted)
  }

  // MARK: - Estimate

  /// The estimate printed before the run, every unfinished stage's assumed seconds (for `--jobs`):
  /// the plan's step times measured at the preset's sizes, times the steps each stage is assumed
  /// still to take (`Plan.stepsLeft`: a stage resuming from its checkpoint counts what it has
  /// left); in-context stages by the size of their search. Each step time is the median of
  /// `repeats` after a warm-up (1: one timing, for the paper preset). And the points' finished
  /// stages' recorded seconds against those step times (`Reproduction.calibration`, summed).
  public mutating func estimate(repeats: Int = 3) throws -> (
    description: String, seconds: Double, stageSeconds: [String: Double], calibration: StageCalibration?
  ) {
    let waiting = stages().filter { !isFinished($0.name) }
    if waiting.isEmpty { return ("estimate: every stage has finished in the run folder; nothing to compute.", 0, [:], nil) }
    let preset = try reproduction(AblationGrid.presetKey)
    let draws = try preset.labelledDraws().filter { grid.budgets.contains($0.budget) }
    let times = Plan.measure(backend: preset.backend, config: grid.preset, data: data.pretrainingTrain, repeats: repeats)
    let plan = Plan(
      runs: [], pretrainingSteps: 0, pretrainingStages: 0, times: times, testSlices: data.test.count, batch: grid.preset.downstreamBatch)
    var seconds: [String: Double] = [:]
    var pretrainingSteps = 0, runs = 0
    var calibration = StageCalibration(assumedSeconds: 0, recordedSeconds: 0, stages: 0)
    for point in grid.points {
      let reproduction = try reproduction(point.key)
      if let c = reproduction.calibration(plan, draws: draws) { calibration.add(c) }
      if !isFinished("\(point.key)/\(Ablation.pretrainingStage)") {
        let left = point.config.pretrainingSteps - (reproduction.resumable(Ablation.pretrainingStage)?.step ?? 0)
        pretrainingSteps += left
        seconds["\(point.key)/\(Ablation.pretrainingStage)"] = Double(left) * times.pretraining
      }
      for d in draws {
        for method in [Method.pix2repLinear, .pix2repFineTune] where !isFinished("\(point.key)/\(Ablation.runStage(method, budget: d.budget, draw: d.draw))") {
          let run = Plan.Run(
            method: method, budget: d.budget, draw: d.draw, schedule: point.config.downstreamSchedule(trainingSlices: d.train.count),
            validationSlices: d.validation.count, linearProbe: method == .pix2repLinear,
            resumed: reproduction.resumable(Ablation.runStage(method, budget: d.budget, draw: d.draw)))
          seconds["\(point.key)/\(Ablation.runStage(method, budget: d.budget, draw: d.draw))"] = plan.seconds(run, steps: plan.assumedSteps(run))
          runs += 1
        }
      }
      for stage in reproduction.unfinishedSearchStages(draws) where stage.name.hasPrefix("incontext-\(InContextBackbone.infoNCE.rawValue)-") {
        seconds["\(point.key)/\(stage.name)"] = plan.seconds(stage)
      }
    }
    let total = seconds.values.reduce(0, +)
    let description = """
      estimate from step times measured here at the preset's sizes: pretraining step \(String(format: "%.3f", times.pretraining)) s, \
      fine-tuning step \(String(format: "%.3f", times.fineTuning)) s, linear-probing step \(String(format: "%.3f", times.linearProbing)) s.
        \(waiting.filter { $0.name.hasSuffix("/" + Ablation.pretrainingStage) }.count) pretraining(s), \(pretrainingSteps) steps in all to go; \
      \(runs) downstream runs (each assumed to find its best near step \(Plan.assumedBestStep)); \
      \(waiting.filter { $0.name.contains("/incontext-") }.count) in-context runs.
        total: about \(formatDuration(total)), not counting stages already finished (points with a larger D or M than the \
      preset's take longer per step than measured).
      """
    return (description, total, seconds, calibration.stages > 0 ? calibration : nil)
  }
}

extension AblationGrid {
  /// Every stage in dependency order: the pretrainings (level 0), then each point's downstream
  /// runs and in-context runs on every draw of budgets 1 and 5, and the equivariance figures of the
  /// preset's backbone and of every spatial-identity one (level 1, each reading its point's
  /// pretraining).
  public func stages() -> [Reproduction.Stage] {
    var list = points.map { Reproduction.Stage(name: "\($0.key)/\(Ablation.pretrainingStage)", inputs: [], level: 0) }
    for point in points {
      let input = ["\(point.key)/\(Ablation.pretrainingStage)"]
      for budget in budgets {
        for draw in 1...preset.drawCount(budget: budget) {
          for method in Ablation.methods {
            list.append(.init(name: "\(point.key)/\(Ablation.runStage(method, budget: budget, draw: draw))", inputs: input, level: 1))
          }
        }
      }
      if point.key == AblationGrid.presetKey || point.config.pretrainingAugmentation.spatialIdentity {
        list.append(.init(name: "\(point.key)/\(Ablation.equivarianceStage)", inputs: input, level: 1))
      }
    }
    return list
  }
}
