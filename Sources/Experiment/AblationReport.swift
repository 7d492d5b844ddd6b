import Foundation

/// What `verify ablate` reports: for every factor, each level's test Dice per method and budget,
/// with the paired comparison against the preset's level (per-draw differences in Dice points, their
/// mean and 95% t-interval, `PairedComparison`), the equivariance figures of the preset's and the
/// spatial-identity backbones, and each point's pretraining.
public struct AblationReport: Codable, Sendable {
  /// One level's runs of one method at one budget.
  public struct Cell: Codable, Sendable {
    public var factor: AblationFactor
    public var level: String
    public var point: String
    public var method: Method
    public var budget: Int
    /// Mean Dice (RV, MYO, LV) of each draw's run, nil where it has not finished.
    public var dice: [Double?]
    /// Mean over the finished draws.
    public var mean: Double?
    /// This level minus the preset's, in Dice points, over the draws both have (nil for the preset).
    public var comparison: PairedComparison?
  }

  public var dataSource: String
  public var preset: String
  public var seed: UInt64
  public var budgets: [Int]
  public var levels: [AblationLevel]
  public var cells: [Cell]
  /// Each point's pretraining outcome, by point key.
  public var pretraining: [String: PretrainingOutcome]
  /// The equivariance figures of the preset's and the spatial-identity points, by point key.
  public var equivariance: [String: [EquivarianceFigure]]
  public var totalSeconds: Double
  public var estimate: String

  /// A level's Dice per draw against the preset's, paired by draw over the draws both have
  /// finished, in Dice points (100 × the difference of mean Dice).
  package static func comparison(_ values: [Double?], against preset: [Double?], label: String) -> PairedComparison {
    let pairs = zip(values, preset).compactMap { a, b in a.flatMap { a in b.map { (a * 100, $0 * 100) } } }
    return PairedComparison.paired(pairs.map(\.0), pairs.map(\.1), label: label)
  }

  /// The cell of a level, method and budget.
  func cell(_ level: AblationLevel, _ method: Method, _ budget: Int) -> Cell? {
    cells.first { $0.factor == level.factor && $0.point == level.point && $0.method == method && $0.budget == budget }
  }

  /// One factor's table: a row per level, a column per method and budget.
  public func table(_ factor: AblationFactor) -> String {
    let columns = budgets.flatMap { b in Ablation.methods.map { (b, $0) } }
    var lines = [
      "| \(factor.rawValue) | " + columns.map { "\(AblationReport.shortName($0.1)), budget \($0.0)" }.joined(separator: " | ") + " |",
      "|---|" + String(repeating: "---|", count: columns.count),
    ]
    for level in levels where level.factor == factor {
      let texts = columns.map { budget, method -> String in
        guard let cell = cell(level, method, budget), let mean = cell.mean else { return "missing" }
        let dice = String(format: "%.3f", mean)
        if level.isPreset { return dice + " (preset)" }
        guard let c = cell.comparison, let difference = c.mean else { return dice }
        guard let lower = c.lower, let upper = c.upper else { return dice + String(format: " (%+.1f, 1 draw)", difference) }
        return dice + String(format: " (%+.1f [%+.1f, %+.1f])", difference, lower, upper)
      }
      lines.append("| \(level.label)\(level.isPreset ? " (preset)" : "") | " + texts.joined(separator: " | ") + " |")
    }
    return lines.joined(separator: "\n")
  }

  static func shortName(_ method: Method) -> String {
    switch method {
    case .pix2repLinear: "LP"
    case .pix2repFineTune: "FT"
    case .pix2repInContext: "in-context"
    default: method.rawValue
    }
  }

  /// The factors that have levels, in order.
  var factors: [AblationFactor] { AblationFactor.allCases.filter { f in levels.contains { $0.factor == f } } }

  /// Every factor's table with its heading.
  public var tablesText: String {
    factors.map { "## \($0.title)\n\n" + table($0) }.joined(separator: "\n\n")
  }

