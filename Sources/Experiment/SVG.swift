import Foundation

/// A small line plot written as standalone SVG text: lines with markers, vertical error bars,
/// a linear or logarithmic x axis, axis labels, a legend and text annotations. No scripts, no
/// external resources; the output is deterministic.
public struct LinePlot: Sendable {
  public struct Point: Sendable {
    public var x: Double
    public var y: Double
    /// Half-height of the error bar (0: none).
    public var error: Double
    public init(x: Double, y: Double, error: Double = 0) {
      self.x = x
      self.y = y
      self.error = error
    }
  }

  public struct Series: Sendable {
    public var name: String
    public var color: String
    public var points: [Point]
    public var dashed: Bool
    public init(name: String, color: String, points: [Point], dashed: Bool = false) {
      self.name = name
      self.color = color
      self.points = points
      self.dashed = dashed
    }
  }

  /// A text marker at a data position (drawn with a small cross).
  public struct Annotation: Sendable {
    public var x: Double
    public var y: Double
    public var text: String
    public init(x: Double, y: Double, text: String) {
      self.x = x
      self.y = y
      self.text = text
    }
  }

  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var logX: Bool
  public var series: [Series] = []
  public var annotations: [Annotation] = []
  /// Fixed y range; nil fits the data (with error bars).
  public var yRange: ClosedRange<Double>? = nil
  /// Ticks of the x axis; nil picks them (the data's x values on a log axis).
  public var xTicks: [Double]? = nil
  public var width = 640.0
  public var height = 400.0

