import Foundation

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
        "config.json", "stages", "weights", "pictures", "predictions", "report.html", "results.md", "results.csv", "log.txt",
        "results.json",
      ] {
        let url = directory.appendingPathComponent(name)
        if fm.fileExists(atPath: url.path) { try fm.removeItem(at: url) }
      }
    }
    try fm.createDirectory(at: directory.appendingPathComponent("stages"), withIntermediateDirectories: true)
    try fm.createDirectory(at: directory.appendingPathComponent("weights"), withIntermediateDirectories: true)
    if fm.fileExists(atPath: file.path) {
      let data = try Data(contentsOf: file)
      guard let stored = try? JSONDecoder().decode(C.self, from: data), stored == configuration else {
        throw ExperimentError(
          "\(file.path): this run folder was made with another configuration; use --fresh to start over, or another --run folder")
      }
    } else {
      try writeAtomically(try encoder().encode(configuration), to: file)
    }
  }

  // MARK: - Stages

  func stageURL(_ name: String) -> URL { directory.appendingPathComponent("stages/\(name).json") }

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

  public func save<T: Codable>(_ value: T, stage name: String) throws {
    try writeAtomically(try encoder().encode(value), to: stageURL(name))
  }

  // MARK: - Weights

  public func weightsURL(_ name: String) -> URL { directory.appendingPathComponent("weights/\(name).p2rw") }

  func encoder() -> JSONEncoder {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys]
    return e
  }
}

/// Writes `data` to a temporary file beside `url`, then renames it over `url`.
public func writeAtomically(_ data: Data, to url: URL) throws {
  let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).partial")
  try data.write(to: temporary)
  if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
  try FileManager.default.moveItem(at: temporary, to: url)
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
