import Foundation
import Optimized
import Reference

/// Finished stages' recorded wall seconds against the seconds the plan's step times give for the
/// steps they trained (`Reproduction.calibration`).
public struct StageCalibration: Sendable {
  public var assumedSeconds: Double
  public var recordedSeconds: Double
  public var stages: Int

  mutating func add(assumed: Double, recorded: Double) {
    assumedSeconds += assumed
    recordedSeconds += recorded
    stages += 1
  }

  mutating func add(_ other: StageCalibration) {
    assumedSeconds += other.assumedSeconds
    recordedSeconds += other.recordedSeconds
    stages += other.stages
  }

  /// "The time left counts 0.46x ..." for the line a `--jobs` run prints before it starts.
  public var text: String {
    String(
      format: "The time left counts %.2fx the estimate's step times: the %d stages finished in the run folder took that "
        + "(until a stage of this run finishes).", recordedSeconds / assumedSeconds, stages)
  }
}

/// What a reproduction will train, and how long it should take here: measured step times times the
/// steps each run can take. Runs stop early (patience), so a run's length is known only as a range
/// (from stopping at the first chance to the epoch cap) until it has run; the estimate assumes
/// `assumedSteps` and is corrected by the runs as they finish.
package struct Plan {
  /// One downstream run to train.
  struct Run {
    var method: Method
    var budget: Int
    var draw: Int
    var schedule: DownstreamSchedule
    var validationSlices: Int
    var linearProbe: Bool
    /// A baseline run of the learning-rate search that is not kept (its time counts all the same).
    var searchOnly = false
    /// How far its checkpoint (saved by this build, so the run resumes from it) has trained; the
    /// estimate counts only the steps still to go.
    var resumed: CheckpointedProgress? = nil
  }

  /// Seconds of the basic operations, measured on this machine with the run's backend.
  struct StepTimes {
    var pretraining: Double
    var fineTuning: Double
    var linearProbing: Double
    /// A forward pass of one downstream batch in evaluation mode (validation, test prediction).
    var forward: Double
    /// A Mean Teacher step: the student on labelled and unlabelled slices, the teacher's forward,
    /// Adam and the teacher's average.
    var meanTeacher: Double
    /// The exact nearest-neighbour search per (query, support) pair at the projection's width.
    var searchPair: Double = 0
  }

  /// An in-context or propagation stage still to compute: the pairs its search compares and the
  /// slices it passes through the network.
  struct SearchStage {
    var name: String
    var pairs: Double
    var slices: Int
  }

  /// The step of a run's best validation that the estimate assumes, before any run has finished:
  /// runs take about this many steps to converge whatever the budget, and a run stops `patience`
  /// validations after its best or at its cap. Measured on the cpu preset (2026-11-30): the
  /// 100-patient baseline's best at steps 1998 and 2109 (lr 1e-3, 4.7e-4; 2664 and 2775 steps in
  /// all); at one and two patients 44 of 55 runs went on to their cap of 400 or 600 steps, 43 of
  /// them with their best within the last 3 validations (the first cpu run). The earlier assumption, the best at half the epoch
  /// cap, put the 100-patient runs at 11,766 steps, four times what they took.
  package static let assumedBestStep = 2000

  /// The steps a run of schedule `s` is assumed to take: its best at the first validation from
  /// `assumedBestStep` on, then `patience` validations more, within its cap.
  package static func assumedSteps(_ s: DownstreamSchedule) -> Int {
    let best = (assumedBestStep + s.validationInterval - 1) / s.validationInterval
    return min(s.maxSteps, validations(s, best: best) * s.validationInterval)
  }

  /// The steps a run of schedule `s` still has to train, having trained as far as `resumed` (its
  /// checkpoint; nil for a run that starts now): at least to the first validation that can stop it
  /// by patience; assumed `assumedSteps(s)` in all, but at least that least (a resumed run that has
  /// gone on past the assumed length keeps finding new bests); at most to its cap.
  package static func stepsLeft(_ s: DownstreamSchedule, resumed: CheckpointedProgress?) -> (least: Int, assumed: Int, most: Int) {
    guard let done = resumed else {
      return (min(s.maxSteps, validations(s, best: 0) * s.validationInterval), assumedSteps(s), s.maxSteps)
    }
    let most = max(0, s.maxSteps - done.step)
    let least = min(most, max(0, s.patience - (done.sinceBest ?? 0)) * s.validationInterval)
    return (least, min(most, max(assumedSteps(s) - done.step, least)), most)
  }

  func assumedSteps(_ run: Run) -> Int { Plan.stepsLeft(run.schedule, resumed: run.resumed).assumed }

  var runs: [Run]
  var pretrainingSteps: Int
  var pretrainingStages: Int
  /// The steps the unfinished pretrainings' checkpoints (this build's) have trained.
  var pretrainingStepsDone = 0
  var times: StepTimes
  var testSlices: Int
  var batch: Int
  var searchStages: [SearchStage] = []

  /// Seconds of an in-context or propagation stage: its search and its forward passes.
  func seconds(_ stage: SearchStage) -> Double {
    stage.pairs * times.searchPair + Double((stage.slices + batch - 1) / batch) * times.forward
  }

  var searchSeconds: Double { searchStages.reduce(0) { $0 + seconds($1) } }

  /// Validations before a run stops, if its best is at validation `best` (0 = the initial one).
  static func validations(_ s: DownstreamSchedule, best: Int) -> Int {
    min(best + s.patience, s.maxSteps / s.validationInterval)
  }

  /// Seconds of one run that trains `steps` steps.
  func seconds(_ run: Run, steps: Int) -> Double {
    let batches = Double((run.validationSlices + batch - 1) / batch)
    let validations = Double(steps / run.schedule.validationInterval + 1)
    let perStep = run.linearProbe
      ? times.linearProbing : run.method == .meanTeacher || run.method == .pix2repMeanTeacher ? times.meanTeacher : times.fineTuning
    let validation = run.linearProbe ? batches * times.forward : validations * batches * times.forward
    let test = run.searchOnly ? 0 : Double((testSlices + batch - 1) / batch) * times.forward
    return Double(steps) * perStep + validation + test
  }

  /// (shortest, assumed, longest) seconds of the downstream runs.
  var downstreamSeconds: (least: Double, assumed: Double, most: Double) {
    runs.reduce((0, 0, 0)) { total, run in
      let steps = Plan.stepsLeft(run.schedule, resumed: run.resumed)
      return (
        total.0 + seconds(run, steps: steps.least),
        total.1 + seconds(run, steps: steps.assumed),
        total.2 + seconds(run, steps: steps.most)
      )
    }
  }

  var pretrainingSeconds: Double { Double(pretrainingStages * pretrainingSteps - pretrainingStepsDone) * times.pretraining }

  /// The central estimate of everything still to compute.
  var assumedSeconds: Double { pretrainingSeconds + downstreamSeconds.assumed + searchSeconds }

  /// The estimate printed before the run starts.
  var description: String {
    if runs.isEmpty && pretrainingStages == 0 && searchStages.isEmpty {
      return "estimate: every stage has finished in the run folder; nothing to train."
    }
    let d = downstreamSeconds
    let lp = runs.filter(\.linearProbe).count
    return """
      estimate from step times measured here: pretraining step \(String(format: "%.3f", times.pretraining)) s, \
      fine-tuning step \(String(format: "%.3f", times.fineTuning)) s, linear-probing step \(String(format: "%.3f", times.linearProbing)) s, \
      Mean Teacher step \(String(format: "%.3f", times.meanTeacher)) s, \
      forward pass of a batch \(String(format: "%.3f", times.forward)) s.
        \(pretrainingStages) pretraining stage(s) of \(pretrainingSteps) steps: \(formatDuration(pretrainingSeconds)).
        \(runs.count) downstream runs (\(lp) linear probes, \(runs.count - lp) fine-tuning or baseline, \
      \(runs.filter(\.searchOnly).count) of them the baseline's rate search): at least \(formatDuration(d.least)) \
      (every run stops at its first chance), at most \(formatDuration(d.most)) (every run to its cap); \
      \(formatDuration(d.assumed)) if runs find their best near step \(Plan.assumedBestStep) (as measured at budgets 1, 2 and 100)\
      \(baselineRowsText(of: d.assumed)).
        \(searchStages.count) in-context and propagation stage(s) (exact nearest-neighbour search, \
      \(String(format: "%.2g", searchStages.reduce(0) { $0 + $1.pairs })) pixel pairs at \
      \(String(format: "%.3g", times.searchPair * 1e9)) ns each): \(formatDuration(searchSeconds)).
        total: about \(formatDuration(assumedSeconds)) (between \(formatDuration(pretrainingSeconds + d.least + searchSeconds)) and \
      \(formatDuration(pretrainingSeconds + d.most + searchSeconds))), not counting stages already finished in the run folder.
      """
  }

  /// The share of the downstream runs' assumed time that the image-level and semi-supervised
  /// baselines' rows (SimCLR LP and FT, Mean Teacher, Pix2Rep FT + MT; issue 14) take.
  func baselineRowsText(of assumed: Double) -> String {
    let rows: Set<Method> = [.simCLRLinear, .simCLRFineTune, .meanTeacher, .pix2repMeanTeacher]
    let seconds = runs.filter { rows.contains($0.method) }.reduce(0) { $0 + self.seconds($1, steps: assumedSteps($1)) }
    guard seconds > 0, assumed > 0 else { return "" }
    return "; of that, the SimCLR, Mean Teacher and Pix2Rep FT + MT rows \(formatDuration(seconds)) (\(String(format: "%.0f", 100 * seconds / assumed))%)"
  }

  // MARK: - Measuring

  /// Times one pretraining step, one fine-tuning step, one linear-probing step and one evaluation
  /// forward pass at the configuration's sizes: the median of `repeats` after a warm-up, or with
  /// `repeats` 1 a single timing without warm-up (the paper preset, where a step takes minutes).
  static func measure(backend: OptimizedBackend, config: ExperimentConfig, data: SliceSet, repeats: Int) -> StepTimes {
    var net = Pix2RepNetwork(config: config.model, backend: backend, seed: 1)
    var rng = SplitMix64(seed: 1, stream: 99)
    let b = min(config.downstreamBatch, data.count)
    let indices = Array(0..<b)
    let labels = data.labelBatch(indices)
    func median(_ body: () -> Void) -> Double {
      if repeats > 1 { body() }
      var times: [Double] = []
      for _ in 0..<max(repeats, 1) {
        let start = Date()
        body()
        times.append(Date().timeIntervalSince(start))
      }
      return times.sorted()[times.count / 2]
    }
    let settings = PretrainingLoss(objective: .infoNCE, temperature: config.temperature, lambda: config.barlowLambda)
    var adam = AdamOptimizer<Float>(layout: net.layout, learningRates: [.backbone: 1e-9, .projection: 1e-9, .segmentation: 1e-9])
    let pretraining = median {
      let batch = pretrainingBatch(
        data, Array(0..<min(config.pretrainingBatch, data.count)), positions: config.positions,
        switches: config.pretrainingAugmentation, rng: &rng, backend: backend)
      _ = net.pretrainingStep(batch, loss: settings, optimizer: &adam)
    }
    let fineTuning = median {
      let images = augmentedImages(data, indices, rng: &rng, backend: backend)
      let (_, g) = net.fineTuningLossAndGradients(images: images, labels: labels)
      adam.update(&net.values, gradients: g, backend: backend)
    }
    let linearProbing = median {
      let images = augmentedImages(data, indices, rng: &rng, backend: backend)
      var frozen = EvaluationForward(net)  // as `downstreamLossAndGradients` probes
      let (_, g) = net.headLossAndGradients(features: frozen.features(images), labels: labels)
      adam.update(&net.values, gradients: g, backend: backend)
    }
    var teacher = net
    var teacherRNG = SplitMix64(seed: 1, stream: 98)
    let averaged = net.layout.entries.filter { $0.role.isTrainable && $0.group != .projection }.map(\.range)
    let meanTeacher = median {
      let (_, g) = meanTeacherLossAndGradients(
        student: &net, teacher: &teacher, train: data, labelled: indices, unlabelledSet: data, unlabelled: indices,
        weight: 0.1, studentRNG: &rng, teacherRNG: &teacherRNG)
      adam.update(&net.values, gradients: g, backend: backend)
      for range in averaged { backend.emaUpdate(teacher: &teacher.values, student: net.values, range: range, decay: 0.99) }
    }
    let clean: Tensor<Float> = data.imageTensor(indices)
    var evaluation = EvaluationForward(net)
    let forward = median { _ = evaluation.labels(clean) }
    // 1,536 queries against 1,024 support rows: the kernel's blocks, with the loop overheads.
    let width = config.model.projectionOutput
    let queries = Tensor<Float>(shape: Shape(1536, width, 1, 1), data: (0..<(1536 * width)).map { _ in Float(rng.normal()) })
    let support = Tensor<Float>(shape: Shape(1024, width, 1, 1), data: (0..<(1024 * width)).map { _ in Float(rng.normal()) })
    let search = median { _ = backend.nearestNeighbours(queries: queries, support: support) }
    return StepTimes(
      pretraining: pretraining, fineTuning: fineTuning, linearProbing: linearProbing, forward: forward, meanTeacher: meanTeacher,
      searchPair: search / (1536 * 1024))
  }
}