  /// The equivariance figures of the preset's backbone beside the spatial-identity one's.
  public var equivarianceText: String {
    guard !equivariance.isEmpty else { return "" }
    var lines = [
      "Learned equivariance of the InfoNCE backbone with the protocol's phi and with phi the identity (the same measurement as verify reproduce's, on the same test slices and transforms):",
      "",
      "| backbone | rel. error ‖φ·f(x) − f(φ·x)‖/‖f(x)‖ | cos(corresponding) | cos(random pairs) | cos(f(t(x)), f(x)) |",
      "|---|---|---|---|---|",
    ]
    func row(_ name: String, _ e: EquivarianceFigure) -> String {
      String(format: "| %@ | %.3f | %.3f | %.3f | %.3f |", name, e.relativeError, e.correspondingCosine, e.randomPairCosine, e.intensityCosine)
    }
    // The preset's first; the random backbone's figures (the same in every point) once, last.
    let keys = equivariance.keys.sorted { ($0 == AblationGrid.presetKey ? "" : $0) < ($1 == AblationGrid.presetKey ? "" : $1) }
    for key in keys {
      if let e = equivariance[key]!.first { lines.append(row("Pix2Rep (InfoNCE), \(key == AblationGrid.presetKey ? "preset" : key)", e)) }
    }
    if let random = equivariance[keys[0]]!.dropFirst().first { lines.append(row(random.backbone, random)) }
    return lines.joined(separator: "\n")
  }

  /// Each point's pretraining: length, best validation loss (on that point's own views and loss,
  /// so not comparable across points) and time.
  public var pretrainingText: String {
    pretraining.keys.sorted().map { key in
      let o = pretraining[key]!
      return String(format: "- %@: %d steps, best validation loss %.4f at step %d, %@", key, o.steps, o.bestValidationLoss, o.bestStep, formatDuration(o.seconds))
    }.joined(separator: "\n")
  }

  public var markdown: String {
    var parts = [
      "# Pix2Rep ablation: \(dataSource)", "",
      "Preset `\(preset)`, seed \(seed). One factor of the InfoNCE pretraining varies at a time, the others at the preset's values (docs/PROTOCOL.md section 10). Test Dice (mean of RV, MYO, LV) averaged over the reproduction's draws at each budget; in parentheses, the level minus the preset's in Dice points, paired by draw, with its 95% t-interval.",
      "", tablesText, "",
      "Plots: pictures/ablation-FACTOR.svg, Dice against the factor's value, a line per method and budget (dashed: budget 5); error bars: half the width of the paired 95% interval against the preset's value (none for the preset, or with a single draw).",
      "",
    ]
    if !equivarianceText.isEmpty { parts += [equivarianceText, ""] }
    parts += ["Pretraining of each point (validation losses are on each point's own views and loss, so they do not compare across points):", "", pretrainingText, ""]
    parts += ["Estimate printed before the run:", "", "```", estimate, "```", "", "Total time: \(formatDuration(totalSeconds))", ""]
    return parts.joined(separator: "\n")
  }

  /// One row per factor, level, method and budget: mean Dice and the paired difference.
  public var csv: String {
    var lines = ["factor,level,point,method,budget,draws,mean_dice,difference_points,lower,upper"]
    func number(_ value: Double?, _ format: String) -> String { value.map { String(format: format, $0) } ?? "" }
    for cell in cells {
      let c = cell.comparison
      lines.append([
        cell.factor.rawValue, "\"\(cell.level)\"", cell.point, "\"\(cell.method.rawValue)\"", "\(cell.budget)", "\(cell.dice.compactMap { $0 }.count)",
        number(cell.mean, "%.6f"), number(c?.mean, "%.4f"), number(c?.lower, "%.4f"), number(c?.upper, "%.4f"),
      ].joined(separator: ","))
    }
    return lines.joined(separator: "\n") + "\n"
  }

