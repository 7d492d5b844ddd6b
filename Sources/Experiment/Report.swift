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

  var table: ResultTable { ResultTable(runs: runs, budgets: configuration.budgets) }

  // MARK: - Text

  /// The Dice table as Markdown: a row per method, a column per budget, mean ± sd over draws.
  public func diceTable(classIndex: Int? = nil) -> String {
    let table = self.table
    let what = classIndex.map { ["RV", "MYO", "LV"][$0] } ?? "mean of RV, MYO, LV"
    var lines = ["Test Dice (\(what)), mean ± sd over draws; columns are labelled training patients:", ""]
    lines.append("| method | " + configuration.budgets.map { "\($0)" }.joined(separator: " | ") + " |")
    lines.append("|---|" + String(repeating: "---|", count: configuration.budgets.count))
    for method in Method.allCases {
      let cells = configuration.budgets.map { b -> String in
        guard let c = table.cell(method, b, classIndex: classIndex) else { return "–" }
        return c.count > 1 ? String(format: "%.3f ± %.3f", c.mean, c.sd) : String(format: "%.3f", c.mean)
      }
      if cells.allSatisfy({ $0 == "–" }) { continue }
      lines.append("| \(method.rawValue) | " + cells.joined(separator: " | ") + " |")
    }
    return lines.joined(separator: "\n")
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
    parts += ["", claimsText, "", equivarianceText, ""]
    parts.append("Supervised baseline learning rate chosen on validation: " + baselineLearningRates.joined(separator: "; "))
    parts.append("")
    parts.append("Drawn labelled patients:")
    for r in runs.sorted(by: { ($0.budget, $0.draw, $0.method.rawValue) < ($1.budget, $1.draw, $1.method.rawValue) }) where r.method == .supervised {
      parts.append("- budget \(r.budget), draw \(r.draw): patients \(r.patients.map(String.init).joined(separator: ", "))")
    }
    parts.append("")
    parts.append("Wall time per stage:")
    for (stage, seconds) in stageSeconds.sorted(by: { $0.key < $1.key }) {
      parts.append("- \(stage): \(formatDuration(seconds))")
    }
    parts.append("- total: \(formatDuration(totalSeconds))")
    return parts.joined(separator: "\n") + "\n"
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
    try writeAtomically(Data(markdown.utf8), to: directory.appendingPathComponent("results.md"))
    try writeAtomically(Data(csv.utf8), to: directory.appendingPathComponent("results.csv"))
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try writeAtomically(try encoder.encode(self), to: directory.appendingPathComponent("results.json"))
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