/// A seeded draw of labelled patients for one budget, split into train and validation slices.
struct LabelledDraw {
  var budget: Int
  var draw: Int
  var patients: [Int]
  var train: SliceSet
  var validation: SliceSet
}

/// Runs done and the time left, updated as stages finish and shown after every progress line.
/// The time left is the plan's assumed time of what remains, scaled by how the runs finished so
/// far compare with their assumed time.
struct Tracker {
  var plan: Plan?
  var remaining: [Plan.Run]
  var pretrainingLeft: Int
  var done = 0
  var measured = 0.0
  var assumed = 0.0

  init(plan: Plan?) {
    self.plan = plan
    remaining = plan?.runs ?? []
    pretrainingLeft = plan?.pretrainingStages ?? 0
    update()
  }

  mutating func finishedPretraining() {
    pretrainingLeft = max(0, pretrainingLeft - 1)
    update()
  }

  /// A downstream run (or an unkept run of the rate search) finished after `seconds`.
  mutating func finished(_ method: Method, budget: Int, draw: Int, searchOnly: Bool, seconds: Double, steps: Int) {
    guard let plan,
      let i = remaining.firstIndex(where: { $0.method == method && $0.budget == budget && $0.draw == draw && $0.searchOnly == searchOnly })
    else { return }
    let run = remaining.remove(at: i)
    done += 1
    measured += seconds
    assumed += plan.seconds(run, steps: plan.assumedSteps(run))
    update()
  }

  func update() {
    guard let plan else { return }
    let scale = assumed > 0 ? measured / assumed : 1
    let downstream = remaining.reduce(0.0) { $0 + plan.seconds($1, steps: plan.assumedSteps($1)) }
    let left = Double(pretrainingLeft * plan.pretrainingSteps) * plan.times.pretraining + downstream * scale
    Console.shared.setStatus("\(done)/\(plan.runs.count) runs, about \(formatDuration(left)) left")
  }
}
