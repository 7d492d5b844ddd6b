import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The run folder: the configuration it was made with, and every finished stage, each written
/// atomically (temporary file, then rename) so an interrupted run resumes without losing or
/// trusting half-written work.
public struct RunStore: Sendable {
  public let directory: URL

  public init(directory: URL) { self.directory = directory }

  /// Creates the folder and records `configuration`; refuses a folder made with another one
  /// unless `fresh`, which deletes its finished stages and every output of the old run.
  public func open<C: Codable & Equatable>(configuration: C, fresh: Bool) throws {
    let fm = FileManager.default
    let file = directory.appendingPathComponent("config.json")
    if fresh && fm.fileExists(atPath: directory.path) {
      // Everything a run writes, so no output of the old run survives beside the new one.
      for name in [
        "config.json", "stages", "weights", "pictures", "predictions", "report.html", "results.md", "results.csv", "log.txt", "jobs",
        "results.json", "points",
      ] {
        let url = directory.appendingPathComponent(name)
        if fm.fileExists(atPath: url.path) { try fm.removeItem(at: url) }
      }
    }
    try fm.createDirectory(at: directory.appendingPathComponent("stages"), withIntermediateDirectories: true)
    try fm.createDirectory(at: directory.appendingPathComponent("weights"), withIntermediateDirectories: true)
    // Stage processes may open a new folder at the same moment: the first to link its complete
    // config.json into place wins, and every other one checks its configuration against that one.
    if !fm.fileExists(atPath: file.path) {
      try writeExclusively(try encoder().encode(configuration), to: file)
    }
    let data = try Data(contentsOf: file)
    guard let stored = try? JSONDecoder().decode(C.self, from: data), stored == configuration else {
      throw ExperimentError(
        "\(file.path): this run folder was made with another configuration; use --fresh to start over, or another --run folder")
    }
  }

  /// The identity this folder was made with (its config.json), nil when it has none or one this
  /// version cannot read.
  public func storedIdentity() -> RunIdentity? {
    guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent("config.json").path) else {
      return nil
    }
    return try? JSONDecoder().decode(RunIdentity.self, from: data)
  }

  // MARK: - Stages

  func stageURL(_ name: String) -> URL { directory.appendingPathComponent("stages/\(name).json") }

  /// The names of the finished stages (their result files in `stages/`; none when there is no such
  /// folder).
  func finishedStageNames() -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("stages").path)) ?? []
    return names.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.map { String($0.dropLast(".json".count)) }
  }

  /// A finished stage's result, or nil when it has not finished.
  public func load<T: Codable>(_ type: T.Type, stage name: String) throws -> T? {
    let url = stageURL(name)
    guard FileManager.default.fileExists(atPath: url.path) else { return nil }
    do {
      return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
    } catch {
      throw ExperimentError("\(url.path): damaged stage file (\(error.localizedDescription)); delete it to redo the stage")
    }
  }

  /// Writes a finished stage's result, and the build that computed it (`Build.fingerprint`).
  public func save<T: Codable>(_ value: T, stage name: String) throws {
    try recordBuild(stage: name)
    try writeAtomically(try encoder().encode(value), to: stageURL(name))
  }

  /// A downstream stage's training checkpoint (while it trains; removed when it has finished).
  func checkpointURL(_ name: String) -> URL { directory.appendingPathComponent("stages/\(name).checkpoint") }

  // MARK: - Weights

  public func weightsURL(_ name: String) -> URL { directory.appendingPathComponent("weights/\(name).p2rw") }

  func encoder() -> JSONEncoder {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys]
    return e
  }
}

/// Writes `data` to a temporary file beside `url`, then renames it over `url` (rename(2) replaces
/// the old file in one step, so a reader sees the old or the new file, never none or half of one).
public func writeAtomically(_ data: Data, to url: URL) throws {
  let temporary = temporaryURL(for: url)
  try data.write(to: temporary)
  guard rename(temporary.path, url.path) == 0 else {
    let reason = String(cString: strerror(errno))
    try? FileManager.default.removeItem(at: temporary)
    throw ExperimentError("\(url.path): could not be written (\(reason))")
  }
}

