import Foundation

/// A verdict on one of the paper's claims (issue 6): `reproduced` is the same direction and at
/// least half the paper's effect, `weaker` the same direction but smaller, `not reproduced` the
/// opposite sign or a difference within the spread of the draws.
public enum Verdict: String, Codable, Sendable {
  case reproduced
  case weaker
  case notReproduced = "not reproduced"
  case notMeasured = "not measured"
}

public struct ClaimResult: Codable, Sendable {
  public var claim: String
  /// The paper's value and where it comes from.
  public var paper: String
  public var ours: String
  public var verdict: String
  /// True when the verdict is `reproduced` (for the one-shot claims: under at least one reading of
  /// the paper's percentage). `--require-reproduced` fails on any claim where this is false.
  public var reproduced: Bool { verdict.hasPrefix("reproduced") || verdict.contains(", reproduced if") }
}

/// The claims of PROTOCOL section 5, evaluated on a table.
public enum Claims {
  public static let source = "Seince et al., MIDL 2024, abstract (arXiv 2407.20395)"

  public static func evaluate(_ table: ResultTable) -> [ClaimResult] {
    [
      oneShot(table, method: .pix2repLinear, paperPercent: 30, label: "one-shot linear probing"),
      oneShot(table, method: .pix2repFineTune, paperPercent: 31, label: "one-shot fine-tuning"),
      annotationReduction(table),
      barlowBetter(table),
    ]
  }

  /// Pix2Rep vs the supervised U-Net at one labelled patient, as relative % and as Dice points.
  static func oneShot(_ table: ResultTable, method: Method, paperPercent: Double, label: String) -> ClaimResult {
    let paper = "+\(Int(paperPercent))% (\(source); relative % or Dice points not stated)"
    let ours = table.values(method, 1), base = table.values(.supervised, 1)
    guard !ours.isEmpty, !base.isEmpty else {
      return ClaimResult(claim: "\(label) improves Dice", paper: paper, ours: "missing (budget 1 not run)", verdict: Verdict.notMeasured.rawValue)
    }
    let a = meanAndSD(ours), b = meanAndSD(base)
    let points = (a.mean - b.mean) * 100
    let relative = b.mean > 0 ? (a.mean - b.mean) / b.mean * 100 : .infinity
    let spread = (a.sd * a.sd + b.sd * b.sd).squareRoot() * 100
    let asRelative = verdict(effect: relative, paper: paperPercent, noise: b.mean > 0 ? spread / b.mean : 0)
    let asPoints = verdict(effect: points, paper: paperPercent, noise: spread)
    let text = String(
      format: "%@ %.3f vs supervised %.3f: %+.1f%% relative, %+.1f Dice points (spread of draws %.1f points, %d draws)",
      method.rawValue, a.mean, b.mean, relative, points, spread, ours.count)
    return ClaimResult(
      claim: "\(label) improves Dice over the supervised U-Net", paper: paper, ours: text,
      verdict: "\(asRelative.rawValue) if relative %, \(asPoints.rawValue) if Dice points")
  }

  static func verdict(effect: Double, paper: Double, noise: Double) -> Verdict {
    if effect <= 0 || abs(effect) <= noise { return .notReproduced }
    return effect >= paper / 2 ? .reproduced : .weaker
  }

  /// k at which Pix2Rep FT with n patients matches the supervised U-Net with k·n patients
  /// (baseline Dice interpolated linearly in log budget), for the smallest budget n.
  static func annotationReduction(_ table: ResultTable) -> ClaimResult {
    let paper = "5x fewer annotations for equal performance (\(source))"
    let points = table.budgets.compactMap { b in table.cell(.supervised, b).map { (b, $0.mean) } }
    guard let n = table.budgets.first, let target = table.cell(.pix2repFineTune, n)?.mean, points.count >= 2 else {
      return ClaimResult(claim: "annotation reduction factor", paper: paper, ours: "missing (needs the baseline at two budgets or more)", verdict: Verdict.notMeasured.rawValue)
    }
    let ours: String
    let verdict: Verdict
    if let matched = matchingBudget(points, target: target) {
      let k = matched / Double(n)
      ours = String(format: "Pix2Rep FT with %d patient(s) (Dice %.3f) matches the supervised U-Net with %.1f patients: k = %.1f", n, target, matched, k)
      verdict = k <= 1 ? .notReproduced : (k >= 2.5 ? .reproduced : .weaker)
    } else if target > points.map(\.1).max()! {
      ours = String(format: "Pix2Rep FT with %d patient(s) (Dice %.3f) beats the supervised U-Net at every budget up to %d: k > %d", n, target, points.last!.0, points.last!.0 / n)
      verdict = points.last!.0 / n >= 3 ? .reproduced : .weaker
    } else {
      ours = String(format: "Pix2Rep FT with %d patient(s) (Dice %.3f) is below the supervised U-Net at %d: k < 1", n, target, n)
      verdict = .notReproduced
    }
    return ClaimResult(claim: "annotation reduction factor", paper: paper, ours: ours, verdict: verdict.rawValue)
  }

  /// The smallest budget b (interpolated in log b) where the baseline curve first reaches `target`.
  static func matchingBudget(_ points: [(Int, Double)], target: Double) -> Double? {
    if let first = points.first, first.1 >= target { return Double(first.0) }
    for i in 1..<points.count where points[i].1 >= target {
      let (b0, d0) = points[i - 1], (b1, d1) = points[i]
      let t = (target - d0) / (d1 - d0)
      return exp(log(Double(b0)) + t * (log(Double(b1)) - log(Double(b0))))
    }
    return nil
  }

  /// Barlow Twins (Pix2Rep-v2) vs InfoNCE, fine-tuning and linear probing, averaged over budgets.
  static func barlowBetter(_ table: ResultTable) -> ClaimResult {
    let paper = "better than Pix2Rep (\(source); no number given)"
    var parts: [String] = []
    var verdicts: [Verdict] = []
    for (v2, v1, name) in [(Method.barlowFineTune, Method.pix2repFineTune, "FT"), (.barlowLinear, .pix2repLinear, "LP")] {
      let diffs = table.budgets.compactMap { b -> Double? in
        guard let a = table.cell(v2, b), let c = table.cell(v1, b) else { return nil }
        return a.mean - c.mean
      }
      guard !diffs.isEmpty else { continue }
      let m = meanAndSD(diffs)
      parts.append(String(format: "%@ %+.1f Dice points on average over %d budgets (sd %.1f)", name, m.mean * 100, diffs.count, m.sd * 100))
      verdicts.append(m.mean > 0 && m.mean > m.sd / Double(diffs.count).squareRoot() ? .reproduced : .notReproduced)
    }
    guard !verdicts.isEmpty else {
      return ClaimResult(claim: "Barlow Twins variant better", paper: paper, ours: "missing", verdict: Verdict.notMeasured.rawValue)
    }
    let verdict: Verdict = verdicts.allSatisfy { $0 == .reproduced } ? .reproduced : (verdicts.contains(.reproduced) ? .weaker : .notReproduced)
    return ClaimResult(claim: "Barlow Twins variant (Pix2Rep-v2) better than InfoNCE", paper: paper, ours: parts.joined(separator: "; "), verdict: verdict.rawValue)
  }
}
