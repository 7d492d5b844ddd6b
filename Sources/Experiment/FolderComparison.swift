import Foundation

// `verify compare A B`: two run folders of the same plan with one setting changed (say
// `--max-epochs 1000` against the preset's 200), paired stage by stage. A downstream run stage
// (`run-METHOD-B-D`, `incontext-BACKBONE-bB-dD`) names its method, budget and draw, hence its
// labelled patients and its seed, so the same stage in both folders is a paired draw. Each stage's
// test Dice is read as the results table reads it (`RunStore.load` of a `RunResult`, its
// `summary.mean`), and the differences B − A per method and budget go through `PairedComparison`.

// MARK: - What is compared

/// One downstream run's figures as its stage file records them.
public struct RunFigures: Codable, Hashable, Sendable {
  /// Test Dice: the mean of RV, MYO and LV over the test volumes (the table's figure).
  public var dice: Double
  public var steps: Int
  /// The step of the best validation (nil in stage files from before it was stored).
  public var bestStep: Int?
  /// Wall-clock seconds of the run.
  public var seconds: Double
  /// Patience or the epoch cap (nil in stage files from before it was stored, and for in-context
  /// runs, which train nothing).
  public var stopReason: StopReason?
  /// The learning rate the baseline's rate search chose (nil for the other methods).
  public var learningRate: Double?
  /// The build that computed the stage (`stages/NAME.build`), "unrecorded" without one.
  public var build: String

  init(_ run: RunResult, build: String) {
    self.dice = run.summary.mean
    self.learningRate = run.chosenLearningRate
    self.steps = run.steps
    self.bestStep = run.bestStep
    self.seconds = run.seconds
    self.stopReason = run.stopReason
    self.build = build
  }
}

/// The same downstream run stage, finished in both folders.
public struct StagePair: Codable, Hashable, Sendable {
  public var stage: String
  public var method: Method
  public var budget: Int
  public var draw: Int
  public var a: RunFigures
  public var b: RunFigures

  /// B − A in Dice points (100 × the Dice difference).
  public var difference: Double
  /// Whether both folders hold one and the same run (same Dice, steps and seconds), as when
  /// `verify reproduce --reuse` copied it from one folder into the other.
  public var sameRun: Bool

  init(stage: String, method: Method, budget: Int, draw: Int, a: RunFigures, b: RunFigures) {
    self.stage = stage
    self.method = method
    self.budget = budget
    self.draw = draw
    self.a = a
    self.b = b
    difference = 100 * b.dice - 100 * a.dice
    sameRun = a.dice == b.dice && a.steps == b.steps && a.seconds == b.seconds
  }
}

/// How the runs of a group stopped.
public struct StopCounts: Codable, Hashable, Sendable {
  public var patience = 0
  public var cap = 0
  /// Runs whose stage file records no stop reason.
  public var unrecorded = 0

  init(_ runs: [RunFigures]) {
    for run in runs {
      switch run.stopReason {
      case .patience: patience += 1
      case .cap: cap += 1
      case nil: unrecorded += 1
      }
    }
  }

  /// "3 patience, 2 cap" (parts that are 0 left out; "–" for none).
  public var text: String {
    let parts = [(patience, "patience"), (cap, "cap"), (unrecorded, "unrecorded")].filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }
    return parts.isEmpty ? "–" : parts.joined(separator: ", ")
  }
}

/// The pairs of one method and budget: B − A in Dice points with its mean, standard error and 95%
/// t-interval, and the time each folder's runs took.
public struct ComparisonGroup: Codable, Hashable, Sendable {
  public var method: Method
  public var budget: Int
  /// The differences B − A in Dice points, draws ascending.
  public var comparison: PairedComparison
  /// Mean test Dice of the paired runs in each folder.
  public var meanDiceA: Double
  public var meanDiceB: Double
  /// Total seconds of the paired runs in each folder, and B's over A's (nil when A's is 0).
  public var secondsA: Double
  public var secondsB: Double
  public var secondsRatio: Double?
  public var stopsA: StopCounts
  public var stopsB: StopCounts
  /// Pairs that are one run in both folders (`StagePair.sameRun`).
  public var sameRuns: Int
  /// The learning rates the baseline's rate search chose in each folder (empty for the other
  /// methods), ascending.
  public var learningRatesA: [Double]
  public var learningRatesB: [Double]

