import Foundation

/// Progress lines for long stages: step, loss, throughput and time left, at most every few seconds.
public final class ProgressPrinter: @unchecked Sendable {
  let label: String
  let total: Int
  let unit: String
  let start = Date()
  var lastPrint = Date.distantPast
  let interval: TimeInterval

  public init(_ label: String, total: Int, unit: String = "step", interval: TimeInterval = 5) {
    self.label = label
    self.total = max(total, 1)
    self.unit = unit
    self.interval = interval
  }

  /// Reports that `done` of `total` units are finished; prints when the interval has passed or at the end.
  public func update(_ done: Int, loss: Double? = nil, extra: String = "") {
    let now = Date()
    guard done >= total || now.timeIntervalSince(lastPrint) >= interval else { return }
    lastPrint = now
    let elapsed = now.timeIntervalSince(start)
    let rate = elapsed > 0 ? Double(done) / elapsed : 0
    let left = rate > 0 ? Double(total - done) / rate : 0
    var line = "  [\(label)] \(unit) \(done)/\(total)"
    if let loss { line += String(format: "  loss %.4f", loss) }
    line += String(format: "  %.1f %@/s  elapsed %@  left %@", rate, unit, formatDuration(elapsed), formatDuration(left))
    if !extra.isEmpty { line += "  " + extra }
    say(line)
  }
}

/// 75 -> "1m15s".
public func formatDuration(_ seconds: Double) -> String {
  let s = Int(seconds.rounded())
  if s < 60 { return "\(s)s" }
  if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
  return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
}

/// Writes one line to standard output at once (unbuffered), so progress shows through a pipe too.
public func say(_ line: String) {
  FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
