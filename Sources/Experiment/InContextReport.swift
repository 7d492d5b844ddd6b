import Foundation

// The in-context rows' comparisons and the propagation table in results.md, on standard output
// and in report.html (docs/PROTOCOL.md section 9).

extension Claims {
  /// Where in-context segmentation and propagation are reported, and what we have of it.
  public static let inContextSource = "Pix2Rep-v2, arXiv 2609.01427: in-context segmentation with no training; its numbers are missing here"

  /// The in-context rows paired over every (budget, draw): each pretrained backbone against the
  /// random control, and Barlow Twins against InfoNCE. Judged like the claims without a paper
  /// number (any interval above 0 reproduces), but kept apart from `evaluate`, so
  /// `--require-reproduced` still means the paper's claims.
  public static func inContext(_ table: ResultTable) -> [ClaimResult] {
    let paper = "missing (\(inContextSource))"
    return [
      pairedBetter(table, .pix2repInContext, than: .randomInContext, claim: "Pix2Rep in-context better than the random backbone in context", paper: paper),
      pairedBetter(table, .barlowInContext, than: .randomInContext, claim: "Pix2Rep-v2 in-context better than the random backbone in context", paper: paper),
      pairedBetter(table, .barlowInContext, than: .pix2repInContext, claim: "Pix2Rep-v2 (Barlow Twins) better than Pix2Rep (InfoNCE) in context", paper: paper),
    ]
  }
}

extension Report {
  /// What the in-context rows are, how much of the support they kept, and their paired comparisons
  /// (empty when no in-context run has finished).
  public var inContextText: String {
    guard !inContextNotes.isEmpty else { return "" }
    var lines = [inContextNotes, "", "In-context comparisons, paired over every budget and draw (paper: missing):"]
    for c in Claims.inContext(table) {
      lines.append("- \(c.claim): \(c.ours); verdict: **\(c.verdict)**")
    }
    return lines.joined(separator: "\n")
  }

  /// What the in-context rows are and how much of the support they kept.
  public var inContextNotes: String {
    let inContext = runs.filter { $0.method.isInContext }
    guard !inContext.isEmpty else { return "" }
    var lines = ["In-context segmentation (no training; docs/PROTOCOL.md section 9):"]
    let samples = inContext.compactMap(\.support)
    let limit = samples.first?.perClassLimit ?? 0
    var kept = "each test pixel takes the label of its nearest labelled pixel (cosine similarity of g(f(x)), exact search); the support is every labelled slice of the draw (train and validation)"
    if !samples.isEmpty {
      let used = samples.map { Double($0.used.reduce(0, +)) }.reduce(0, +), available = samples.map { Double($0.available.reduce(0, +)) }.reduce(0, +)
      let byClass = (0..<4).map { k -> String in
        let u = samples.map { Double($0.used[k]) }.reduce(0, +), a = samples.map { Double($0.available[k]) }.reduce(0, +)
        return String(format: "%@ %.1f%%", ["background", "RV", "MYO", "LV"][k], a > 0 ? 100 * u / a : 100)
      }
      kept += String(
        format: ", at most %d pixels per class drawn at random (seeded): %.1f%% of the labelled pixels kept over the %d runs (%@); the smallest support had %d pixels, the largest %d",
        limit, 100 * used / max(available, 1), samples.count, byClass.joined(separator: ", "),
        samples.map { $0.used.reduce(0, +) }.min() ?? 0, samples.map { $0.used.reduce(0, +) }.max() ?? 0)
    }
    lines.append("- " + kept + ".")
    lines.append("- Random-backbone in-context: the random backbone of the random-backbone probe, its projection head's BatchNorm statistics re-estimated on the unlabelled pretraining slices too (no weight changed).")
    return lines.joined(separator: "\n")
  }

  /// The ED-to-ES propagation table and its paired comparisons over patients (empty when none has
  /// finished).
  public var propagationText: String {
    guard let propagation, !propagation.isEmpty else { return "" }
    let patients = propagation[0].volumes.count
    var lines = [
      "ED-to-ES propagation (no training; docs/PROTOCOL.md section 9): each test patient's ES frame labelled from its ED frame's ground truth by the nearest-neighbour rule; hard 3D Dice against the ES truth, mean ± sd over \(patients) test patients; paper: missing (\(Claims.inContextSource)).",
      "",
      "| backbone | RV | MYO | LV | mean | support pixels per patient |",
      "|---|---|---|---|---|---|",
    ]
    for p in propagation {
      let cells = (0..<3).map { k in meanAndSD(p.volumes.map { $0.dice[k] }) } + [meanAndSD(p.volumes.map(\.mean))]
      let support = p.supports.map { Double($0.used.reduce(0, +)) }
      lines.append("| \(p.backbone.title) | " + cells.map { String(format: "%.3f ± %.3f", $0.mean, $0.sd) }.joined(separator: " | ")
        + String(format: " | %.0f |", support.reduce(0, +) / Double(max(support.count, 1))))
    }
    if let random = propagation.first(where: { $0.backbone == .random }) {
      lines.append("")
      for p in propagation where p.backbone != .random && p.volumes.map(\.patient) == random.volumes.map(\.patient) {
        let c = PairedComparison.paired(p.volumes.map { 100 * $0.mean }, random.volumes.map { 100 * $0.mean }, label: "")
        let interval = c.lower.map { String(format: " (95%% t-interval %+.1f to %+.1f, %d paired patients)", $0, c.upper!, c.count) } ?? ""
        lines.append(String(format: "- %@ − %@: %+.1f Dice points", p.backbone.title, random.backbone.title, c.mean ?? .nan) + interval)
      }
    }
    return lines.joined(separator: "\n")
  }
}
