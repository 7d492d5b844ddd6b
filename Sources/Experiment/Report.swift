import Foundation

/// The printed and written results of a run: the Dice table, the claims, the equivariance
/// figures, the data source, the configuration and the stage timings.
public struct Report: Codable, Sendable {
  public var dataSource: String
  public var configuration: ExperimentConfig
  public var runs: [RunResult]
  public var claims: [ClaimResult]
  public var equivariance: [EquivarianceFigure]
  public var baselineLearningRates: [String]
  public var stageSeconds: [String: Double]
  public var totalSeconds: Double
  /// The pretraining stages' outcomes (curves, best step, the last quarter's relative change).
  public var pretraining: [PretrainingOutcome] = []
  /// Checks of the schedule's convergence (`Claims.sanity`): printed, never used to steer training.
  public var sanity: [String] = []
  /// The time estimate printed before the run, and its central figure in seconds.
  public var estimate: String = ""
  public var estimatedSeconds: Double? = nil
  /// Which build(s) of the code computed the stages (`RunStore.buildsText`).
  public var builds: String? = nil
  /// The SimCLR pretraining stage's outcome (nil when it has not finished, or in older results).
  public var simCLR: SimCLROutcome? = nil
  /// The ED-to-ES propagation of each backbone (nil in older results, or before any has finished).
  public var propagation: [PropagationResult]? = nil

  var table: ResultTable { ResultTable(runs: runs, budgets: configuration.budgets) }

  // MARK: - Text

  /// The Dice table as Markdown: a row per method, a column per budget, mean ± sd over draws; a
  /// cell marked † has a run that stopped at the epoch cap instead of by patience.
  public func diceTable(classIndex: Int? = nil) -> String {
    let table = self.table
    let what = classIndex.map { ["RV", "MYO", "LV"][$0] } ?? "mean of RV, MYO, LV"
    var lines = ["Test Dice (\(what)), mean ± sd over draws; columns are labelled training patients:", ""]
    lines.append("| method | " + configuration.budgets.map { "\($0)" }.joined(separator: " | ") + " |")
    lines.append("|---|" + String(repeating: "---|", count: configuration.budgets.count))
    for method in Method.allCases {
      let cells = configuration.budgets.map { b -> String in
        guard let c = table.cell(method, b, classIndex: classIndex) else { return "–" }
        let capped = runs.contains { $0.method == method && $0.budget == b && $0.stopReason == .cap } ? " †" : ""
        return (c.count > 1 ? String(format: "%.3f ± %.3f", c.mean, c.sd) : String(format: "%.3f", c.mean)) + capped
      }
      if cells.allSatisfy({ $0 == "–" }) { continue }
      lines.append("| \(method.rawValue) | " + cells.joined(separator: " | ") + " |")
    }
    return lines.joined(separator: "\n")
  }

  /// What the Dice tables' rows mean and how the runs stopped: printed once, after the tables.
  public var tableNotes: String {
    var lines: [String] = []
    if runs.contains(where: { $0.method == .randomLinear }) {
      lines.append("Random-backbone LP: a linear probe on the random initial backbone, its BatchNorm running statistics re-estimated on the unlabelled pretraining slices (no weight changed).")
    }
    if runs.contains(where: { $0.method == .simCLRLinear || $0.method == .simCLRFineTune || $0.method.isMeanTeacher }) {
      lines.append("SimCLR LP/FT: the same probing and fine-tuning from an encoder pretrained with image-level SimCLR (decoder as initialised); Mean Teacher: semi-supervised from the random backbone; Pix2Rep FT + MT: the same from the InfoNCE backbone (settings under Baselines).")
    }
    if runs.contains(where: { $0.method.isInContext }) {
      lines.append("Pix2Rep, Pix2Rep-v2 and Random-backbone in-context: no training; each test pixel takes the label of its nearest labelled pixel (details under In-context segmentation).")
    }
    lines.append(stopSummary)
    return lines.joined(separator: "\n")
  }