  /// One factor's plot: Dice against the factor's value, a line per method and budget; the error
  /// bars are the half-widths of the paired 95% intervals against the preset's value.
  public func plot(_ factor: AblationFactor) -> LinePlot {
    let levels = self.levels.filter { $0.factor == factor }
    let axis = factor.ranked
      ? levels.map { "\(Int($0.x)) = \($0.label)" }.joined(separator: ", ") : factor.title + (factor.logarithmic ? " (log scale)" : "")
    var plot = LinePlot(title: "Test Dice against the \(factor.title)", xLabel: axis, yLabel: "Dice", logX: factor.logarithmic)
    plot.xTicks = levels.map(\.x)
    var k = 0
    for budget in budgets {
      for method in Ablation.methods {
        let points = levels.compactMap { level -> LinePlot.Point? in
          guard let cell = cell(level, method, budget), let mean = cell.mean else { return nil }
          let half = cell.comparison.flatMap { c in c.upper.flatMap { u in c.mean.map { u - $0 } } } ?? 0
          return LinePlot.Point(x: level.x, y: mean, error: half / 100)
        }
        plot.series.append(.init(name: "\(AblationReport.shortName(method)), budget \(budget)", color: LinePlot.palette[k % LinePlot.palette.count], points: points, dashed: budget != 1))
        k += 1
      }
    }
    return plot
  }

  /// results-partial.md and results-partial.csv (`verify ablate --partial`: the stages finished so far).
  public func writePartial(to directory: URL) throws {
    try writeAtomically(Data(("**Partial: the stages finished so far.**\n\n" + markdown).utf8), to: directory.appendingPathComponent("results-partial.md"))
    try writeAtomically(Data(csv.utf8), to: directory.appendingPathComponent("results-partial.csv"))
  }

  /// results.md, results.csv, results.json and pictures/ablation-FACTOR.svg in `directory`.
  public func write(to directory: URL) throws {
    try writeResultFiles(markdown: markdown, csv: csv, json: self, to: directory)
    let pictures = directory.appendingPathComponent("pictures")
    try FileManager.default.createDirectory(at: pictures, withIntermediateDirectories: true)
    for factor in factors {
      try writeAtomically(Data(plot(factor).svg.utf8), to: pictures.appendingPathComponent("ablation-\(factor.rawValue).svg"))
    }
  }
}

extension Ablation {
  /// The report of the stages finished so far (missing cells say so).
  public func report(estimate: String, seconds: Double) throws -> AblationReport {
    var outcomes: [String: PretrainingOutcome] = [:]
    var figures: [String: [EquivarianceFigure]] = [:]
    var dice: [String: [Double?]] = [:]  // per draw, by point, method and budget
    func key(_ point: String, _ method: Method, _ budget: Int) -> String { "\(point) \(method.key) \(budget)" }
    for point in grid.points {
      let store = RunStore(directory: pointDirectory(point.key))
      outcomes[point.key] = try store.load(PretrainingOutcome.self, stage: Ablation.pretrainingStage)
      figures[point.key] = try store.load([EquivarianceFigure].self, stage: Ablation.equivarianceStage)
      for budget in grid.budgets {
        for method in Ablation.methods {
          dice[key(point.key, method, budget)] = try (1...grid.preset.drawCount(budget: budget)).map { draw in
            try store.load(RunResult.self, stage: Ablation.runStage(method, budget: budget, draw: draw))?.summary.mean
          }
        }
      }
    }
    var cells: [AblationReport.Cell] = []
    for level in grid.levels {
      for budget in grid.budgets {
        for method in Ablation.methods {
          let values = dice[key(level.point, method, budget)] ?? []
          let preset = dice[key(AblationGrid.presetKey, method, budget)] ?? []
          let finished = values.compactMap { $0 }
          cells.append(AblationReport.Cell(
            factor: level.factor, level: level.label, point: level.point, method: method, budget: budget, dice: values,
            mean: finished.isEmpty ? nil : finished.reduce(0, +) / Double(finished.count),
            comparison: level.isPreset ? nil : AblationReport.comparison(
              values, against: preset, label: "\(level.factor.rawValue) \(level.label) − preset, \(method.rawValue), budget \(budget), Dice points")))
        }
      }
    }
    return AblationReport(
      dataSource: data.source, preset: grid.preset.preset, seed: grid.preset.seed, budgets: grid.budgets, levels: grid.levels,
      cells: cells, pretraining: outcomes, equivariance: figures, totalSeconds: seconds,
      estimate: estimate)
  }
}
