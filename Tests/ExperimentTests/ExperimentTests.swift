import Experiment
import Foundation
import Reference
import Testing

/// The protocol's bookkeeping: Dice, the claims' verdicts, the run folder and weight files.
@Suite struct DiceTests {
  @Test func diceCountsOverlapPerClass() {
    // Class 1: predicted {0, 1}, truth {1, 2} -> 2·1 / 4. Class 2: identical -> 1. Class 3: absent
    // from both -> 1 by definition.
    let prediction: [UInt8] = [1, 1, 0, 2, 2, 0]
    let truth: [UInt8] = [0, 1, 1, 2, 2, 0]
    #expect(volumeDice(prediction: prediction, truth: truth) == [0.5, 1, 1])
  }

  @Test func aClassPresentOnOneSideOnlyScoresZero() {
    #expect(volumeDice(prediction: [3, 0], truth: [0, 0], classes: [3]) == [0])
    #expect(volumeDice(prediction: [0, 0], truth: [0, 3], classes: [3]) == [0])
  }

  @Test func summaryAveragesVolumesThenClasses() {
    let s = DiceSummary([
      VolumeScore(patient: 1, phase: "ED", dice: [1, 0.5, 0]),
      VolumeScore(patient: 1, phase: "ES", dice: [0, 0.5, 1]),
    ])
    #expect(s.perClass == [0.5, 0.5, 0.5])
    #expect(s.mean == 0.5)
  }
}

@Suite struct ClaimTests {
  /// A run whose 4 test volumes (patients 1-4, ED) average to `dice`.
  static func run(_ method: Method, _ budget: Int, _ draw: Int, _ dice: Double) -> RunResult {
    let volumes = zip(1...4, [-0.02, 0.02, -0.01, 0.01]).map { p, o in VolumeScore(patient: p, phase: "ED", dice: [dice + o, dice + o, dice + o]) }
    return RunResult(
      method: method, budget: budget, draw: draw, patients: [], summary: DiceSummary(volumes),
      volumes: volumes, chosenLearningRate: nil, steps: 0, bestValidationLoss: 0, seconds: 0)
  }

  static let supervisedOneShot = [0.40, 0.42, 0.38, 0.41, 0.39]

  /// Five draws at budget 1: the supervised U-Net and `method` = supervised + `gain[draw]`.
  static func oneShotTable(_ method: Method, gain: [Double], supervised: [Double] = supervisedOneShot) -> ResultTable {
    var runs: [RunResult] = []
    for (i, (s, g)) in zip(supervised, gain).enumerated() {
      runs += [run(.supervised, 1, i + 1, s), run(method, 1, i + 1, s + g)]
    }
    return ResultTable(runs: runs, budgets: [1])
  }

  @Test func aLargeOneShotGainIsReproducedUnderBothReadings() {
    let claims = Claims.evaluate(Self.oneShotTable(.pix2repLinear, gain: [0.20, 0.21, 0.19, 0.22, 0.20]))
    #expect(claims.count == 9)
    let claim = claims[0]
    // About +20 points and +50%: both at least half the paper's 30, intervals above 0.
    #expect(claim.verdict == "reproduced if relative %, reproduced if Dice points")
    #expect(claim.reproduced)
    #expect(claim.ours.contains("5 paired draws") && claim.ours.contains("95% t-interval"), "\(claim.ours)")
    #expect(claim.comparisons.count == 2)
    #expect(claim.comparisons[0].volumeIntervals?.count == 5)
    #expect(claims[1].verdict == "not measured")  // no fine-tuning runs
  }

  @Test func theTwoReadingsCanDisagree() {
    // Supervised about 0.2, +5 points: +25% relative (reproduced) but 5 < 15 points (weaker).
    let table = Self.oneShotTable(.pix2repFineTune, gain: [0.05, 0.05, 0.05, 0.05, 0.05], supervised: [0.20, 0.21, 0.19, 0.20, 0.20])
    let claim = Claims.evaluate(table)[1]
    #expect(claim.verdict == "reproduced if relative %, weaker if Dice points")
    #expect(claim.reproduced)
  }

