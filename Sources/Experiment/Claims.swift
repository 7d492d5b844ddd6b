import Foundation

/// One of the paper's claims evaluated on our runs.
public struct ClaimResult: Codable, Sendable {
  public var claim: String
  /// The paper's value and where it comes from.
  public var paper: String
  /// One line: our effect, its 95% interval and the number of paired draws, or "missing (…)".
  public var ours: String
  /// A `Verdict` raw value, or for the one-shot claims one per reading, e.g.
  /// "inconclusive if relative %, weaker if Dice points".
  public var verdict: String
  /// The numbers behind `ours` (empty in results.json files from before they were stored).
  public var comparisons: [PairedComparison]

  /// True when the verdict is `reproduced` (for the one-shot claims: under at least one reading of
  /// the paper's percentage). `--require-reproduced` fails on any claim where this is false.
  public var reproduced: Bool {
    verdict.components(separatedBy: ", ").contains { $0.hasPrefix(Verdict.reproduced.rawValue) }
  }

  public init(claim: String, paper: String, ours: String, verdict: String, comparisons: [PairedComparison] = []) {
    self.claim = claim
    self.paper = paper
    self.ours = ours
    self.verdict = verdict
    self.comparisons = comparisons
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    claim = try c.decode(String.self, forKey: .claim)
    paper = try c.decode(String.self, forKey: .paper)
    ours = try c.decode(String.self, forKey: .ours)
    verdict = try c.decode(String.self, forKey: .verdict)
    comparisons = try c.decodeIfPresent([PairedComparison].self, forKey: .comparisons) ?? []
  }
}

/// The claims of docs/PROTOCOL.md section 5, evaluated on a table with paired draws (every method of a
/// draw is trained on the same labelled patients and tested on the same volumes).
public enum Claims {
  public static let source = "Seince et al., MIDL 2024, abstract (arXiv 2407.20395)"
  /// The fixed seed of every bootstrap here (per draw: plus budget and draw).
  static let bootstrapSeed: UInt64 = 0x5049_5832_5245_5000
  static let resamples = 2000

  /// The paper's comparison with the other semi- and self-supervised methods, and where the
  /// Mean Teacher combination is stated.
  public static let baselinesSource = "Seince et al., MIDL 2024, abstract: outperforms existing semi- and self-supervised approaches"
  public static let meanTeacherSource = "a summary of Seince et al., MIDL 2024: further gains combined with Mean Teacher"

  /// In order: one-shot LP, one-shot FT, annotation reduction, Barlow Twins vs InfoNCE under
  /// fine-tuning, Barlow Twins vs InfoNCE under linear probing, Pix2Rep vs SimCLR under linear
  /// probing and fine-tuning, Pix2Rep FT + MT vs Mean Teacher and vs Pix2Rep FT.
  public static func evaluate(_ table: ResultTable) -> [ClaimResult] {
    [
      oneShot(table, method: .pix2repLinear, paperPercent: 30, label: "one-shot linear probing"),
      oneShot(table, method: .pix2repFineTune, paperPercent: 31, label: "one-shot fine-tuning"),
      annotationReduction(table),
      barlowBetter(table, v2: .barlowFineTune, v1: .pix2repFineTune, label: "fine-tuning"),
      barlowBetter(table, v2: .barlowLinear, v1: .pix2repLinear, label: "linear probing"),
      pairedBetter(
        table, .pix2repLinear, than: .simCLRLinear, claim: "Pix2Rep (dense) better than SimCLR (image-level) under linear probing",
        paper: "better than existing self-supervised approaches (\(baselinesSource); SimCLR not named, no number)"),
      pairedBetter(
        table, .pix2repFineTune, than: .simCLRFineTune, claim: "Pix2Rep (dense) better than SimCLR (image-level) under fine-tuning",
        paper: "better than existing self-supervised approaches (\(baselinesSource); SimCLR not named, no number)"),
      pairedBetter(
        table, .pix2repMeanTeacher, than: .meanTeacher, claim: "Pix2Rep FT + Mean Teacher better than Mean Teacher alone",
        paper: "better than existing semi-supervised approaches (\(baselinesSource); no number)"),
      pairedBetter(
        table, .pix2repMeanTeacher, than: .pix2repFineTune, claim: "Mean Teacher adds to Pix2Rep fine-tuning",
        paper: "further gains (\(meanTeacherSource); no number)"),
    ]
  }

