import Foundation
import Optimized
import Reference

// The in-context rows and the ED-to-ES propagation as stages of the run folder
// (docs/PROTOCOL.md section 9): `incontext-BACKBONE-bB-dD` segments the test volumes from draw D of
// budget B; `propagation-BACKBONE` propagates every test patient's ED labels to its ES frame. They
// train nothing and only read their backbone's weights, so they add rows without touching any
// other stage.

extension Reproduction {
  /// The random backbone of the random-backbone probe with its projection head's BatchNorm
  /// statistics re-estimated as well (`reestimateProjectionStatistics`): the random in-context
  /// control compares g(f(x)), and g's statistics are otherwise at mean 0, variance 1.
  static let randomProjectionStatisticsStage = "random-backbone-projection-statistics"

  static func inContextStageName(_ backbone: InContextBackbone, budget: Int, draw: Int) -> String {
    "incontext-\(backbone.rawValue)-b\(budget)-d\(draw)"
  }

  static func propagationStageName(_ backbone: InContextBackbone) -> String { "propagation-\(backbone.rawValue)" }

  /// The names the support samples' seeds derive from: one per draw, and one for the propagation
  /// (then per patient), shared by the three backbones, so they are compared on the same pixels.
  static func inContextSupportSeedName(budget: Int, draw: Int) -> String { "incontext-support-\(budget)-\(draw)" }
  static let propagationSupportSeedName = "propagation-support"

  /// The stages of the in-context rows and the propagation (listed after every other stage).
  static func inContextStages(_ config: ExperimentConfig) -> [Stage] {
    var list = [Stage(name: randomProjectionStatisticsStage, inputs: [randomStatisticsStage], level: 1)]
    for backbone in InContextBackbone.allCases {
      let level = backbone == .random ? 2 : 1
      for budget in config.budgets {
        for draw in 1...config.drawCount(budget: budget) {
          list.append(Stage(name: inContextStageName(backbone, budget: budget, draw: draw), inputs: [backbone.inputStage], level: level))
        }
      }
      list.append(Stage(name: propagationStageName(backbone), inputs: [backbone.inputStage], level: level))
    }
    return list
  }

  /// Computes one of `inContextStages` (false when `name` is none of them).
  mutating func computeInContextStage(named name: String, random: [Float]) throws -> Bool {
    if name == Reproduction.randomProjectionStatisticsStage {
      _ = try randomBackboneForInContext(try randomBackboneForProbing(random))
      return true
    }
    for backbone in InContextBackbone.allCases {
      if name == Reproduction.propagationStageName(backbone) {
        _ = try propagation(backbone, values: try inContextWeights(backbone))
        return true
      }
      for budget in config.budgets {
        for draw in 1...config.drawCount(budget: budget) where name == Reproduction.inContextStageName(backbone, budget: budget, draw: draw) {
          guard let d = try labelledDraws().first(where: { $0.budget == budget && $0.draw == draw }) else { return false }
          _ = try inContextRun(backbone, values: try inContextWeights(backbone), d)
          return true
        }
      }
    }
    return false
  }

  /// The weights a backbone is segmented with, read from its input stage.
  func inContextWeights(_ backbone: InContextBackbone) throws -> [Float] {
    try WeightsFile.read(from: store.weightsURL(backbone.inputStage), expecting: config.model)
  }

  /// The random control's weights (computed now or loaded): `probed` (the random-backbone probe's
  /// weights) with g's BatchNorm statistics re-estimated on the unlabelled pretraining slices.
  mutating func randomBackboneForInContext(_ probed: [Float]) throws -> [Float] {
    try statisticsStage(
      Reproduction.randomProjectionStatisticsStage, of: probed, what: "the projection head's BatchNorm statistics",
      use: "the random in-context control"
    ) { net, batches in net.reestimateProjectionStatistics(over: batches) }
  }

