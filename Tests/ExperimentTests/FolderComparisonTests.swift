import Experiment
import Foundation
import Testing

/// `verify compare`: two small run folders written with the real stage types, paired by stage.
@Suite struct FolderComparisonTests {
  static let identity = RunIdentity(config: ExperimentConfig.smoke(seed: 1), data: "phantom")

  /// A finished downstream run whose every test volume scores `dice` in every class (so its test
  /// Dice is `dice`).
  static func run(
    _ method: Method, budget: Int = 1, draw: Int, dice: Double, steps: Int = 30, seconds: Double = 100, stop: StopReason? = .cap
  ) -> RunResult {
    let volumes = [VolumeScore(patient: 101, phase: "ED", dice: [dice, dice, dice])]
    return RunResult(
      method: method, budget: budget, draw: draw, patients: [draw], summary: DiceSummary(volumes), volumes: volumes,
      chosenLearningRate: nil, steps: steps, bestValidationLoss: 0.5, seconds: seconds, bestStep: steps / 2, stopReason: stop)
  }

  /// A run folder in a fresh temporary directory, made with `identity`, holding `stages`.
  static func folder(_ root: URL, _ name: String, identity: RunIdentity = identity, stages: [String: RunResult]) throws -> URL {
    let directory = root.appendingPathComponent(name)
    let store = RunStore(directory: directory)
    try store.open(configuration: identity, fresh: false)
    for (stage, run) in stages { try store.save(run, stage: stage) }
    return directory
  }