  // MARK: - Pairing

  /// The runs of methods a and b with the same budget and draw, for the given budgets (all when
  /// nil), ordered by budget then draw; only draws where both exist (the first run of each).
  static func pairs(_ table: ResultTable, _ a: Method, _ b: Method, budgets: [Int]? = nil) -> [(a: RunResult, b: RunResult)] {
    struct Key: Hashable { let budget: Int, draw: Int }
    var runsOfB: [Key: RunResult] = [:]
    for r in table.runs where r.method == b && (budgets?.contains(r.budget) ?? true) {
      let key = Key(budget: r.budget, draw: r.draw)
      if runsOfB[key] == nil { runsOfB[key] = r }
    }
    var seen = Set<Key>()
    var result: [(a: RunResult, b: RunResult)] = []
    for r in table.runs where r.method == a && (budgets?.contains(r.budget) ?? true) {
      let key = Key(budget: r.budget, draw: r.draw)
      guard let other = runsOfB[key], seen.insert(key).inserted else { continue }
      result.append((r, other))
    }
    return result.sorted { ($0.a.budget, $0.a.draw) < ($1.a.budget, $1.a.draw) }
  }

  /// The paired comparison of mean Dice over `pairs`, in Dice points (100·(a − b)) or relative %
  /// (100·(a − b)/b, pairs with b ≤ 0 dropped), with per-draw bootstrap intervals over volumes.
  static func comparison(_ pairs: [(a: RunResult, b: RunResult)], label: String, relative: Bool) -> PairedComparison {
    let used = relative ? pairs.filter { $0.b.summary.mean > 0 } : pairs
    let a = used.map { 100 * $0.a.summary.mean }
    let b = used.map { 100 * $0.b.summary.mean }
    var result: PairedComparison
    if relative {
      // 100·(a − b)/b as differences against 0.
      result = .paired(zip(a, b).map { 100 * ($0 - $1) / $1 }, Array(repeating: 0, count: a.count), label: label)
    } else {
      result = .paired(a, b, label: label)
    }
    let intervals = used.compactMap { pair -> DrawInterval? in
      let seed = bootstrapSeed &+ UInt64(pair.a.budget) &* 1000 &+ UInt64(pair.a.draw)
      guard let ci = pairedVolumeBootstrap(pair.a.volumes, pair.b.volumes, resamples: resamples, seed: seed, relative: relative) else { return nil }
      return DrawInterval(budget: pair.a.budget, draw: pair.a.draw, lower: 100 * ci.lower, upper: 100 * ci.upper)
    }
    result.volumeIntervals = intervals.isEmpty ? nil : intervals
    return result
  }

  // MARK: - The claims