  init(method: Method, budget: Int, pairs: [StagePair]) {
    self.method = method
    self.budget = budget
    comparison = PairedComparison.paired(
      pairs.map { 100 * $0.b.dice }, pairs.map { 100 * $0.a.dice }, label: "\(method.rawValue) at budget \(budget), B − A")
    meanDiceA = meanAndSD(pairs.map(\.a.dice)).mean
    meanDiceB = meanAndSD(pairs.map(\.b.dice)).mean
    secondsA = pairs.map(\.a.seconds).reduce(0, +)
    secondsB = pairs.map(\.b.seconds).reduce(0, +)
    secondsRatio = secondsA > 0 ? secondsB / secondsA : nil
    stopsA = StopCounts(pairs.map(\.a))
    stopsB = StopCounts(pairs.map(\.b))
    sameRuns = pairs.filter(\.sameRun).count
    learningRatesA = Set(pairs.compactMap(\.a.learningRate)).sorted()
    learningRatesB = Set(pairs.compactMap(\.b.learningRate)).sorted()
  }

  /// When the two folders' runs were trained at different chosen learning rates, a line that says
  /// so (the pairs then differ in rate as well as in the changed setting); else "".
  public var rateNote: String {
    guard learningRatesA != learningRatesB else { return "" }
    func list(_ rates: [Double]) -> String { rates.isEmpty ? "none" : rates.map { "\($0)" }.joined(separator: ", ") }
    return "\(method.rawValue) at budget \(budget): the runs were trained at different chosen learning rates "
      + "(A \(list(learningRatesA)), B \(list(learningRatesB))), so its pairs differ in rate too."
  }
}

/// A configuration field that differs between the two folders' config.json: its path of keys
/// ("config.maxEpochs") and each folder's value as compact JSON (nil where the field is absent).
public struct ConfigDifference: Codable, Hashable, Sendable {
  public var key: String
  public var a: String?
  public var b: String?

  public init(key: String, a: String?, b: String?) {
    self.key = key
    self.a = a
    self.b = b
  }
}

/// A build and how many of the paired stages of one folder it computed.
public struct BuildCount: Codable, Hashable, Sendable {
  public var build: String
  public var stages: Int
}

// MARK: - The comparison

/// Two run folders paired by downstream run stage. Reads the folders and writes nothing.
public struct FolderComparison: Codable, Sendable {
  public var folderA: String
  public var folderB: String
  /// Every paired stage, by method (table order), budget and draw.
  public var pairs: [StagePair]
  /// One per method and budget with pairs, in the same order.
  public var groups: [ComparisonGroup]
  /// Downstream run stages finished in one folder only.
  public var onlyInA: [String]
  public var onlyInB: [String]
  /// The fields of config.json whose values differ, sorted by key.
  public var configDifferences: [ConfigDifference]
  /// The builds that computed the paired stages, per folder, most stages first.
  public var buildsA: [BuildCount]
  public var buildsB: [BuildCount]
  /// Paired stages whose two runs were computed by different builds.
  public var pairsFromDifferentBuilds: Int

  /// Reads both folders: config.json (required: it makes a folder a run folder) and every finished
  /// downstream run stage. Throws one line naming the file for a missing folder, a folder without
  /// config.json, a config.json that is not JSON, a stage file that does not decode, or a stage
  /// whose two files disagree on its method, budget or draw.
  public init(a: URL, b: URL) throws {
    folderA = a.path
    folderB = b.path
    let configA = try Self.configuration(of: a), configB = try Self.configuration(of: b)
    configDifferences = Self.differences(configA, configB, path: "")
    let runsA = try Self.finishedRuns(in: a), runsB = try Self.finishedRuns(in: b)
    onlyInA = runsA.keys.filter { runsB[$0] == nil }.sorted()
    onlyInB = runsB.keys.filter { runsA[$0] == nil }.sorted()
    var pairs: [StagePair] = []
    for (stage, runA) in runsA {
      guard let runB = runsB[stage] else { continue }
      let (resultA, resultB) = (runA.result, runB.result)
      guard resultA.method == resultB.method, resultA.budget == resultB.budget, resultA.draw == resultB.draw else {
        throw ExperimentError(
          "\(b.appendingPathComponent("stages/\(stage).json").path): records \(resultB.method.rawValue) at budget \(resultB.budget) draw \(resultB.draw), "
            + "but the same stage of \(a.path) records \(resultA.method.rawValue) at budget \(resultA.budget) draw \(resultA.draw)")
      }
      pairs.append(StagePair(
        stage: stage, method: resultA.method, budget: resultA.budget, draw: resultA.draw,
        a: RunFigures(resultA, build: runA.build), b: RunFigures(resultB, build: runB.build)))
    }
    let order = Dictionary(uniqueKeysWithValues: Method.allCases.enumerated().map { ($0.element, $0.offset) })
    pairs.sort { (order[$0.method]!, $0.budget, $0.draw, $0.stage) < (order[$1.method]!, $1.budget, $1.draw, $1.stage) }
    self.pairs = pairs
    var groups: [ComparisonGroup] = []
    var start = 0
    while start < pairs.count {
      let end = pairs[start...].firstIndex { $0.method != pairs[start].method || $0.budget != pairs[start].budget } ?? pairs.count
      groups.append(ComparisonGroup(method: pairs[start].method, budget: pairs[start].budget, pairs: Array(pairs[start..<end])))
      start = end
    }
    self.groups = groups
    buildsA = Self.buildCounts(pairs.map(\.a.build))
    buildsB = Self.buildCounts(pairs.map(\.b.build))
    pairsFromDifferentBuilds = pairs.filter { $0.a.build != $0.b.build }.count
  }