  @Test func zeroMeanNoiseIsInconclusive() {
    let claim = Claims.evaluate(Self.oneShotTable(.pix2repLinear, gain: [0.05, -0.05, 0.03, -0.03, 0]))[0]
    #expect(claim.verdict == "inconclusive if relative %, inconclusive if Dice points")
    #expect(!claim.reproduced)
  }

  @Test func aOneShotLossIsContradicted() {
    let claim = Claims.evaluate(Self.oneShotTable(.pix2repLinear, gain: [-0.10, -0.12, -0.09, -0.11, -0.10]))[0]
    #expect(claim.verdict == "contradicted if relative %, contradicted if Dice points")
    #expect(!claim.reproduced)
  }

  @Test func onlyDrawsWithBothMethodsArePairedAndOneDrawIsInconclusive() {
    var runs = (1...5).map { Self.run(.supervised, 1, $0, 0.4) }
    runs += (1...3).map { Self.run(.pix2repLinear, 1, $0, 0.6) }
    #expect(Claims.evaluate(ResultTable(runs: runs, budgets: [1]))[0].comparisons[0].count == 3)
    let one = Claims.evaluate(ResultTable(runs: [Self.run(.supervised, 1, 1, 0.4), Self.run(.pix2repLinear, 1, 1, 0.9)], budgets: [1]))[0]
    #expect(one.verdict == "inconclusive if relative %, inconclusive if Dice points")
    #expect(one.ours.contains("no interval"), "\(one.ours)")
  }

  /// The supervised U-Net at every budget (5, 5, 3, 1, 1, 1 draws) and Pix2Rep FT at budget 1.
  static func reductionTable(pix2rep: [Double]) -> ResultTable {
    let baseline: [(Int, [Double])] = [
      (1, [0.40, 0.44, 0.42, 0.41, 0.43]), (2, [0.50, 0.53, 0.51, 0.52, 0.54]), (5, [0.62, 0.64, 0.63]),
      (10, [0.70]), (20, [0.75]), (100, [0.80]),
    ]
    var runs = baseline.flatMap { b, values in values.enumerated().map { run(.supervised, b, $0 + 1, $1) } }
    runs += pix2rep.enumerated().map { run(.pix2repFineTune, 1, $0 + 1, $1) }
    return ResultTable(runs: runs, budgets: [1, 2, 5, 10, 20, 100])
  }

  @Test func theReductionFactorComesWithABootstrapInterval() {
    // Target 0.62 between 0.52 at 2 and 0.63 at 5: k about 4.6 in log budget.
    let claim = Claims.evaluate(Self.reductionTable(pix2rep: [0.61, 0.63, 0.62, 0.64, 0.60]))[2]
    #expect(claim.verdict == "reproduced", "\(claim.ours)")
    #expect(claim.ours.contains("k = 4.6") && claim.ours.contains("95% bootstrap interval"), "\(claim.ours)")
    let weaker = Claims.evaluate(Self.reductionTable(pix2rep: [0.50, 0.51, 0.49, 0.50, 0.52]))[2]
    #expect(weaker.verdict == "weaker", "\(weaker.ours)")
    let worse = Claims.evaluate(Self.reductionTable(pix2rep: [0.30, 0.31, 0.29, 0.32, 0.30]))[2]
    #expect(worse.verdict == "contradicted", "\(worse.ours)")
    let above = Claims.evaluate(Self.reductionTable(pix2rep: [0.90, 0.91, 0.89, 0.90, 0.92]))[2]
    #expect(above.ours.contains("above 100"), "\(above.ours)")
    #expect(above.verdict == "reproduced")
  }

