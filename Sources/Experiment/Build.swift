import Foundation
import Reference

/// Which build of the code computed a stage: the FNV-1a checksum of the running executable's bytes.
/// A run folder may be resumed by a later build whose kernels round differently (results are
/// bit-identical only within one build); every stage records the build that computed it, and the
/// report says when a run's stages come from more than one.
public enum Build {
  /// "verify FNV-1a 0123456789abcdef" for the running executable, or "unknown build" when it
  /// cannot be read. Computed once per process (an 8 MB binary takes a few milliseconds).
  public static let fingerprint: String = {
    #if os(Linux)
      let path = "/proc/self/exe"
    #else
      let path = Bundle.main.executablePath ?? CommandLine.arguments[0]
    #endif
    guard let bytes = FileManager.default.contents(atPath: path) else { return "unknown build" }
    let name = URL(fileURLWithPath: CommandLine.arguments[0]).lastPathComponent
    return "\(name) FNV-1a \(String(format: "%016llx", FNV1a.hash(bytes)))"
  }()
}

extension RunStore {
  func buildURL(_ stage: String) -> URL { directory.appendingPathComponent("stages/\(stage).build") }

  /// Records that the running build computed `stage` (beside its result).
  func recordBuild(stage name: String) throws {
    try writeAtomically(Data((Build.fingerprint + "\n").utf8), to: buildURL(name))
  }

  /// The build that computed a finished stage (its `.build` record), "unrecorded" for a stage
  /// from before builds were recorded.
  func build(of stage: String) -> String {
    (try? String(contentsOf: buildURL(stage), encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "unrecorded"
  }

  /// The builds that computed the finished stages, with how many stages each ("unrecorded" for
  /// stages from before builds were recorded), most stages first.
  public func builds() -> [(build: String, stages: Int)] {
    countBuilds(finishedStageNames().map(build(of:)))
  }

  /// One line for the report: which build computed the stages, and a warning when several did.
  public func buildsText() -> String {
    let builds = builds()
    switch builds.count {
    case 0: return "Computed by: no finished stage yet."
    case 1: return "Computed by: \(builds[0].build) (all \(builds[0].stages) stages)."
    default:
      return "Computed by \(builds.count) different builds: "
        + builds.map { "\($0.build) (\($0.stages) stages)" }.joined(separator: ", ")
        + ". Results are bit-identical only within one build: this run mixes code versions."
    }
  }
}

/// How many times each build occurs in `builds`, most first (ties by name).
func countBuilds(_ builds: [String]) -> [(build: String, stages: Int)] {
  Dictionary(grouping: builds, by: { $0 }).map { (build: $0.key, stages: $0.value.count) }
    .sorted { ($1.stages, $0.build) < ($0.stages, $1.build) }
}