  /// Whether a stage name is a downstream run's: `run-METHOD-B-D` or `incontext-BACKBONE-bB-dD`.
  public static func isDownstreamRunStage(_ name: String) -> Bool {
    if name.hasPrefix("run-") { return true }
    let parts = name.split(separator: "-")
    guard name.hasPrefix("incontext-"), parts.count >= 4 else { return false }
    let (b, d) = (parts[parts.count - 2], parts[parts.count - 1])
    return b.first == "b" && Int(b.dropFirst()) != nil && d.first == "d" && Int(d.dropFirst()) != nil
  }

  /// config.json of a run folder as JSON, or the error that says why `folder` is not a run folder.
  static func configuration(of folder: URL) throws -> Any {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder) else {
      throw ExperimentError("\(folder.path): no such folder")
    }
    guard isFolder.boolValue else { throw ExperimentError("\(folder.path): not a folder (expected a run folder)") }
    let file = folder.appendingPathComponent("config.json")
    guard let data = FileManager.default.contents(atPath: file.path) else {
      throw ExperimentError("\(folder.path): not a run folder (no config.json)")
    }
    do {
      return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    } catch {
      throw ExperimentError("\(file.path): not JSON (\(error.localizedDescription))")
    }
  }

  /// Every finished downstream run stage of a run folder, by stage name, with its build.
  static func finishedRuns(in folder: URL) throws -> [String: (result: RunResult, build: String)] {
    let store = RunStore(directory: folder)
    var runs: [String: (result: RunResult, build: String)] = [:]
    for stage in store.finishedStageNames() {
      guard isDownstreamRunStage(stage), let result = try store.load(RunResult.self, stage: stage) else { continue }
      runs[stage] = (result, store.build(of: stage))
    }
    return runs
  }

  /// The fields where two JSON values differ: objects are compared key by key (the path grows by
  /// ".key"), anything else (numbers, strings, arrays) as a whole by its compact JSON text.
  static func differences(_ a: Any?, _ b: Any?, path: String) -> [ConfigDifference] {
    if let a = a as? [String: Any], let b = b as? [String: Any] {
      return Set(a.keys).union(b.keys).sorted().flatMap { key in
        differences(a[key], b[key], path: path.isEmpty ? key : "\(path).\(key)")
      }
    }
    let (textA, textB) = (a.map(jsonText), b.map(jsonText))
    return textA == textB ? [] : [ConfigDifference(key: path.isEmpty ? "(whole file)" : path, a: textA, b: textB)]
  }

  /// Compact JSON with sorted keys ("200", "5e-05", "[1,2,5]", "\"cpu\"").
  static func jsonText(_ value: Any) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes]) else {
      return "\(value)"
    }
    return String(decoding: data, as: UTF8.self)
  }

  static func buildCounts(_ builds: [String]) -> [BuildCount] {
    countBuilds(builds).map { BuildCount(build: $0.build, stages: $0.stages) }
  }
}

// MARK: - Text

