import Foundation
import KernelCatalog
import Optimized
import Reference
import Testing
import TestSupport

// Golden summaries of whole steps of the tiny model at fixed seeds, committed under
// fixtures/golden/. Both backends are compared against them, so a change that moves the reference
// and the optimized kernels together (and so passes StepRegressionTests) still fails here.

/// One golden file: how to regenerate it, what it holds, and a summary per output.
struct GoldenFile: Codable {
  var header: String
  var regenerate: String
  var step: String
  var config: String
  var entries: [GoldenEntry]
}

struct GoldenEntry: Codable {
  var label: String
  var summary: ArraySummary
}

enum Golden {
  static let regenerateCommand = "PIX2REP_WRITE_GOLDEN=1 swift test --filter GoldenStepTests"
  static let configName = "tiny"

  static func url(_ kind: StepKind) -> URL {
    fixturesDirectory.appendingPathComponent("golden").appendingPathComponent("\(kind.rawValue)-\(configName).json")
  }

  /// The reference step's outputs as a golden file.
  static func make(_ kind: StepKind) -> GoldenFile {
    let outputs = kind.run(StepFixture.referenceNetwork(StepFixture.config(configName), seed: 21), configName: configName)
    return GoldenFile(
      header: "Summaries (shape, mean, min, max, sum, position-weighted checksum, samples) of the Reference "
        + "backend's \(kind.rawValue) step on ModelConfig.\(configName), network seed 21, batch seeds 11/12 "
        + "(Tests/RegressionTests/StepRegressionTests.swift). Regenerate only when the reference changes on purpose.",
      regenerate: regenerateCommand, step: kind.rawValue, config: configName,
      entries: outputs.all.map { GoldenEntry(label: $0.label, summary: ArraySummary(shape: [$0.values.count], values: $0.values)) })
  }

  /// The first difference between a summary and its golden one, or nil. `full` also compares the
  /// sum and the checksum (for the Double reference; the Float sums of many terms are checked
  /// through the optimized-vs-reference tests instead).
  static func difference(_ label: String, _ actual: ArraySummary, _ golden: ArraySummary, tolerance: Tolerance, full: Bool)
    -> String?
  {
    if actual.shape != golden.shape || actual.count != golden.count {
      return "\(label): shape \(actual.shape), golden \(golden.shape)"
    }
    var fields = [("mean", actual.mean, golden.mean), ("min", actual.min, golden.min), ("max", actual.max, golden.max)]
    if full { fields += [("sum", actual.sum, golden.sum), ("checksum", actual.weightedChecksum, golden.weightedChecksum)] }
    for (a, g) in zip(actual.samples, golden.samples) {
      if a.index != g.index { return "\(label): sample index \(a.index), golden \(g.index)" }
      fields.append(("sample \(a.index)", a.value, g.value))
    }
    for (name, a, g) in fields where !tolerance.accepts(a, g) {
      return "\(label) \(name): \(a), golden \(g), delta \(abs(a - g)), limit \(tolerance.limit(for: g)) [\(tolerance.name)]"
    }
    return nil
  }
}

@Suite struct GoldenStepTests {
  @Test("the tiny model's steps still produce the committed golden summaries, on both backends",
    arguments: StepKind.allCases)
  func matchesGolden(kind: StepKind) throws {
    if ProcessInfo.processInfo.environment["PIX2REP_WRITE_GOLDEN"] == "1" {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      try FileManager.default.createDirectory(
        at: Golden.url(kind).deletingLastPathComponent(), withIntermediateDirectories: true)
      try encoder.encode(Golden.make(kind)).write(to: Golden.url(kind))
    }
    let data = try #require(
      try? Data(contentsOf: Golden.url(kind)), "missing \(Golden.url(kind).path); run \(Golden.regenerateCommand)")
    let golden = try JSONDecoder().decode(GoldenFile.self, from: data)
    #expect(golden.regenerate == Golden.regenerateCommand)
    let reference = StepFixture.referenceNetwork(StepFixture.config(Golden.configName), seed: 21)
    let runs: [(String, [LabeledOutput], Tolerance, Bool)] = [
      ("reference", kind.run(reference, configName: Golden.configName).all, .doubleRounding, true),
      ("optimized", kind.run(reference.converted(to: OptimizedBackend(workers: 2)), configName: Golden.configName).all,
        .float32Network, false),
    ]
    for (backend, outputs, tolerance, full) in runs {
      #expect(outputs.map(\.label) == golden.entries.map(\.label), "\(backend): output labels differ from the golden file")
      for (output, entry) in zip(outputs, golden.entries) {
        let summary = ArraySummary(shape: [output.values.count], values: output.values)
        if let problem = Golden.difference("\(backend) \(kind) \(entry.label)", summary, entry.summary, tolerance: tolerance, full: full) {
          Issue.record(Comment(rawValue: problem))
        }
      }
    }
  }
}
