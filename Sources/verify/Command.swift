import Experiment
import Foundation
import Optimized
import Reference

/// A subcommand of `verify`.
protocol VerifyCommand {
  static var name: String { get }
  static var summary: String { get }
  /// Accepted options: name without dashes, and whether it takes a value.
  static var options: [OptionSpec] { get }
  /// Full help text.
  static var help: String { get }
  static func run(_ options: inout Options) throws
}

struct OptionSpec {
  let name: String
  let takesValue: Bool
  init(_ name: String, value: Bool) {
    self.name = name
    self.takesValue = value
  }
}

/// An error for the user: printed on one line, with a non-zero exit.
struct VerifyError: Error {
  let message: String
  let exitCode: Int32
  init(_ message: String, exitCode: Int32 = 1) {
    self.message = message
    self.exitCode = exitCode
  }
}

/// Parsed `--name value` and `--flag` options. Unknown or repeated options are errors.
struct Options {
  private var values: [String: String] = [:]
  private var flags: Set<String> = []
  private(set) var positional: [String] = []

  init(_ arguments: [String], spec: [OptionSpec]) throws {
    var i = 0
    while i < arguments.count {
      let arg = arguments[i]
      if arg.hasPrefix("--") {
        var key = String(arg.dropFirst(2))
        var inline: String?
        if let eq = key.firstIndex(of: "=") {
          inline = String(key[key.index(after: eq)...])
          key = String(key[..<eq])
        }
        if key == "help" {
          flags.insert("help")
        } else if let option = spec.first(where: { $0.name == key }) {
          if values[key] != nil || flags.contains(key) { throw VerifyError("option --\(key) given twice", exitCode: 64) }
          if option.takesValue {
            if let inline {
              values[key] = inline
            } else {
              guard i + 1 < arguments.count, !arguments[i + 1].hasPrefix("--") else {
                throw VerifyError("option --\(key) needs a value", exitCode: 64)
              }
              values[key] = arguments[i + 1]
              i += 1
            }
          } else {
            if inline != nil { throw VerifyError("option --\(key) takes no value", exitCode: 64) }
            flags.insert(key)
          }
        } else {
          throw VerifyError("unknown option --\(key) (see --help)", exitCode: 64)
        }
      } else {
        positional.append(arg)
      }
      i += 1
    }
  }

  func flag(_ name: String) -> Bool { flags.contains(name) }
  func string(_ name: String) -> String? { values[name] }

  func int(_ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
    guard let text = values[name] else { return value }
    guard let parsed = Int(text), range.contains(parsed) else {
      throw VerifyError("--\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(text)'", exitCode: 64)
    }
    return parsed
  }

  func double(_ name: String, default value: Double, range: ClosedRange<Double>) throws -> Double {
    guard let text = values[name] else { return value }
    guard let parsed = Double(text), parsed.isFinite, range.contains(parsed) else {
      throw VerifyError("--\(name) must be a number in \(range.lowerBound)...\(range.upperBound), got '\(text)'", exitCode: 64)
    }
    return parsed
  }

  /// `--stop-after MINUTES` as the time by which `Jobs.run` starts no stage it expects to end
  /// later, or nil without the option. It schedules child processes: with one job there are none.
  func stopAfter(jobs: Int) throws -> Date? {
    guard values["stop-after"] != nil else { return nil }
    let minutes = try double("stop-after", default: 0, range: 0...10_000_000)
    if jobs < 2 || values["stage"] != nil {
      throw VerifyError("--stop-after schedules the stages of --jobs 2 or more; it does not go with one job or --stage", exitCode: 64)
    }
    return Date().addingTimeInterval(minutes * 60)
  }

  func uint64(_ name: String, default value: UInt64) throws -> UInt64 {
    guard let text = values[name] else { return value }
    guard let parsed = UInt64(text) else {
      throw VerifyError("--\(name) must be a non-negative integer, got '\(text)'", exitCode: 64)
    }
    return parsed
  }

  /// `--workers N` (1 ... `maximumWorkerCount`), by default every core up to the cap.
  func workers() throws -> Int {
    try int("workers", default: defaultWorkerCount(), range: 1...maximumWorkerCount)
  }

  /// The experiment preset named by `--preset` (or `fallback`) for `seed`, or a one-line error.
  func experimentPreset(seed: UInt64, fallback: String = "cpu") throws -> (name: String, config: ExperimentConfig) {
    let name = string("preset") ?? fallback
    guard let config = ExperimentConfig.preset(name, seed: seed) else {
      throw VerifyError("unknown preset '\(name)' (choose one of \(ExperimentConfig.presetNames.joined(separator: ", ")))", exitCode: 64)
    }
    return (name, config)
  }

  /// The evaluation-mode convolutions of a run in `runDirectory`: `--inference-convolutions`
  /// (winograd2x2 or winograd4x4) when given; otherwise, unless `fresh`, the choice the folder was
  /// made with, so that a run folder resumes with its own bits (a folder made before the option
  /// existed ran F(2x2, 3x3)); otherwise the preset's.
  func inferenceConvolutions(preset: ExperimentConfig, runDirectory: URL, fresh: Bool) throws -> InferenceConvolutions {
    if let text = string("inference-convolutions") {
      guard let choice = InferenceConvolutions(rawValue: text) else {
        let names = InferenceConvolutions.allCases.map(\.rawValue).joined(separator: ", ")
        throw VerifyError("--inference-convolutions must be one of \(names), got '\(text)'", exitCode: 64)
      }
      return choice
    }
    if !fresh, let stored = RunStore(directory: runDirectory).storedIdentity() { return stored.config.inferenceConvolutions }
    return preset.inferenceConvolutions
  }

  /// The model preset named by `--preset` (default cpu), or a one-line error.
  func modelPreset() throws -> (name: String, config: ModelConfig) {
    let name = string("preset") ?? "cpu"
    guard let config = ModelConfig.preset(named: name) else {
      let names = ModelConfig.presets.map(\.name).joined(separator: ", ")
      throw VerifyError("unknown preset '\(name)' (choose one of \(names))", exitCode: 64)
    }
    return (name, config)
  }

  func requireNoPositional(_ command: String) throws {
    if let extra = positional.first { throw VerifyError("unexpected argument '\(extra)'", exitCode: 64) }
  }
}

extension Options {
  /// The folder of `--run DIR` (relative to the current folder), by default `runs/NAME`.
  func runDirectory(default name: String) -> URL {
    let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    return path("run", relativeTo: cwd) ?? cwd.appendingPathComponent("runs/\(name)")
  }

  /// A path option's value as a URL relative to `cwd` (nil when the option is not given).
  func path(_ name: String, relativeTo cwd: URL) -> URL? {
    string(name).map { URL(fileURLWithPath: $0, relativeTo: cwd).standardizedFileURL }
  }

  /// The data of `--data DIR` (an ACDC-layout folder), or by default the synthetic phantom,
  /// generated once into .cache/ in the current folder.
  func experimentData(config: ExperimentConfig) throws -> any ExperimentData {
    let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    if let root = path("data", relativeTo: cwd) {
      return try DatasetSplits.load(root: root, source: "ACDC at \(root.path)", config: config)
    }
    let root = try DatasetSplits.ensurePhantom(cache: cwd.appendingPathComponent(".cache"), config: config)
    return try DatasetSplits.load(root: root, source: DatasetSplits.phantomSource(config), config: config)
  }
}
