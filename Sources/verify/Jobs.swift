import Experiment
import Foundation

/// `verify reproduce --jobs N` and `verify ablate --jobs N`: the plan's stages computed by up to N
/// child processes at a time (`verify COMMAND --stage NAME`, the workers split among them), each
/// started once its inputs have finished, the longest first; the caller then assembles the table in
/// process. The stages draw their randomness from their names, so the results equal a run with
/// `--jobs 1` bit for bit.
enum Jobs {
  /// The child's command line: `command` with the run folder, its workers, and the options (`values`
  /// with their value, `flags` without) a child must repeat so that it sees the same plan and data.
  static func childArguments(
    _ command: String, _ options: Options, values: [String], flags: [String], runDirectory: URL, workers: Int
  ) -> [String] {
    var arguments = [command, "--run", runDirectory.path, "--workers", "\(workers)"]
    for name in values {
      if let value = options.string(name) { arguments += ["--\(name)", value] }
    }
    return arguments + flags.filter(options.flag).map { "--\($0)" }
  }

  /// Computes every unfinished stage with up to `jobs` children at a time. A stage starts as soon
  /// as its inputs have finished (not when its whole level has), and among the stages ready to
  /// start the one heading the longest chain of assumed seconds goes first (its own and those of
  /// the stages that wait for it, the longest way down; `stageSeconds`, the plan's estimate; stages
  /// it does not list count as 0), so the long stages, such as the 100-patient baseline's rate
  /// search, do not end up running alone at the end while the other jobs idle, and a short stage
  /// that long ones wait for (the rate choice before the 100-patient Mean Teacher run) is not left
  /// for last. A failed child
  /// stops the launching of new ones; the error names its stage and the log.
  /// A stage has finished when its result file, `stageFile(name)`, exists. `calibration`: the run
  /// folder's finished stages' recorded seconds against their assumed ones, if any.
  ///
  /// A stage that another live process holds (its lock file, `RunStore.withClaim`: a `--stage`
  /// process, a Slurm task, an earlier parent's child) is not started again: its dependents wait
  /// for its result, one held by a process of this machine takes one of the `jobs` places (it uses
  /// the cores), and if its holder stops without finishing it, it is started here.
  ///
  /// With a `deadline` (`--stop-after`, for a machine or a job slot that ends at a known time), a
  /// stage starts only if its estimated wall seconds (its assumed seconds times the scale of the time
  /// left, below) end before the deadline, so that a stage cut off by the machine's end does not
  /// throw its work away; once nothing runs and nothing ready fits, the parent returns false (the
  /// folder resumes the stages left), and true when every stage has finished. The estimate of a
  /// downstream run is rough (it stops by patience at a step no one knows in advance): a stage can
  /// still overrun.
  @discardableResult
  static func run(
    stages: [Reproduction.Stage], stageSeconds: [String: Double], calibration: StageCalibration? = nil, jobs: Int,
    deadline: Date? = nil, arguments: [String], runDirectory: URL, stageFile: (String) -> URL
  ) throws -> Bool {
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
    func isFinished(_ name: String) -> Bool { FileManager.default.fileExists(atPath: stageFile(name).path) }
    var waiting = stages.filter { !isFinished($0.name) }
    let progress = ProgressPrinter("jobs", total: waiting.count, unit: "stage", interval: 2)
    // The longest chain from each stage on, from the last stage back (`stages` lists every stage
    // after its inputs).
    var dependents: [String: [String]] = [:]
    for stage in stages {
      for input in stage.inputs { dependents[input, default: []].append(stage.name) }
    }
    var chain: [String: Double] = [:]
    for stage in stages.reversed() {
      let after = dependents[stage.name, default: []].map { chain[$0] ?? 0 }.max() ?? 0
      chain[stage.name] = (stageSeconds[stage.name] ?? 0) + after
    }
    // Time left: each stage takes its assumed seconds (timed with all the workers in one process)
    // times `scale` in a child, measured as wall seconds per assumed second over the stages this
    // process has seen finish; before any has, over the run folder's finished stages
    // (`calibration`: a resumed run on a loaded machine said 8 hours left with the guess below and
    // 30 once a stage had finished), and without those `jobs` (a child has 1/jobs of the workers);
    // the waiting stages' time and what the running ones have still to go, shared by `jobs`
    // children. (Counting only the finished stages' assumed seconds against the wall time since the
    // start, as this did before, ignores the work in the running stages: with two long stages
    // running and one short one finished it said 44 hours left for a plan of about 12.)
    var startTimes: [String: Date] = [:]
    var assumedDone = 0.0
    var measuredDone = 0.0
    var done = 0
    var running: [(name: String, process: Process)] = []
    // Stages other processes hold (see above), with their holders; they count as running, from
    // when this process first saw them.
    var held: [(name: String, holder: String)] = []
    func scale() -> Double {
      assumedDone > 0
        ? measuredDone / assumedDone
        : calibration.map { $0.recordedSeconds / $0.assumedSeconds } ?? Double(jobs)
    }
    func secondsLeft() -> Double {
      let scale = scale()
      let inProgress = running.map(\.name) + held.map(\.name)
      let waitingSeconds = waiting.filter { !inProgress.contains($0.name) }.reduce(0) { $0 + (stageSeconds[$1.name] ?? 0) } * scale
      let runningSeconds = inProgress.reduce(0) { total, name in
        let elapsed = startTimes[name].map { Date().timeIntervalSince($0) } ?? 0
        return total + max(0, (stageSeconds[name] ?? 0) * scale - elapsed)
      }
      return (waitingSeconds + runningSeconds) / Double(jobs)
    }
    let children = Children()
    let stopOnSignals = children.terminateOnSignals()
    defer { stopOnSignals() }
    func lockFile(_ name: String) -> URL { RunStore.lockURL(forStageFile: stageFile(name)) }
    let host = ProcessInfo.processInfo.hostName
    var failure: String? = nil
    // The pause between two looks at the folder and the children: 0.2 s after anything changed,
    // growing to 2 s while nothing does (the scans cost the parent about 3% of a core at 0.2 s
    // over a 200-stage plan, for hours).
    var pause = 0.2
    // Ready stages not started because they would end after the deadline.
    var deferred: [String] = []
    while !waiting.isEmpty || !running.isEmpty {
      // Stages finished by other processes.
      let finishedElsewhere = waiting.filter { isFinished($0.name) }
      var changed = !finishedElsewhere.isEmpty
      done += finishedElsewhere.count
      waiting.removeAll { isFinished($0.name) }
      let candidates = waiting.filter { $0.inputs.allSatisfy(isFinished) }
      held = candidates.compactMap { stage in RunStore.liveHolder(ofLock: lockFile(stage.name)).map { (stage.name, $0) } }
      for stage in held where startTimes[stage.name] == nil { startTimes[stage.name] = Date() }
      if failure == nil {
        let heldHere = held.filter { $0.holder.hasPrefix(host + " ") }.count
        var ready = candidates.filter { stage in !held.contains { $0.name == stage.name } }
          .sorted { (chain[$0.name] ?? 0, $1.name) > (chain[$1.name] ?? 0, $0.name) }
        if let deadline {
          let now = Date()
          let fits = ready.filter { now.addingTimeInterval((stageSeconds[$0.name] ?? 0) * scale()) <= deadline }
          deferred = ready.filter { stage in !fits.contains { $0.name == stage.name } }.map(\.name)
          ready = fits
          if running.isEmpty && held.isEmpty && ready.isEmpty && !deferred.isEmpty {
            // Nothing runs and nothing ready fits; the stages waiting for these cannot start either.
            progress.finish()
            say(
              "--stop-after: \(waiting.count) stage(s) left for a later run (the next, \(deferred[0]), would take about "
                + "\(formatDuration((stageSeconds[deferred[0]] ?? 0) * scale())), past the deadline); the run folder resumes them")
            return false
          }
        }
        for stage in ready.prefix(max(0, jobs - running.count - heldHere)) {
          let process = Process()
          process.executableURL = executable
          process.arguments = arguments + ["--stage", stage.name]
          // Messages go to the run's log; standard error (progress, a failure's message) to a file.
          process.standardOutput = FileHandle.nullDevice
          process.standardError = try errorFile(stage.name, runDirectory)
          try process.run()
          children.add(process)
          running.append((stage.name, process))
          startTimes[stage.name] = Date()
          waiting.removeAll { $0.name == stage.name }
          changed = true
        }
        if running.isEmpty && held.isEmpty && deferred.isEmpty, let stuck = waiting.first {
          failure = "stage \(stuck.name) waits for \(stuck.inputs.filter { !isFinished($0) }.joined(separator: ", ")), which no job computes"
        }
      } else {
        waiting.removeAll()
        held.removeAll()
      }
      pause = changed ? 0.2 : min(2, pause * 1.5)
      Thread.sleep(forTimeInterval: pause)
      for (name, process) in running where !process.isRunning {
        if process.terminationStatus != 0, let holder = RunStore.liveHolder(ofLock: lockFile(name)),
          holder != "\(host) \(process.processIdentifier)", let stage = stages.first(where: { $0.name == name })
        {
          // Another process claimed the stage between the check above and the child's claim.
          waiting.append(stage)
          say("stage \(name) is being computed by process \(holder); waiting for it")
          continue
        }
        done += 1
        assumedDone += stageSeconds[name] ?? 0
        measuredDone += startTimes[name].map { Date().timeIntervalSince($0) } ?? 0
        if process.terminationStatus != 0 && failure == nil {
          let file = errorURL(name, runDirectory)
          let last = ((try? String(contentsOf: file, encoding: .utf8)) ?? "").split(separator: "\n").last.map(String.init) ?? ""
          failure = "stage \(name) failed (exit \(process.terminationStatus)): \(last) (\(file.path))"
        }
      }
      running.removeAll { !$0.process.isRunning }
      children.removeFinished()
      let lines = running.map { "\($0.name): " + lastProgressLine(errorURL($0.name, runDirectory)) }
        + held.map { "\($0.name) (process \($0.holder)): " + lastProgressLine(errorURL($0.name, runDirectory), missing: "held") }
      progress.update(done, extra: lines.joined(separator: " | "), left: secondsLeft())
    }
    if let failure { throw VerifyError(failure) }
    progress.finish()
    return true
  }

