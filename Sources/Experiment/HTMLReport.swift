import Foundation

/// `report.html`: the report as one self-contained page (PNGs as base64 data URIs, SVGs inline,
/// inline CSS, no scripts, no external resources).
extension Report {
  /// The page; `pictures` are read from `directory`/pictures.
  public func html(pictures: [Picture], directory: URL) -> String {
    var body: [String] = []
    body.append("<h1>Pix2Rep reproduction: \(escapeXML(dataSource))</h1>")
    body.append("<p>Preset <code>\(escapeXML(configuration.preset))</code>, seed \(configuration.seed). Model: widths \(configuration.model.widths), D = \(configuration.model.features), S = \(configuration.model.imageSize), projection \(configuration.model.projectionHidden)-\(configuration.model.projectionOutput). Total wall time \(escapeXML(formatDuration(totalSeconds))).</p>")
    if dataSource.contains("synthetic") {
      body.append("<p class=\"note\">Synthetic phantom: these numbers say nothing about real cardiac MRI.</p>")
    }
    body.append("<h2>Test Dice</h2>")
    body.append(htmlTable(markdown: diceTable()))
    for k in 0..<3 { body.append(htmlTable(markdown: diceTable(classIndex: k))) }
    body.append(htmlTable(markdown: tableNotes))
    body.append("<h2>The paper's claims</h2>")
    body.append("<table><tr><th>claim</th><th>paper</th><th>ours</th><th>verdict</th></tr>")
    for c in claims {
      let cls = c.reproduced ? "ok" : "bad"
      body.append("<tr><td>\(escapeXML(c.claim))</td><td>\(escapeXML(c.paper))</td><td>\(escapeXML(c.ours))</td><td class=\"\(cls)\">\(escapeXML(c.verdict))</td></tr>")
    }
    body.append("</table>")
    if !inContextNotes.isEmpty {
      body.append("<h2>In-context segmentation</h2>")
      body.append(htmlTable(markdown: inContextNotes))
      body.append("<table><tr><th>comparison (paired over every budget and draw)</th><th>paper</th><th>ours</th><th>verdict</th></tr>")
      for c in Claims.inContext(table) {
        body.append("<tr><td>\(escapeXML(c.claim))</td><td>\(escapeXML(c.paper))</td><td>\(escapeXML(c.ours))</td><td>\(escapeXML(c.verdict))</td></tr>")
      }
      body.append("</table>")
    }
    if !propagationText.isEmpty {
      body.append("<h2>ED-to-ES propagation</h2>")
      body.append(htmlTable(markdown: propagationText))
    }
    if !sanity.isEmpty {
      body.append("<h3>Sanity checks (reported, never used to steer training)</h3><ul>")
      body.append(sanity.map { "<li>\(escapeXML($0))</li>" }.joined())
      body.append("</ul>")
    }
    if !pretraining.isEmpty || simCLR != nil {
      body.append("<h2>Pretraining</h2>")
      body.append(pretrainingText.split(separator: "\n").map { "<p>\(escapeXML(String($0)))</p>" }.joined(separator: "\n"))
    }
    body.append("<h2>Baselines</h2><p>\(escapeXML(BaselineSettings.text(configuration)))</p>")
    body.append("<h2>Equivariance and invariance</h2>")
    body.append(htmlTable(markdown: equivarianceText))
    body.append("<h2>Pictures</h2>")
    for p in pictures {
      let url = directory.appendingPathComponent("pictures/\(p.file)")
      guard let data = FileManager.default.contents(atPath: url.path) else { continue }
      body.append("<figure><figcaption><b>\(escapeXML(p.title))</b>. \(escapeXML(p.caption))</figcaption>")
      if p.file.hasSuffix(".svg") {
        body.append(String(decoding: data, as: UTF8.self))
      } else {
        body.append("<img alt=\"\(escapeXML(p.title))\" src=\"data:image/png;base64,\(data.base64EncodedString())\">")
      }
      body.append("</figure>")
    }
    body.append("<h2>Configuration</h2>")
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let json = (try? encoder.encode(configuration)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
    body.append("<pre>\(escapeXML(json))</pre>")
    body.append("<p>Supervised baseline learning rate chosen on validation: \(escapeXML(baselineLearningRates.joined(separator: "; ")))</p>")
    body.append("<h3>Drawn labelled patients</h3><ul>")
    for r in runs.sorted(by: { ($0.budget, $0.draw) < ($1.budget, $1.draw) }) where r.method == .supervised {
      body.append("<li>budget \(r.budget), draw \(r.draw): patients \(r.patients.map(String.init).joined(separator: ", "))</li>")
    }
    body.append("</ul><h3>Timings</h3><table><tr><th>stage</th><th>wall time</th></tr>")
    for (stage, seconds) in stageSeconds.sorted(by: { $0.key < $1.key }) {
      body.append("<tr><td>\(escapeXML(stage))</td><td>\(escapeXML(formatDuration(seconds)))</td></tr>")
    }
    body.append("<tr><td>total</td><td>\(escapeXML(formatDuration(totalSeconds)))</td></tr></table>")
    return """
      <!DOCTYPE html>
      <html lang="en"><head><meta charset="utf-8"><title>Pix2Rep reproduction</title>
      <style>
      body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
      table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
      th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: left; vertical-align: top; }
      th { background: #eee; }
      td.ok { color: #126b12; font-weight: bold; } td.bad { color: #a01010; font-weight: bold; }
      figure { margin: 1em 0 2em; } figure img { image-rendering: pixelated; max-width: 100%; }
      .note { background: #fff4d6; padding: 0.5em; }
      pre { background: #f6f6f6; padding: 0.5em; font-size: 12px; }
      </style></head><body>
      \(body.joined(separator: "\n"))
      </body></html>

      """
  }

  /// A Markdown table (with an optional leading caption line) as HTML.
  func htmlTable(markdown: String) -> String {
    var out: [String] = []
    var header = true
    for line in markdown.split(separator: "\n", omittingEmptySubsequences: true) {
      guard line.hasPrefix("|") else {
        if !header {
          out.append("</table>")
          header = true
        }
        out.append("<p>\(escapeXML(String(line)))</p>")
        continue
      }
      let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
        .map { $0.trimmingCharacters(in: .whitespaces) }
      if cells.allSatisfy({ $0.allSatisfy { $0 == "-" } }) { continue }
      if header { out.append("<table>") }
      let tag = header ? "th" : "td"
      out.append("<tr>" + cells.map { "<\(tag)>\(escapeXML($0))</\(tag)>" }.joined() + "</tr>")
      header = false
    }
    if !header { out.append("</table>") }
    return out.joined(separator: "\n")
  }

  /// Writes report.html into `directory`.
  public func writeHTML(pictures: [Picture], to directory: URL) throws {
    try writeAtomically(Data(html(pictures: pictures, directory: directory).utf8), to: directory.appendingPathComponent("report.html"))
  }
}