  @Test func barlowTwinsIsComparedPerDrawUnderBothProtocols() {
    var runs: [RunResult] = []
    for (b, draws) in [(1, 5), (2, 5), (5, 3)] {
      for d in 1...draws {
        let base = 0.3 + 0.05 * Double(d) + 0.02 * Double(b)
        runs += [Self.run(.pix2repFineTune, b, d, base), Self.run(.barlowFineTune, b, d, base + 0.03 + 0.002 * Double(d))]
        runs += [Self.run(.pix2repLinear, b, d, base), Self.run(.barlowLinear, b, d, base + (d % 2 == 0 ? 0.02 : -0.02))]
      }
    }
    let claims = Claims.evaluate(ResultTable(runs: runs, budgets: [1, 2, 5]))
    #expect(claims[3].claim.contains("fine-tuning") && claims[3].verdict == "reproduced", "\(claims[3].ours)")
    #expect(claims[3].comparisons[0].count == 13)
    #expect(claims[4].claim.contains("linear probing") && claims[4].verdict == "inconclusive", "\(claims[4].ours)")
    #expect(claims[3].paper.contains("no number given"))
  }

  @Test func sanityFlagsAFallingRowOnly() {
    let runs = [
      Self.run(.supervised, 1, 1, 0.5), Self.run(.supervised, 10, 1, 0.7), Self.run(.supervised, 100, 1, 0.85),
      Self.run(.pix2repLinear, 1, 1, 0.6), Self.run(.pix2repLinear, 10, 1, 0.5), Self.run(.pix2repLinear, 100, 1, 0.49),
    ]
    let lines = Claims.sanity(ResultTable(runs: runs, budgets: [1, 10, 100]))
    #expect(lines[0].contains("100 patients") && lines[0].contains("0.850"), "\(lines)")
    let flagged = lines.filter { $0.contains("undertrained") }
    // Pix2Rep LP falls by 0.1 from 1 to 10 (flagged) and by 0.01 from 10 to 100 (within 0.02).
    #expect(flagged.count == 1, "\(lines)")
    #expect(flagged.first?.hasPrefix(Method.pix2repLinear.rawValue) == true)
  }

  @Test func missingRunsArePrintedAsMissingNotGuessed() {
    let claims = Claims.evaluate(ResultTable(runs: [], budgets: [1]))
    #expect(claims.count == 9)
    #expect(claims.allSatisfy { $0.verdict == "not measured" && !$0.reproduced })
    #expect(claims.allSatisfy { $0.ours.hasPrefix("missing") })
    #expect(Claims.sanity(ResultTable(runs: [], budgets: [1]))[0].contains("missing"))
  }

  @Test func claimsWithoutComparisonsStillDecode() throws {
    let old = #"{"claim": "c", "paper": "p", "ours": "o", "verdict": "reproduced"}"#
    let claim = try JSONDecoder().decode(ClaimResult.self, from: Data(old.utf8))
    #expect(claim.comparisons.isEmpty && claim.reproduced)
    let table = Self.oneShotTable(.pix2repLinear, gain: [0.20, 0.21, 0.19, 0.22, 0.20])
    let data = try JSONEncoder().encode(Claims.evaluate(table))
    #expect(try JSONDecoder().decode([ClaimResult].self, from: data)[0].comparisons.count == 2)
  }
}