  /// How the downstream runs stopped.
  public var stopSummary: String {
    let recorded = runs.filter { $0.stopReason != nil }
    let patience = recorded.filter { $0.stopReason == .patience }
    let trained = recorded.filter { !$0.method.isLinearProbe }
    let trainedByPatience = trained.filter { $0.stopReason == .patience }
    var text = "Stopping: \(patience.count) of \(recorded.count) runs stopped by patience (fine-tuning and baseline: \(trainedByPatience.count) of \(trained.count))"
    var cappedCells: [String] = []
    for budget in configuration.budgets {
      for method in Method.allCases {
        let cell = recorded.filter { $0.method == method && $0.budget == budget }
        let capped = cell.filter { $0.stopReason == .cap }.count
        if capped > 0 { cappedCells.append("\(method.rawValue) at \(budget): \(capped) of \(cell.count)") }
      }
    }
    if !cappedCells.isEmpty { text += "; runs at the epoch cap (†): " + cappedCells.joined(separator: ", ") }
    let cappedChanges = recorded.filter { $0.stopReason == .cap }.compactMap(\.relativeChangeLastQuarter).sorted()
    if !cappedChanges.isEmpty {
      let median = cappedChanges.count % 2 == 1
        ? cappedChanges[cappedChanges.count / 2]
        : (cappedChanges[cappedChanges.count / 2 - 1] + cappedChanges[cappedChanges.count / 2]) / 2
      text += String(
        format: ". Over their last quarter the capped runs' best validation loss changed by %+.1f%% (median; from %+.1f%% to %+.1f%%): a change far from 0 means the cap, not convergence, ended them",
        100 * median, 100 * cappedChanges.first!, 100 * cappedChanges.last!)
    }
    return text + "."
  }

  /// Every run: steps, epochs, best step and why it stopped.
  public var runsText: String {
    var lines = [
      "| method | budget | draw | Dice | steps | epochs | best step | stopped by | best validation loss, change over last quarter | time |",
      "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs.sorted(by: { ($0.budget, $0.draw, $0.method.rawValue) < ($1.budget, $1.draw, $1.method.rawValue) }) where !r.method.isInContext {
      lines.append(String(format: "| %@ | %d | %d | %.3f | %d | %@ | %@ | %@ | %@ | %@ |", r.method.rawValue, r.budget, r.draw, r.summary.mean, r.steps,
        r.epochs.map { String(format: "%.1f", $0) } ?? "–", r.bestStep.map(String.init) ?? "–", r.stopReason?.rawValue ?? "–",
        r.relativeChangeLastQuarter.map { $0 > -0.0005 ? "0.0%" : String(format: "%+.1f%%", 100 * $0) } ?? "–", formatDuration(r.seconds)))
    }
    return lines.joined(separator: "\n")
  }

  /// The pretraining stages: best step and how flat the validation loss was at the end.
  public var pretrainingText: String {
    (pretraining.map { $0.reportLine($0.objective.rawValue) }
      + (simCLR.map { p in
        [p.reportLine("SimCLR (tau \(p.temperature), projection \(p.projection.map(String.init).joined(separator: "-")))")]
      } ?? [])).joined(separator: "\n")
  }

  public var claimsText: String {
    var lines = ["Claims (paper value, ours, verdict):"]
    for c in claims {
      lines.append("- \(c.claim): paper \(c.paper); ours: \(c.ours); verdict: **\(c.verdict)**")
    }
    return lines.joined(separator: "\n")
  }

  public var equivarianceText: String {
    var lines = ["Learned equivariance and invariance on test slices (pretrained vs random backbone):", ""]
    lines.append("| backbone | rel. error ‖φ·f(x) − f(φ·x)‖/‖f(x)‖ | cos(corresponding) | cos(random pairs) | cos(f(t(x)), f(x)) |")
    lines.append("|---|---|---|---|---|")
    for e in equivariance {
      lines.append(String(format: "| %@ | %.3f | %.3f | %.3f | %.3f |", e.backbone, e.relativeError, e.correspondingCosine, e.randomPairCosine, e.intensityCosine))
    }
    return lines.joined(separator: "\n")
  }