  static func temporaryRoot() -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("folder-comparison-\(UUID().uuidString)")
  }

  @Test("stages finished in both folders pair by name; the mean, standard error and t-interval match hand values")
  func pairsAndKnownAnswer() throws {
    let root = Self.temporaryRoot()
    defer { try? FileManager.default.removeItem(at: root) }
    let supervised = Self.run(.supervised, draw: 1, dice: 0.6, steps: 20, seconds: 50, stop: .patience)
    let a = try Self.folder(root, "a", stages: [
      "run-pix2rep-ft-1-1": Self.run(.pix2repFineTune, draw: 1, dice: 0.70),
      "run-pix2rep-ft-1-2": Self.run(.pix2repFineTune, draw: 2, dice: 0.80),
      "run-pix2rep-ft-1-3": Self.run(.pix2repFineTune, draw: 3, dice: 0.75),
      "run-supervised-1-1": supervised,
      "run-pix2rep-lp-1-1": Self.run(.pix2repLinear, draw: 1, dice: 0.5),
    ])
    let b = try Self.folder(root, "b", stages: [
      "run-pix2rep-ft-1-1": Self.run(.pix2repFineTune, draw: 1, dice: 0.72, steps: 60, seconds: 200, stop: .patience),
      "run-pix2rep-ft-1-2": Self.run(.pix2repFineTune, draw: 2, dice: 0.79, steps: 80, seconds: 250, stop: .patience),
      "run-pix2rep-ft-1-3": Self.run(.pix2repFineTune, draw: 3, dice: 0.78, steps: 90, seconds: 300, stop: .patience),
      "run-supervised-1-1": supervised,
      "run-pix2rep-ft-2-1": Self.run(.pix2repFineTune, budget: 2, draw: 1, dice: 0.8),
      "run-supervised-1-2": Self.run(.supervised, draw: 2, dice: 0.6),
    ])
    // Stages that are not downstream runs are not paired, nor are half-written or locked ones.
    for folder in [a, b] {
      try RunStore(directory: folder).save(0.001, stage: "baseline-rate-1")
      try Data("{".utf8).write(to: folder.appendingPathComponent("stages/.run-pix2rep-ft-5-1.json.1-x.partial"))
      try Data().write(to: folder.appendingPathComponent("stages/run-pix2rep-ft-5-2.lock"))
    }

    let comparison = try FolderComparison(a: a, b: b)
    #expect(comparison.pairs.map(\.stage) == ["run-supervised-1-1", "run-pix2rep-ft-1-1", "run-pix2rep-ft-1-2", "run-pix2rep-ft-1-3"])
    #expect(comparison.onlyInA == ["run-pix2rep-lp-1-1"])
    #expect(comparison.onlyInB == ["run-pix2rep-ft-2-1", "run-supervised-1-2"])
    #expect(comparison.configDifferences.isEmpty)
    try #require(comparison.groups.count == 2)

    // Supervised: one pair, the same run in both folders: a mean of 0 and no interval.
    let one = comparison.groups[0]
    #expect(one.method == .supervised && one.budget == 1 && one.comparison.count == 1 && one.sameRuns == 1)
    #expect(one.comparison.mean == 0 && one.comparison.standardError == nil && one.comparison.lower == nil)

    // Pix2Rep FT: differences +2, -1, +3 Dice points; mean 4/3; sd √(13/3); SE √13 / 3;
    // t(0.975, 2) = 4.302653, so the interval is 4/3 ± 4.302653 · √13 / 3.
    let g = comparison.groups[1]
    #expect(g.method == .pix2repFineTune && g.budget == 1 && g.sameRuns == 0)
    let c = g.comparison
    try #require(c.differences.count == 3)
    for (difference, expected) in zip(c.differences, [2.0, -1, 3]) { #expect(abs(difference - expected) < 1e-9, "\(difference)") }
    let mean = try #require(c.mean), se = try #require(c.standardError), lower = try #require(c.lower), upper = try #require(c.upper)
    #expect(abs(mean - 4.0 / 3) < 1e-9, "mean \(mean)")
    #expect(abs(se - 13.0.squareRoot() / 3) < 1e-9, "standard error \(se)")
    #expect(abs(lower - (4.0 / 3 - 4.302653 * 13.0.squareRoot() / 3)) < 1e-5, "lower \(lower)")
    #expect(abs(upper - (4.0 / 3 + 4.302653 * 13.0.squareRoot() / 3)) < 1e-5, "upper \(upper)")
    #expect(c.degreesOfFreedom == 2)
    #expect(abs(g.meanDiceA - 0.75) < 1e-12 && abs(g.meanDiceB - 0.763333333333) < 1e-9)
    #expect(g.secondsA == 300 && g.secondsB == 750 && g.secondsRatio == 2.5)
    #expect(g.stopsA.cap == 3 && g.stopsA.patience == 0 && g.stopsB.patience == 3 && g.stopsB.cap == 0 && g.stopsB.unrecorded == 0)
    #expect(g.stopsA.text == "3 cap" && one.stopsB.text == "1 patience")
    let pair = comparison.pairs[1]
    #expect(pair.a.steps == 30 && pair.a.bestStep == 15 && pair.a.stopReason == .cap && pair.b.steps == 60 && pair.b.seconds == 200)

    // One build computed every stage (the test's own).
    #expect(comparison.pairsFromDifferentBuilds == 0 && comparison.buildsA.count == 1 && comparison.buildsA == comparison.buildsB)
    let text = comparison.text(verbose: true)
    #expect(text.contains("Configurations (config.json): identical."))
    #expect(text.contains("Builds: every paired stage of both folders was computed by"))
    #expect(text.contains("+1.33") && text.contains("-3.84 to +6.50") && text.contains("2.50"))
    #expect(text.contains("Finished in A only: 1 downstream run stage: run-pix2rep-lp-1-1"))
    #expect(text.contains("Finished in B only: 2 downstream run stages: run-pix2rep-ft-2-1, run-supervised-1-2"))
    #expect(comparison.text(verbose: false).contains("Finished in B only: 2 downstream run stages (--verbose names them)."))

    // The JSON holds the same comparison.
    let decoded = try JSONDecoder().decode(FolderComparison.self, from: comparison.json())
    #expect(decoded.groups == comparison.groups && decoded.pairs == comparison.pairs && decoded.onlyInB == comparison.onlyInB)
  }

  @Test("the config.json fields that differ are listed by key path with both values; differing builds are said")
  func configurationAndBuildDifferences() throws {
    let root = Self.temporaryRoot()
    defer { try? FileManager.default.removeItem(at: root) }
    var changed = Self.identity
    changed.config.maxEpochs = 1000
    changed.config.model.features += 1
    changed.initial = "backbone.safetensors"
    let run = Self.run(.pix2repFineTune, draw: 1, dice: 0.7)
    var baseline = Self.run(.supervised, draw: 2, dice: 0.6)
    baseline.chosenLearningRate = 0.00047
    let a = try Self.folder(root, "a", stages: ["run-pix2rep-ft-1-1": run, "run-pix2rep-ft-1-2": run, "run-supervised-1-2": baseline])
    baseline.chosenLearningRate = 5e-5
    let b = try Self.folder(
      root, "b", identity: changed, stages: ["run-pix2rep-ft-1-1": run, "run-pix2rep-ft-1-2": run, "run-supervised-1-2": baseline])
    try Data("verify FNV-1a 0000000000000001\n".utf8).write(to: b.appendingPathComponent("stages/run-pix2rep-ft-1-2.build"))

    let comparison = try FolderComparison(a: a, b: b)
    let features = Self.identity.config.model.features
    #expect(comparison.configDifferences == [
      ConfigDifference(key: "config.maxEpochs", a: "\(Self.identity.config.maxEpochs)", b: "1000"),
      ConfigDifference(key: "config.model.features", a: "\(features)", b: "\(features + 1)"),
      ConfigDifference(key: "initial", a: nil, b: "\"backbone.safetensors\""),
    ])
    #expect(comparison.pairsFromDifferentBuilds == 1 && comparison.buildsA.count == 1 && comparison.buildsB.count == 2)
    // The baseline's rate searches chose differently: said, and shown per pair.
    try #require(comparison.groups.count == 2)
    #expect(comparison.groups[0].learningRatesA == [0.00047] && comparison.groups[0].learningRatesB == [5e-5])
    #expect(comparison.groups[1].rateNote.isEmpty)
    let text = comparison.text(verbose: false)
    #expect(text.contains("Supervised U-Net at budget 1: the runs were trained at different chosen learning rates (A 0.00047, B 5e-05)"))
    #expect(text.contains("lr A") && text.contains("lr B"))
    #expect(text.contains("differ in 3 fields") && text.contains("config.maxEpochs: A \(Self.identity.config.maxEpochs), B 1000"))
    #expect(text.contains("initial: A absent, B \"backbone.safetensors\""))
    #expect(text.contains("Builds differ") && text.contains("1 of 3 pairs by two different builds"))
  }

  @Test("no stage finished in both folders is said plainly, not an error")
  func noPairs() throws {
    let root = Self.temporaryRoot()
    defer { try? FileManager.default.removeItem(at: root) }
    let a = try Self.folder(root, "a", stages: ["run-pix2rep-ft-1-1": Self.run(.pix2repFineTune, draw: 1, dice: 0.7)])
    let b = try Self.folder(root, "b", stages: [:])
    let comparison = try FolderComparison(a: a, b: b)
    #expect(comparison.pairs.isEmpty && comparison.groups.isEmpty && comparison.onlyInA == ["run-pix2rep-ft-1-1"])
    #expect(comparison.text(verbose: false).contains("No downstream run stage has finished in both folders: nothing to pair."))
  }

  @Test("a missing folder, a folder without config.json, an undecodable stage file and a stage recording another draw are one-line errors naming the file")
  func errors() throws {
    let root = Self.temporaryRoot()
    defer { try? FileManager.default.removeItem(at: root) }
    let a = try Self.folder(root, "a", stages: ["run-pix2rep-ft-1-1": Self.run(.pix2repFineTune, draw: 1, dice: 0.7)])
    func message(_ a: URL, _ b: URL) -> String {
      let error = #expect(throws: ExperimentError.self) { try FolderComparison(a: a, b: b) }
      return error?.message ?? ""
    }
    let missing = root.appendingPathComponent("missing")
    #expect(message(a, missing) == "\(missing.path): no such folder")

    let bare = root.appendingPathComponent("bare")
    try FileManager.default.createDirectory(at: bare.appendingPathComponent("stages"), withIntermediateDirectories: true)
    #expect(message(bare, a) == "\(bare.path): not a run folder (no config.json)")

    let damaged = try Self.folder(root, "damaged", stages: [:])
    let file = damaged.appendingPathComponent("stages/run-pix2rep-ft-1-1.json")
    try Data("{\"method\": \"Pix2Rep FT\"".utf8).write(to: file)
    let text = message(a, damaged)
    #expect(text.hasPrefix("\(file.path): damaged stage file") && !text.contains("\n"), "\(text)")

    // The same stage name recording another draw is not a pair.
    let other = try Self.folder(root, "other", stages: ["run-pix2rep-ft-1-1": Self.run(.pix2repFineTune, draw: 2, dice: 0.7)])
    #expect(message(a, other).hasPrefix("\(other.appendingPathComponent("stages/run-pix2rep-ft-1-1.json").path): records Pix2Rep FT at budget 1 draw 2"))
  }

  @Test(arguments: [
    ("run-pix2rep-ft-1-1", true), ("run-pix2rep-ft-mt-10-1", true), ("incontext-infoNCE-b1-d2", true),
    ("incontext-support-1-1", false), ("propagation-infoNCE", false), ("baseline-1-lr-5e-05", false), ("baseline-rate-1", false),
  ])
  func downstreamRunStages(name: String, expected: Bool) {
    #expect(FolderComparison.isDownstreamRunStage(name) == expected)
  }
}