@Suite struct RunFolderTests {
  static func temporaryFolder() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("pix2rep-test-\(UUID().uuidString)")
    return url
  }

  @Test func aChangedConfigurationIsRefusedUnlessFresh() throws {
    let folder = Self.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let store = RunStore(directory: folder)
    try store.open(configuration: ExperimentConfig.smoke(seed: 1), fresh: false)
    try store.save(0.5, stage: "x")
    try store.open(configuration: ExperimentConfig.smoke(seed: 1), fresh: false)
    #expect(try store.load(Double.self, stage: "x") == 0.5)
    #expect(throws: ExperimentError.self) { try store.open(configuration: ExperimentConfig.smoke(seed: 2), fresh: false) }
    let stale = folder.appendingPathComponent("results.md")
    try Data("old".utf8).write(to: stale)
    try store.open(configuration: ExperimentConfig.smoke(seed: 2), fresh: true)
    #expect(try store.load(Double.self, stage: "x") == nil)
    #expect(!FileManager.default.fileExists(atPath: stale.path), "--fresh left the old run's results.md")
  }

  @Test("stage processes opening a new run folder at the same moment all succeed, and one config.json stands")
  func concurrentOpensOfANewFolder() throws {
    for _ in 0..<20 {
      let folder = Self.temporaryFolder()
      defer { try? FileManager.default.removeItem(at: folder) }
      let failures = Counter()
      DispatchQueue.concurrentPerform(iterations: 6) { _ in
        do { try RunStore(directory: folder).open(configuration: ExperimentConfig.smoke(seed: 1), fresh: false) } catch {
          failures.add("\(error)")
        }
      }
      #expect(failures.values.isEmpty, "\(failures.values.first ?? "")")
      #expect(throws: ExperimentError.self) {
        try RunStore(directory: folder).open(configuration: ExperimentConfig.smoke(seed: 2), fresh: false)
      }
      let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".partial") }
      #expect(leftovers.isEmpty, "\(leftovers)")
    }
  }

  /// Errors collected from several threads.
  final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ value: String) { lock.lock(); list.append(value); lock.unlock() }
    var values: [String] { lock.lock(); defer { lock.unlock() }; return list }
  }

  @Test("every saved stage records the build that computed it; stages of several builds are flagged")
  func stagesRecordTheirBuild() throws {
    let folder = Self.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let store = RunStore(directory: folder)
    try store.open(configuration: ExperimentConfig.smoke(seed: 1), fresh: false)
    #expect(store.buildsText() == "Computed by: no finished stage yet.")
    try store.save(0.5, stage: "a")
    try store.save(0.25, stage: "b")
    #expect(Build.fingerprint.contains("FNV-1a "), "\(Build.fingerprint)")
    #expect(store.builds().map(\.build) == [Build.fingerprint] && store.builds()[0].stages == 2)
    #expect(store.buildsText() == "Computed by: \(Build.fingerprint) (all 2 stages).")
    // A stage from another build (an earlier binary resumed by this one), and one from before builds were recorded.
    try Data("verify FNV-1a 0000000000000001\n".utf8).write(to: folder.appendingPathComponent("stages/b.build"))
    try JSONEncoder().encode(0.125).write(to: folder.appendingPathComponent("stages/c.json"))
    #expect(Set(store.builds().map(\.build)) == [Build.fingerprint, "verify FNV-1a 0000000000000001", "unrecorded"])
    #expect(store.buildsText().hasPrefix("Computed by 3 different builds: "))
    #expect(store.buildsText().contains("this run mixes code versions"))
  }

  @Test func weightsRoundTripAndDamageIsReported() throws {
    let folder = Self.temporaryFolder()
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let config = ModelConfig.tiny
    let count = ParameterLayout(config: config).count
    let values = (0..<count).map { Float($0) * 0.25 - 3 }
    let url = folder.appendingPathComponent("w.p2rw")
    try WeightsFile.write(values: values, config: config, to: url)
    #expect(try WeightsFile.read(from: url, expecting: config) == values)

    // The header's configuration has its keys sorted, so the same weights give the same bytes in
    // every process (a dictionary's order changes from process to process).
    var bytes = [UInt8](try Data(contentsOf: url))
    let length = Int(bytes[24]) | Int(bytes[25]) << 8 | Int(bytes[26]) << 16 | Int(bytes[27]) << 24
    let header = String(decoding: bytes[28..<(28 + length)], as: UTF8.self)
    let object = try #require(try JSONSerialization.jsonObject(with: Data(header.utf8)) as? [String: Any])
    let positions = object.keys.sorted().map { header.range(of: "\"\($0)\":")!.lowerBound }
    #expect(positions == positions.sorted(), "keys not in sorted order: \(header)")
    bytes[bytes.count - 3] ^= 0x10
    try Data(bytes).write(to: url)
    #expect(throws: ExperimentError.self) { try WeightsFile.read(from: url, expecting: config) }
    try Data(bytes.prefix(bytes.count - 5)).write(to: url)
    #expect(throws: ExperimentError.self) { try WeightsFile.read(from: url, expecting: config) }
    try WeightsFile.write(values: values, config: config, to: url)
    #expect(throws: ExperimentError.self) { try WeightsFile.read(from: url, expecting: .smoke) }
  }
}