  /// Pix2Rep vs the supervised U-Net at one labelled patient, paired by draw, under both readings
  /// of the paper's percentage: relative % and Dice points.
  static func oneShot(_ table: ResultTable, method: Method, paperPercent: Double, label: String) -> ClaimResult {
    let claim = "\(label) improves Dice over the supervised U-Net"
    let paper = "+\(Int(paperPercent))% (\(source); relative % or Dice points not stated)"
    let paired = pairs(table, method, .supervised, budgets: [1])
    guard !paired.isEmpty else {
      let what = table.runs.contains { $0.budget == 1 } ? "no draw at budget 1 has both \(method.rawValue) and the supervised U-Net" : "budget 1 not run"
      return ClaimResult(claim: claim, paper: paper, ours: "missing (\(what))", verdict: Verdict.notMeasured.rawValue)
    }
    let points = comparison(paired, label: "\(method.rawValue) − supervised, budget 1, Dice points", relative: false)
    let relative = comparison(paired, label: "\(method.rawValue) − supervised, budget 1, relative %", relative: true)
    let meanA = paired.map(\.a.summary.mean).reduce(0, +) / Double(paired.count)
    let meanB = paired.map(\.b.summary.mean).reduce(0, +) / Double(paired.count)
    let ours = String(format: "%@ %.3f vs supervised %.3f at 1 patient: ", method.rawValue, meanA, meanB)
      + points.text(unit: " Dice points") + "; " + relative.text(unit: "% relative")
    let verdict = "\(relative.verdict(paperEffect: paperPercent).rawValue) if relative %, \(points.verdict(paperEffect: paperPercent).rawValue) if Dice points"
    return ClaimResult(claim: claim, paper: paper, ours: ours, verdict: verdict, comparisons: [points, relative])
  }

  /// k at which Pix2Rep FT with n patients (n = the smallest budget) matches the supervised U-Net
  /// with k·n: the baseline's weighted monotone fit in log budget, with a bootstrap over draws.
  /// Verdict: lower bound > 1 and k ≥ 2.5 → reproduced; lower bound > 1, k < 2.5 → weaker;
  /// upper bound < 1, or (k ≥ 1 by construction) Pix2Rep FT paired-below the baseline at n →
  /// contradicted; otherwise, or with fewer than 2 draws of either method at n, inconclusive.
  static func annotationReduction(_ table: ResultTable) -> ClaimResult {
    let claim = "annotation reduction factor"
    let paper = "5x fewer annotations for equal performance (\(source))"
    var baseline: [Int: [Double]] = [:]
    for b in table.budgets where !table.values(.supervised, b).isEmpty { baseline[b] = table.values(.supervised, b) }
    guard let n = table.budgets.min(), baseline.count >= 2, baseline[n] != nil,
      let factor = reductionFactor(baseline: baseline, treated: table.values(.pix2repFineTune, n), n: n, resamples: resamples, seed: bootstrapSeed)
    else {
      let why = baseline.count < 2 ? "needs the supervised U-Net at two budgets or more" : "needs Pix2Rep FT and the supervised U-Net at the smallest budget"
      return ClaimResult(claim: claim, paper: paper, ours: "missing (\(why))", verdict: Verdict.notMeasured.rawValue)
    }
    let atN = comparison(pairs(table, .pix2repFineTune, .supervised, budgets: [n]), label: "Pix2Rep FT − supervised, budget \(n), Dice points", relative: false)
    func kText(_ k: Double) -> String { k == .infinity ? String(format: "above %.0f", factor.censoringLimit) : String(format: "%.1f", k) }
    let treatedDraws = table.values(.pix2repFineTune, n).count, baseDraws = baseline[n]!.count
    var ours = String(format: "Pix2Rep FT with %d patient(s) (Dice %.3f, %d draws) matches the supervised U-Net (monotone fit in log budget) ", n, factor.target, treatedDraws)
    ours += factor.k == .infinity ? "at no budget up to \(factor.largestBudget): k \(kText(factor.k))" : String(format: "at %.1f patients: k = %@", factor.k * Double(n), kText(factor.k))
    let verdict: Verdict
    if treatedDraws < 2 || baseDraws < 2 {
      ours += " (fewer than 2 draws at budget \(n): no interval)"
      verdict = .inconclusive
    } else {
      ours += " (95% bootstrap interval \(kText(factor.lower)) to \(kText(factor.upper)), \(factor.resamples) resamples of draws)"
      if factor.lower > 1 {
        verdict = factor.k >= 2.5 ? .reproduced : .weaker
      } else if factor.upper < 1 || (atN.upper ?? 0) < 0 {
        verdict = .contradicted
      } else {
        verdict = .inconclusive
      }
    }
    ours += "; at \(n) patient(s) Pix2Rep FT − supervised: " + atN.text(unit: " Dice points")
    return ClaimResult(claim: claim, paper: paper, ours: ours, verdict: verdict.rawValue, comparisons: [atN])
  }

