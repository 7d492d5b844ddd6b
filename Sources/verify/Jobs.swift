import Experiment
import Foundation

/// `verify reproduce --jobs N`: the plan's stages computed by up to N child processes at a time
/// (`verify reproduce --stage NAME`, the workers split among them), level by level; the caller then
/// assembles the table in process. The stages draw their randomness from their names, so the
/// results equal a run with `--jobs 1` bit for bit.
enum Jobs {
  /// The options a child must repeat so that it sees the same plan and data.
  static func childArguments(_ options: Options, runDirectory: URL, workers: Int) -> [String] {
    var arguments = ["reproduce", "--run", runDirectory.path, "--workers", "\(workers)"]
    for name in ["data", "preset", "seed", "init", "max-epochs"] {
      if let value = options.string(name) { arguments += ["--\(name)", value] }
    }
    if options.flag("lp-cached-features") { arguments.append("--lp-cached-features") }
    return arguments
  }

  /// Computes every unfinished stage with up to `jobs` children at a time, lower levels first.
  /// A failed child stops the launching of new ones; the error names its stage and the log.
  static func run(
    stages: [Reproduction.Stage], jobs: Int, arguments: [String], runDirectory: URL
  ) throws {
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
    let pending = stages.filter {
      !FileManager.default.fileExists(atPath: runDirectory.appendingPathComponent("stages/\($0.name).json").path)
    }
    let progress = ProgressPrinter("jobs", total: pending.count, unit: "stage", interval: 5)
    var done = 0
    for level in Set(pending.map(\.level)).sorted() {
      var queue = pending.filter { $0.level == level }.map(\.name)
      var running: [(name: String, process: Process)] = []
      var failure: String? = nil
      while !queue.isEmpty || !running.isEmpty {
        while failure == nil && running.count < jobs, let name = queue.first {
          queue.removeFirst()
          let process = Process()
          process.executableURL = executable
          process.arguments = arguments + ["--stage", name]
          // Messages go to the run's log; standard error (progress, a failure's message) to a file.
          process.standardOutput = FileHandle.nullDevice
          process.standardError = try errorFile(name, runDirectory)
          try process.run()
          running.append((name, process))
        }
        if failure != nil { queue.removeAll() }
        Thread.sleep(forTimeInterval: 0.2)
        for (name, process) in running where !process.isRunning {
          done += 1
          if process.terminationStatus != 0 && failure == nil {
            let file = errorURL(name, runDirectory)
            let last = ((try? String(contentsOf: file, encoding: .utf8)) ?? "").split(separator: "\n").last.map(String.init) ?? ""
            failure = "stage \(name) failed (exit \(process.terminationStatus)): \(last) (\(file.path))"
          }
        }
        running.removeAll { !$0.process.isRunning }
        progress.update(done, extra: "level \(level), running: " + running.map(\.name).joined(separator: ", "))
      }
      if let failure { throw VerifyError(failure) }
    }
    progress.finish()
  }

  static func errorURL(_ stage: String, _ runDirectory: URL) -> URL {
    runDirectory.appendingPathComponent("jobs/\(stage).stderr")
  }

  /// A fresh file for a child's standard error.
  static func errorFile(_ stage: String, _ runDirectory: URL) throws -> FileHandle {
    let url = errorURL(stage, runDirectory)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
      throw VerifyError("\(url.path): cannot create the file for the stage's messages")
    }
    return try FileHandle(forWritingTo: url)
  }
}