  /// The latest progress line a child wrote to its standard error file (its step, loss, epoch and
  /// best validation), shortened, so the parent's line shows what each running stage is doing.
  /// `missing`: what to show when there is no such file yet.
  static func lastProgressLine(_ url: URL, missing: String = "starting") -> String {
    guard let handle = try? FileHandle(forReadingFrom: url) else { return missing }
    defer { try? handle.close() }
    let size = (try? handle.seekToEnd()) ?? 0
    try? handle.seek(toOffset: size > 600 ? size - 600 : 0)
    let tail = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    let line = tail.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
      .map { $0.replacingOccurrences(of: "\u{1B}[K", with: "").trimmingCharacters(in: .whitespaces) }
      .last { !$0.isEmpty } ?? "starting"
    // "[label] step 120 (cap 400)  loss 0.31  1.6 step/s  elapsed ..." -> "step 120 (cap 400) loss 0.31".
    let unlabelled = line.range(of: "] ").map { String(line[$0.upperBound...]) } ?? line
    let words = unlabelled.split(separator: " ", omittingEmptySubsequences: true)
    return words.prefix(while: { !$0.hasSuffix("/s") }).dropLast().joined(separator: " ").prefix(90).description
  }

  /// The running child processes, shared with the signal handlers: a parent that is interrupted
  /// (Ctrl-C, `kill`, a scheduler's time limit) stops its children instead of leaving them to run
  /// on unseen, holding their stages' locks. A stage loses at most what it trained since its last
  /// checkpoint; the same command resumes.
  final class Children: @unchecked Sendable {  // every access to `processes` holds `lock`
    private let lock = NSLock()
    private var processes: [Process] = []

    func add(_ process: Process) { lock.withLock { processes.append(process) } }

    func removeFinished() { lock.withLock { processes.removeAll { !$0.isRunning } } }

    /// On SIGINT or SIGTERM: terminate every running child, say so, exit 128 + the signal's number.
    /// Returns the function that restores the default handling.
    func terminateOnSignals() -> () -> Void {
      let sources = [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { [self] in
          let stopped = lock.withLock {
            processes.filter(\.isRunning).map { process in
              process.terminate()
              return process
            }
          }
          for process in stopped { process.waitUntilExit() }
          FileHandle.standardError.write(Data(
            "\nverify: interrupted; stopped \(stopped.count) running stage process(es); the same command resumes (finished stages are kept, training stages resume from their last checkpoint)\n".utf8))
          exit(128 + number)
        }
        source.resume()
        return source
      }
      return {
        for source in sources { source.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
      }
    }
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