/// Writes `data` to `url` only if no file is there yet (link(2) of a complete temporary file, which
/// fails when the name exists); an existing file is left as it is.
func writeExclusively(_ data: Data, to url: URL) throws {
  let temporary = temporaryURL(for: url)
  try data.write(to: temporary)
  defer { try? FileManager.default.removeItem(at: temporary) }
  guard link(temporary.path, url.path) == 0 || errno == EEXIST else {
    throw ExperimentError("\(url.path): could not be written (\(String(cString: strerror(errno))))")
  }
}

/// A temporary file beside `url`, named per process and call, so processes sharing a run folder
/// (`--stage`), or threads of one, never write one temporary file.
private func temporaryURL(for url: URL) -> URL {
  url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid())-\(UUID().uuidString).partial")
}

/// An error of the experiment for the user, one line.
public struct ExperimentError: Error, CustomStringConvertible, LocalizedError {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
  public var errorDescription: String? { message }
}

/// What a run folder is tied to: the configuration, the data source and the initial backbone. A
/// resume under another identity is refused (`RunStore.open`).
public struct RunIdentity: Codable, Equatable, Sendable {
  public var config: ExperimentConfig
  public var data: String
  /// The `--init` backbone (file name and checksum of its tensors), nil for the seeded initialisation.
  public var initial: String? = nil

  public init(config: ExperimentConfig, data: String, initial: String? = nil) {
    self.config = config
    self.data = data
    self.initial = initial
  }
}

// MARK: - Claims on stages

extension RunStore {
  /// Runs `body` holding the stage's lock file (`stages/NAME.lock`, created exclusively, with the
  /// host and process id inside), so two processes sharing a run folder, on one machine or on a
  /// shared file system, never compute the same stage. A lock left by a process of this host that
  /// is no longer running (an interrupted run) is taken over; any other lock is an error naming it.
  public func withClaim<T>(_ stage: String, _ body: () throws -> T) throws -> T {
    let lock = RunStore.lockURL(forStageFile: stageURL(stage))
    let host = ProcessInfo.processInfo.hostName
    for attempt in 0..<2 {
      let fd = createExclusively(lock.path)
      if fd >= 0 {
        let owner = Array("\(host) \(getpid())".utf8)
        _ = owner.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        defer { try? FileManager.default.removeItem(at: lock) }
        return try body()
      }
      let holder = ((try? String(contentsOf: lock, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
      if attempt == 0, RunStore.liveHolder(ofLock: lock) == nil {
        try? FileManager.default.removeItem(at: lock)  // left by an interrupted process of this host
        continue
      }
      throw ExperimentError(
        "\(lock.path): stage \(stage) is being computed by \(holder.isEmpty ? "another process" : "process \(holder)"); wait for it, or delete the lock file if that process is gone")
    }
    throw ExperimentError("\(lock.path): could not claim stage \(stage)")
  }
}

extension RunStore {
  /// A stage's lock file, beside its result file: `stages/NAME.lock` for `stages/NAME.json`.
  public static func lockURL(forStageFile url: URL) -> URL { url.deletingPathExtension().appendingPathExtension("lock") }

  /// Who holds the stage lock file at `lock` ("host pid"), or nil when there is no such file or
  /// its holder was a process of this host that is no longer running (an interrupted run, whose
  /// lock the next claim takes over). A lock of another host counts as held: its process cannot be
  /// checked from here.
  public static func liveHolder(ofLock lock: URL) -> String? {
    guard let text = try? String(contentsOf: lock, encoding: .utf8) else { return nil }
    let holder = text.trimmingCharacters(in: .whitespacesAndNewlines)
    let parts = holder.split(separator: " ")
    if parts.count == 2, parts[0] == ProcessInfo.processInfo.hostName, let pid = Int32(parts[1]), kill(pid, 0) != 0, errno == ESRCH {
      return nil
    }
    return holder.isEmpty ? "another process" : holder
  }
}

/// open(2) with O_CREAT | O_EXCL: a new file descriptor, or -1 when the file exists.
private func createExclusively(_ path: String) -> Int32 {
  open(path, O_CREAT | O_EXCL | O_WRONLY, 0o644)
}