  /// Barlow Twins (Pix2Rep-v2) minus InfoNCE (Pix2Rep) in Dice points, paired over every
  /// (budget, draw) where both exist; any interval above 0 reproduces (no number in the paper).
  static func barlowBetter(_ table: ResultTable, v2: Method, v1: Method, label: String) -> ClaimResult {
    pairedBetter(
      table, v2, than: v1, claim: "Barlow Twins variant (Pix2Rep-v2) better than InfoNCE under \(label)",
      paper: "better than Pix2Rep (\(source); no number given)")
  }

  /// Method a minus method b in Dice points, paired over every (budget, draw) where both exist,
  /// for a claim the paper states without a number: any interval above 0 reproduces
  /// (`PairedComparison.verdict(paperEffect: nil)`).
  static func pairedBetter(_ table: ResultTable, _ a: Method, than b: Method, claim: String, paper: String) -> ClaimResult {
    let paired = pairs(table, a, b)
    guard !paired.isEmpty else {
      return ClaimResult(claim: claim, paper: paper, ours: "missing (no draw has both \(a.rawValue) and \(b.rawValue))", verdict: Verdict.notMeasured.rawValue)
    }
    let c = comparison(paired, label: "\(a.rawValue) − \(b.rawValue), all budgets, Dice points", relative: false)
    let budgets = Set(paired.map(\.a.budget)).count
    let ours = "\(a.rawValue) − \(b.rawValue) over \(budgets) budget(s): " + c.text(unit: " Dice points")
    return ClaimResult(claim: claim, paper: paper, ours: ours, verdict: c.verdict(paperEffect: nil).rawValue, comparisons: [c])
  }

  // MARK: - Sanity lines

  /// Report lines (no verdicts): (a) the supervised U-Net's Dice at the largest budget; (b) for
  /// every method row, each step between consecutive measured budgets where mean Dice falls as the
  /// budget grows by more than the cells' uncertainty, flagged as a sign of an undertrained
  /// schedule. The allowed drop is the sum of the two cells' 95% t half-widths
  /// (t(0.975, n − 1) · sd / √n) when both cells have at least 2 draws, else 0.02 Dice.
  public static func sanity(_ table: ResultTable) -> [String] {
    var lines: [String] = []
    if let largest = table.budgets.max(), let c = table.cell(.supervised, largest) {
      lines.append(String(format: "Supervised U-Net with %d patients (largest budget): Dice %.3f", largest, c.mean) + (c.count > 1 ? String(format: " ± %.3f over %d draws", c.sd, c.count) : " (1 draw)"))
    } else {
      lines.append("Supervised U-Net at the largest budget: missing")
    }
    func halfWidth(_ c: (mean: Double, sd: Double, count: Int)) -> Double {
      studentTQuantile(probability: 0.975, degreesOfFreedom: Double(c.count - 1)) * c.sd / Double(c.count).squareRoot()
    }
    for method in Method.allCases {
      let cells = table.budgets.sorted().compactMap { b in table.cell(method, b).map { (budget: b, cell: $0) } }
      for (previous, next) in zip(cells, cells.dropFirst()) {
        let drop = previous.cell.mean - next.cell.mean
        let bothDrawn = previous.cell.count >= 2 && next.cell.count >= 2
        let allowed = bothDrawn ? halfWidth(previous.cell) + halfWidth(next.cell) : 0.02
        guard drop > allowed else { continue }
        lines.append(String(
          format: "%@: mean Dice falls from %.3f at %d to %.3f at %d patients (drop %.3f > %.3f %@): a sign of an undertrained schedule",
          method.rawValue, previous.cell.mean, previous.budget, next.cell.mean, next.budget, drop, allowed,
          bothDrawn ? "summed 95% half-widths" : "fixed allowance"))
      }
    }
    return lines
  }
}
