import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Where a run's messages go. `say` writes whole lines to standard output; progress lines go to
/// standard error, redrawn in place when it is a terminal and one per update otherwise; both are
/// appended to the run's plain log (`log.txt` in the run folder) once `openLog` has been called.
public final class Console: @unchecked Sendable {
  public static let shared = Console()

  private let lock = NSLock()
  private var log: FileHandle?
  private var progressShown = false
  private let terminal = isatty(2) != 0
  /// A short status of the whole job (runs done, estimated time left), shown after every progress line.
  private var status = ""

  /// Appends every later message and progress line to `url` (created if missing).
  /// Opened for appending (O_APPEND), so several processes of one run folder (`--stage`) can share it.
  public func openLog(_ url: URL) throws {
    let fd = open(url.path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
    guard fd >= 0 else { throw ExperimentError("\(url.path): cannot open the run log") }
    let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    lock.withLock { log = handle }
  }

  public func setStatus(_ text: String) { lock.withLock { status = text } }

  /// A message line: standard output and the log.
  public func line(_ text: String) {
    lock.withLock {
      clearProgress()
      FileHandle.standardOutput.write(Data((text + "\n").utf8))
      log?.write(Data((text + "\n").utf8))
    }
  }

  /// A progress line: standard error (in place on a terminal) and, when `logged`, the log.
  func progress(_ text: String, logged: Bool) {
    lock.withLock {
      let full = status.isEmpty ? text : "\(text)  [\(status)]"
      if terminal {
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + full).utf8))
        progressShown = true
      } else {
        FileHandle.standardError.write(Data((full + "\n").utf8))
      }
      if logged { log?.write(Data((full + "\n").utf8)) }
    }
  }

  /// Ends an in-place progress line (a newline on a terminal), so the next line starts clean.
  func endProgress() {
    lock.withLock {
      if progressShown {
        FileHandle.standardError.write(Data("\n".utf8))
        progressShown = false
      }
    }
  }

  /// Must hold `lock`.
  private func clearProgress() {
    if progressShown {
      FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
      progressShown = false
    }
  }
}

/// Progress of one long stage: step, loss, throughput and time left (or, for a run that may stop
/// early, the cap), at most every `interval` seconds on the console and every 30 s in the log.
public final class ProgressPrinter: @unchecked Sendable {
  let label: String
  let total: Int
  let unit: String
  let start = Date()
  var lastPrint = Date.distantPast
  var lastLogged = Date.distantPast
  let interval: TimeInterval
  /// Units done before this process started on the stage (a run resumed from its checkpoint): they
  /// count for the position, not for the pace.
  let resumedAt: Int

  public init(_ label: String, total: Int, unit: String = "step", interval: TimeInterval = 2, resumedAt: Int = 0) {
    self.label = label
    self.total = max(total, 1)
    self.unit = unit
    self.interval = interval
    self.resumedAt = resumedAt
  }

  /// Reports that `done` units are finished. `open`: `total` is a cap the stage may stop before
  /// (early stopping), so no time left is shown for it. `left`: the caller's own estimate of the
  /// seconds left, shown instead of the one from the units' pace (for units of unequal size).
  public func update(_ done: Int, loss: Double? = nil, extra: String = "", open: Bool = false, left estimate: Double? = nil) {
    let now = Date()
    guard done >= total || now.timeIntervalSince(lastPrint) >= interval else { return }
    lastPrint = now
    let elapsed = now.timeIntervalSince(start)
    let rate = elapsed > 0 ? Double(max(done - resumedAt, 0)) / elapsed : 0
    var line = "  [\(label)] \(unit) \(done)\(open ? " (cap \(total))" : "/\(total)")"
    if let loss { line += String(format: "  loss %.4f", loss) }
    line += String(format: "  %.1f %@/s  elapsed %@", rate, unit, formatDuration(elapsed))
    if !open {
      let left = estimate ?? (rate > 0 ? Double(total - done) / rate : 0)
      line += "  left \(formatDuration(left))"
    }
    if !extra.isEmpty { line += "  " + extra }
    let logged = done >= total || now.timeIntervalSince(lastLogged) >= 30
    if logged { lastLogged = now }
    Console.shared.progress(line, logged: logged)
  }

  /// Ends the stage's in-place line.
  public func finish() { Console.shared.endProgress() }
}

/// 75 -> "1m15s".
public func formatDuration(_ seconds: Double) -> String {
  let s = Int(seconds.rounded())
  if s < 60 { return "\(s)s" }
  if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
  return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
}

/// Writes one line to standard output at once (unbuffered), so it shows through a pipe too, and
/// to the run's log.
public func say(_ line: String) {
  Console.shared.line(line)
}