extension FolderComparison {
  /// The report for standard output: what differs between the folders, the table per method and
  /// budget, every pair, and the stages finished in one folder only (named when `verbose`).
  public func text(verbose: Bool) -> String {
    var lines = ["A: \(folderA)", "B: \(folderB)", ""]
    if configDifferences.isEmpty {
      lines.append("Configurations (config.json): identical.")
    } else {
      lines.append("Configurations (config.json) differ in \(configDifferences.count) field\(configDifferences.count == 1 ? "" : "s"):")
      for d in configDifferences { lines.append("  \(d.key): A \(d.a ?? "absent"), B \(d.b ?? "absent")") }
    }
    lines.append(buildsText)
    lines.append("")
    if pairs.isEmpty {
      lines.append("No downstream run stage has finished in both folders: nothing to pair.")
    } else {
      lines.append("Test Dice paired by stage (same method, budget and draw), B − A in Dice points, 95% t-interval:")
      lines.append("")
      lines += table(groupRows)
      for g in groups where !g.rateNote.isEmpty { lines.append(g.rateNote) }
      if groups.contains(where: { $0.sameRuns > 0 }) {
        let same = groups.map(\.sameRuns).reduce(0, +)
        lines.append("")
        lines.append("same: pairs with the same Dice, steps and seconds in both folders (\(same) of \(pairs.count)), "
          + "one run, e.g. copied by verify reproduce --reuse.")
      }
      lines.append("")
      lines.append("Every pair (steps, best step, seconds, stop):")
      lines.append("")
      lines += table(pairRows)
    }
    lines.append("")
    lines.append(oneSidedText(onlyInA, folder: "A", verbose: verbose))
    lines.append(oneSidedText(onlyInB, folder: "B", verbose: verbose))
    return lines.joined(separator: "\n")
  }

  /// Which builds computed the paired stages, and whether they differ.
  var buildsText: String {
    let all = Set(buildsA.map(\.build)).union(buildsB.map(\.build))
    if pairs.isEmpty { return "Builds: no paired stage." }
    if all.count == 1 { return "Builds: every paired stage of both folders was computed by \(all.first!)." }
    func list(_ builds: [BuildCount]) -> String { builds.map { "\($0.build) (\($0.stages))" }.joined(separator: ", ") }
    return "Builds differ: the paired stages were computed by A: \(list(buildsA)); B: \(list(buildsB)); "
      + "\(pairsFromDifferentBuilds) of \(pairs.count) pairs by two different builds (results are bit-identical only within one build)."
  }

  func oneSidedText(_ stages: [String], folder: String, verbose: Bool) -> String {
    let head = "Finished in \(folder) only: \(stages.count) downstream run stage\(stages.count == 1 ? "" : "s")"
    if stages.isEmpty { return head + "." }
    return verbose ? head + ": " + stages.joined(separator: ", ") : head + " (--verbose names them)."
  }

  var groupRows: [[String]] {
    let header = ["method", "budget", "pairs", "Dice A", "Dice B", "B − A", "SE", "95% t-interval", "seconds A", "seconds B", "B / A", "stops A", "stops B", "same"]
    return [header] + groups.map { g in
      let c = g.comparison
      let interval = c.lower.flatMap { l in c.upper.map { u in String(format: "%+.2f to %+.2f", l, u) } } ?? "–"
      return [
        g.method.rawValue, "\(g.budget)", "\(c.count)", String(format: "%.4f", g.meanDiceA), String(format: "%.4f", g.meanDiceB),
        c.mean.map { String(format: "%+.2f", $0) } ?? "–", c.standardError.map { String(format: "%.2f", $0) } ?? "–", interval,
        String(format: "%.0f", g.secondsA), String(format: "%.0f", g.secondsB), g.secondsRatio.map { String(format: "%.2f", $0) } ?? "–",
        g.stopsA.text, g.stopsB.text, "\(g.sameRuns)",
      ]
    }
  }

  var pairRows: [[String]] {
    // The chosen learning rate's column only when some run has one (the supervised baseline).
    let rates = pairs.contains { $0.a.learningRate != nil || $0.b.learningRate != nil }
    func figures(_ f: RunFigures) -> [String] {
      [String(format: "%.4f", f.dice), "\(f.steps)", f.bestStep.map { "\($0)" } ?? "–", String(format: "%.0f", f.seconds), f.stopReason?.rawValue ?? "–"]
        + (rates ? [f.learningRate.map { "\($0)" } ?? "–"] : [])
    }
    let side = ["Dice", "steps", "best", "s", "stop"] + (rates ? ["lr"] : [])
    let header = ["stage"] + side.map { "\($0) A" } + side.map { "\($0) B" } + ["B − A"]
    return [header] + pairs.map { p in [p.stage] + figures(p.a) + figures(p.b) + [String(format: "%+.2f", p.difference)] }
  }

  /// Rows as columns padded to their widest cell (the first column left-aligned, the others right),
  /// with a rule under the header.
  func table(_ rows: [[String]]) -> [String] {
    let widths = rows[0].indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
    func line(_ row: [String]) -> String {
      row.enumerated().map { i, cell in
        let pad = String(repeating: " ", count: widths[i] - cell.count)
        return i == 0 ? cell + pad : pad + cell
      }.joined(separator: "  ")
    }
    let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
    return [line(rows[0]), rule] + rows.dropFirst().map(line)
  }

  /// The comparison as JSON (sorted keys), for `--json FILE`.
  public func json() throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(self)
  }
}