  /// One in-context run: the test volumes segmented from the draw's labelled slices (train and
  /// validation: nothing is trained, so every labelled slice is support), computed now or loaded.
  mutating func inContextRun(_ backbone: InContextBackbone, values: [Float], _ d: LabelledDraw) throws -> RunResult {
    let stage = Reproduction.inContextStageName(backbone, budget: d.budget, draw: d.draw)
    if let done = try store.load(RunResult.self, stage: stage) {
      say(String(format: "  %@: finished earlier, Dice %.3f", backbone.method.rawValue, done.summary.mean))
      stageSeconds["in-context", default: 0] += done.seconds
      return done
    }
    return try store.withClaim(stage) {
      if let done = try store.load(RunResult.self, stage: stage) { return done }
      let start = Date()
      let (scores, sample) = segmentInContext(
        Pix2RepNetwork(config: config.model, backend: backend, values: values), support: d.train.appending(d.validation),
        test: data.test, limit: InContextSettings.supportPerClass(preset: config.preset),
        seed: seed(Reproduction.inContextSupportSeedName(budget: d.budget, draw: d.draw)), batchSize: config.downstreamBatch)
      let result = RunResult(
        method: backbone.method, budget: d.budget, draw: d.draw, patients: d.patients, summary: DiceSummary(scores), volumes: scores,
        chosenLearningRate: nil, steps: 0, bestValidationLoss: 0, seconds: Date().timeIntervalSince(start), support: sample)
      try store.save(result, stage: stage)
      stageSeconds["in-context", default: 0] += result.seconds
      say(String(format: "  %@: test Dice %.3f (RV %.3f, MYO %.3f, LV %.3f); support %@; %@", backbone.method.rawValue,
        result.summary.mean, result.summary.perClass[0], result.summary.perClass[1], result.summary.perClass[2], sample.text,
        formatDuration(result.seconds)))
      return result
    }
  }

  /// The ED-to-ES propagation of one backbone over every test patient, computed now or loaded.
  mutating func propagation(_ backbone: InContextBackbone, values: [Float]) throws -> PropagationResult {
    let stage = Reproduction.propagationStageName(backbone)
    if let done = try store.load(PropagationResult.self, stage: stage) {
      stageSeconds["propagation", default: 0] += done.seconds
      return done
    }
    return try store.withClaim(stage) {
      if let done = try store.load(PropagationResult.self, stage: stage) { return done }
      let start = Date()
      var result = propagateEndDiastole(
        Pix2RepNetwork(config: config.model, backend: backend, values: values), backbone: backbone, test: data.test,
        limit: InContextSettings.supportPerClass(preset: config.preset), seed: seed(Reproduction.propagationSupportSeedName),
        batchSize: config.downstreamBatch)
      result.seconds = Date().timeIntervalSince(start)
      try store.save(result, stage: stage)
      stageSeconds["propagation", default: 0] += result.seconds
      say(String(format: "%@: ED-to-ES propagation (%@), ES Dice %.3f (RV %.3f, MYO %.3f, LV %.3f) over %d patients; %@", stage,
        backbone.title, result.summary.mean, result.summary.perClass[0], result.summary.perClass[1], result.summary.perClass[2],
        result.volumes.count, formatDuration(result.seconds)))
      return result
    }
  }

  /// The in-context and propagation stages not finished yet, with the size of their searches
  /// (for the plan's estimate).
  func unfinishedSearchStages(_ draws: [LabelledDraw]) -> [Plan.SearchStage] {
    let limit = InContextSettings.supportPerClass(preset: config.preset), classes = config.model.classes
    let plane = Double(data.test.size * data.test.size)
    func supportSize(_ labels: [UInt8]) -> Double {
      var counts = [Int](repeating: 0, count: classes)
      for label in labels { counts[Int(label)] += 1 }
      return Double(counts.reduce(0) { $0 + min($1, limit) })
    }
    var stages: [Plan.SearchStage] = []
    for backbone in InContextBackbone.allCases {
      for d in draws where !finished(Reproduction.inContextStageName(backbone, budget: d.budget, draw: d.draw)) {
        stages.append(Plan.SearchStage(
          name: Reproduction.inContextStageName(backbone, budget: d.budget, draw: d.draw),
          pairs: Double(data.test.count) * plane * supportSize(d.train.labels + d.validation.labels),
          slices: data.test.count + d.train.count + d.validation.count))
      }
      if !finished(Reproduction.propagationStageName(backbone)) {
        let pairs = endDiastoleAndSystole(data.test).reduce(0.0) { total, patient in
          total + Double(patient.es.count) * plane * supportSize(data.test.subset(patient.ed).labels)
        }
        stages.append(Plan.SearchStage(name: Reproduction.propagationStageName(backbone), pairs: pairs, slices: data.test.count))
      }
    }
    return stages
  }

  /// The finished in-context runs and propagations (for `partialReport`).
  func finishedInContext() throws -> (runs: [RunResult], propagation: [PropagationResult]) {
    var runs: [RunResult] = []
    for budget in config.budgets {
      for draw in 1...config.drawCount(budget: budget) {
        for backbone in InContextBackbone.allCases {
          if let run = try store.load(RunResult.self, stage: Reproduction.inContextStageName(backbone, budget: budget, draw: draw)) {
            runs.append(run)
          }
        }
      }
    }
    let propagation = try InContextBackbone.allCases.compactMap {
      try store.load(PropagationResult.self, stage: Reproduction.propagationStageName($0))
    }
    return (runs, propagation)
  }
}