  public init(title: String, xLabel: String, yLabel: String, logX: Bool = false) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.logX = logX
  }

  /// A palette of distinguishable colours for series.
  public static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]

  // MARK: - Rendering

  public var svg: String {
    let margin = (left: 64.0, right: 190.0, top: 36.0, bottom: 52.0)
    let plotW = width - margin.left - margin.right, plotH = height - margin.top - margin.bottom
    let points = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite && (!logX || $0.x > 0) }
    let xs = points.map { logX ? log10($0.x) : $0.x }
    var x0 = xs.min() ?? 0, x1 = xs.max() ?? 1
    if x1 - x0 < 1e-12 { (x0, x1) = (x0 - 0.5, x1 + 0.5) }
    let pad = (x1 - x0) * 0.05
    (x0, x1) = (x0 - pad, x1 + pad)
    var y0 = yRange?.lowerBound ?? (points.map { $0.y - $0.error }.min() ?? 0)
    var y1 = yRange?.upperBound ?? (points.map { $0.y + $0.error }.max() ?? 1)
    if y1 - y0 < 1e-12 { (y0, y1) = (y0 - 0.5, y1 + 0.5) }
    if yRange == nil {
      let padY = (y1 - y0) * 0.05
      (y0, y1) = (y0 - padY, y1 + padY)
    }
    func px(_ x: Double) -> Double { margin.left + ((logX ? log10(x) : x) - x0) / (x1 - x0) * plotW }
    func py(_ y: Double) -> Double { margin.top + (1 - (y - y0) / (y1 - y0)) * plotH }

    var out = [
      #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(f(width))" height="\#(f(height))" viewBox="0 0 \#(f(width)) \#(f(height))" font-family="sans-serif" font-size="12">"#,
      #"<rect width="100%" height="100%" fill="white"/>"#,
      #"<text x="\#(f(width / 2))" y="20" text-anchor="middle" font-size="14">\#(escapeXML(title))</text>"#,
      #"<rect x="\#(f(margin.left))" y="\#(f(margin.top))" width="\#(f(plotW))" height="\#(f(plotH))" fill="none" stroke="dimgray"/>"#,
    ]
    // Axes, ticks and grid.
    let ticksX = (xTicks ?? (logX ? Array(Set(points.map(\.x))).sorted() : niceTicks(x0, x1))).filter {
      let v = logX ? log10($0) : $0
      return v >= x0 && v <= x1
    }
    for t in ticksX {
      let x = px(t)
      out.append(#"<line x1="\#(f(x))" y1="\#(f(margin.top))" x2="\#(f(x))" y2="\#(f(margin.top + plotH))" stroke="gainsboro"/>"#)
      out.append(#"<text x="\#(f(x))" y="\#(f(margin.top + plotH + 16))" text-anchor="middle">\#(tickLabel(t))</text>"#)
    }
    for t in niceTicks(y0, y1) {
      let y = py(t)
      out.append(#"<line x1="\#(f(margin.left))" y1="\#(f(y))" x2="\#(f(margin.left + plotW))" y2="\#(f(y))" stroke="gainsboro"/>"#)
      out.append(#"<text x="\#(f(margin.left - 6))" y="\#(f(y + 4))" text-anchor="end">\#(tickLabel(t))</text>"#)
    }
    out.append(#"<text x="\#(f(margin.left + plotW / 2))" y="\#(f(height - 12))" text-anchor="middle">\#(escapeXML(xLabel))</text>"#)
    out.append(#"<text x="16" y="\#(f(margin.top + plotH / 2))" text-anchor="middle" transform="rotate(-90 16 \#(f(margin.top + plotH / 2)))">\#(escapeXML(yLabel))</text>"#)
    // Series: error bars, line, markers.
    for s in series {
      let valid = s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logX || $0.x > 0) }
      for p in valid where p.error > 0 {
        let x = px(p.x)
        out.append(#"<line x1="\#(f(x))" y1="\#(f(py(p.y - p.error)))" x2="\#(f(x))" y2="\#(f(py(p.y + p.error)))" stroke="\#(s.color)" stroke-width="1.5"/>"#)
        for y in [p.y - p.error, p.y + p.error] {
          out.append(#"<line x1="\#(f(x - 4))" y1="\#(f(py(y)))" x2="\#(f(x + 4))" y2="\#(f(py(y)))" stroke="\#(s.color)" stroke-width="1.5"/>"#)
        }
      }
      if valid.count > 1 {
        let path = valid.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
        let dash = s.dashed ? #" stroke-dasharray="6 4""# : ""
        out.append(#"<polyline points="\#(path)" fill="none" stroke="\#(s.color)" stroke-width="2"\#(dash)/>"#)
      }
      for p in valid where valid.count <= 40 {
        out.append(#"<circle cx="\#(f(px(p.x)))" cy="\#(f(py(p.y)))" r="3.5" fill="\#(s.color)"/>"#)
      }
    }
    for a in annotations where a.x.isFinite && a.y >= y0 && a.y <= y1 && (!logX || a.x > 0) {
      let (x, y) = (px(a.x), py(a.y))
      out.append(#"<path d="M\#(f(x - 5)),\#(f(y - 5)) L\#(f(x + 5)),\#(f(y + 5)) M\#(f(x - 5)),\#(f(y + 5)) L\#(f(x + 5)),\#(f(y - 5))" stroke="black" stroke-width="2"/>"#)
      out.append(#"<text x="\#(f(x + 8))" y="\#(f(y - 6))" font-size="11">\#(escapeXML(a.text))</text>"#)
    }
    // Legend.
    for (i, s) in series.enumerated() {
      let y = margin.top + 10 + Double(i) * 18
      let x = margin.left + plotW + 12
      let dash = s.dashed ? #" stroke-dasharray="6 4""# : ""
      out.append(#"<line x1="\#(f(x))" y1="\#(f(y))" x2="\#(f(x + 22))" y2="\#(f(y))" stroke="\#(s.color)" stroke-width="2"\#(dash)/>"#)
      out.append(#"<text x="\#(f(x + 28))" y="\#(f(y + 4))">\#(escapeXML(s.name))</text>"#)
    }
    out.append("</svg>")
    return out.joined(separator: "\n") + "\n"
  }

  /// About five round ticks covering [lo, hi].
  func niceTicks(_ lo: Double, _ hi: Double) -> [Double] {
    let raw = (hi - lo) / 5
    let magnitude = pow(10, (log10(raw)).rounded(.down))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
    var ticks: [Double] = []
    var t = (lo / step).rounded(.up) * step
    while t <= hi + step * 1e-9 && ticks.count < 20 {
      ticks.append(abs(t) < step * 1e-9 ? 0 : t)
      t += step
    }
    return ticks
  }

  func tickLabel(_ v: Double) -> String {
    if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
    return String(format: "%g", (v * 1e6).rounded() / 1e6)
  }

  func f(_ v: Double) -> String { String(format: "%.1f", v) }
}

/// Text escaped for XML and HTML content and attribute values.
public func escapeXML(_ text: String) -> String {
  var out = ""
  for c in text {
    switch c {
    case "&": out += "&amp;"
    case "<": out += "&lt;"
    case ">": out += "&gt;"
    case "\"": out += "&quot;"
    case "'": out += "&#39;"
    default: out.append(c)
    }
  }
  return out
}