  public var markdown: String {
    var parts = ["# Pix2Rep reproduction: \(dataSource)", ""]
    parts.append("Preset `\(configuration.preset)`, seed \(configuration.seed). Model: widths \(configuration.model.widths), D = \(configuration.model.features), S = \(configuration.model.imageSize), projection \(configuration.model.projectionHidden)-\(configuration.model.projectionOutput).")
    parts.append("")
    parts.append(configuration.scheduleText)
    parts.append("")
    parts.append(diceTable())
    for k in 0..<3 { parts += ["", diceTable(classIndex: k)] }
    parts += ["", tableNotes]
    parts += ["", claimsText, ""]
    if !inContextText.isEmpty { parts += [inContextText, ""] }
    if !propagationText.isEmpty { parts += [propagationText, ""] }
    if !sanity.isEmpty { parts += ["Sanity checks (reported, never used to steer training):"] + sanity.map { "- " + $0 } + [""] }
    if !pretraining.isEmpty || simCLR != nil { parts += ["Pretraining:", pretrainingText, ""] }
    parts += [BaselineSettings.text(configuration), ""]
    parts += [equivarianceText, ""]
    parts.append("Supervised baseline learning rate chosen on validation: " + baselineLearningRates.joined(separator: "; "))
    parts.append("")
    parts.append("Drawn labelled patients:")
    for r in runs.sorted(by: { ($0.budget, $0.draw, $0.method.rawValue) < ($1.budget, $1.draw, $1.method.rawValue) }) where r.method == .supervised {
      parts.append("- budget \(r.budget), draw \(r.draw): patients \(r.patients.map(String.init).joined(separator: ", "))")
    }
    parts.append("")
    parts.append("Downstream runs:")
    parts.append("")
    parts.append(runsText)
    parts.append("")
    if !estimate.isEmpty { parts += ["Estimate printed before the run:", "", "```", estimate, "```", ""] }
    parts.append("Wall time per stage:")
    for (stage, seconds) in stageSeconds.sorted(by: { $0.key < $1.key }) {
      parts.append("- \(stage): \(formatDuration(seconds))")
    }
    parts.append("- total: \(formatDuration(totalSeconds))" + (estimatedSeconds.map { " (estimated before the run: \(formatDuration($0)))" } ?? ""))
    parts += ["", rowSecondsText]
    if let builds { parts += ["", builds] }
    return parts.joined(separator: "\n") + "\n"
  }

  /// What each row of the table cost: its runs' seconds added up (runs of several jobs overlap in
  /// time, so the rows add up to more than the wall time then), with the pretraining it reads
  /// listed per stage above. Issue 14 asked what the SimCLR and Mean Teacher rows add.
  var rowSecondsText: String {
    var seconds: [Method: Double] = [:]
    var counts: [Method: Int] = [:]
    for r in runs {
      seconds[r.method, default: 0] += r.seconds
      counts[r.method, default: 0] += 1
    }
    let all = seconds.values.reduce(0, +)
    var lines = [
      "Time per row (its runs added up; the pretrainings it reads are in the stage list above; the baseline's unkept rate-search trials are not counted):"
    ]
    for method in Method.allCases where counts[method] != nil {
      let share = all > 0 ? 100 * seconds[method]! / all : 0
      lines.append("- \(method.rawValue): \(formatDuration(seconds[method]!)) in \(counts[method]!) run(s), \(String(format: "%.0f", share))% of all runs' time")
    }
    return lines.joined(separator: "\n")
  }

  /// One row per run and class: method, budget, draw, class, Dice.
  public var csv: String {
    var lines = ["method,budget,draw,class,dice,patients"]
    for r in runs {
      let patients = r.patients.map(String.init).joined(separator: " ")
      for (k, name) in ["RV", "MYO", "LV"].enumerated() {
        lines.append("\(r.method.rawValue),\(r.budget),\(r.draw),\(name),\(r.summary.perClass[k]),\(patients)")
      }
      lines.append("\(r.method.rawValue),\(r.budget),\(r.draw),mean,\(r.summary.mean),\(patients)")
    }
    return lines.joined(separator: "\n") + "\n"
  }

  /// Writes results.md, results.csv and results.json into `directory`.
  public func write(to directory: URL) throws {
    try writeResultFiles(markdown: markdown, csv: csv, json: self, to: directory)
  }

  /// Writes results-partial.md and results-partial.csv (a table of the stages finished so far).
  public func writePartial(to directory: URL) throws {
    try writeAtomically(Data(("**Partial: \(estimate).**\n\n" + markdown).utf8), to: directory.appendingPathComponent("results-partial.md"))
    try writeAtomically(Data(csv.utf8), to: directory.appendingPathComponent("results-partial.csv"))
  }
}

/// The equivariance and invariance figures of one backbone.
public struct EquivarianceFigure: Codable, Sendable {
  public var backbone: String
  public var relativeError: Double
  public var correspondingCosine: Double
  public var randomPairCosine: Double
  public var intensityCosine: Double
}

/// Writes a report's results.md, results.csv and results.json (`json` encoded with sorted keys,
/// pretty-printed) into `directory`, each atomically.
func writeResultFiles<Value: Encodable>(markdown: String, csv: String, json: Value, to directory: URL) throws {
  try writeAtomically(Data(markdown.utf8), to: directory.appendingPathComponent("results.md"))
  try writeAtomically(Data(csv.utf8), to: directory.appendingPathComponent("results.csv"))
  let encoder = JSONEncoder()
  encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
  try writeAtomically(try encoder.encode(json), to: directory.appendingPathComponent("results.json"))
}
