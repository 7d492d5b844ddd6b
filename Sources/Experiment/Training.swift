import Foundation
import Reference

/// Intensity-augmented copies of the slices at `indices`: each slice gets its own seeded draw of
/// the protocol's five transforms (noise, blur, gamma, bias field, inversion), switched by
/// `switches` (the protocol's views by default; `verify ablate`), applied by `backend`. (N, 1, S, S).
func augmentedImages<B: Backend>(
  _ data: SliceSet, _ indices: [Int], switches: AugmentationSwitches = .protocolViews, rng: inout SplitMix64, backend: B
) -> Tensor<B.Scalar> {
  let clean: Tensor<B.Scalar> = data.imageTensor(indices)
  let parameters = indices.map { _ in sampleIntensityParameters(rng: &rng, switches: switches) }
  return backend.augmentIntensity(batch: clean, parameters: parameters)
}

/// A pretraining batch of the slices at `indices`: two independent intensity views, one phi per
/// slice, and `positions` pixel positions drawn among those whose source lies in the image. The
/// views are switched by `switches` (`ExperimentConfig.pretrainingAugmentation`).
func pretrainingBatch<B: Backend>(
  _ data: SliceSet, _ indices: [Int], positions: Int, switches: AugmentationSwitches, rng: inout SplitMix64, backend: B
) -> PretrainingBatch<B.Scalar> {
  let view = augmentedImages(data, indices, switches: switches, rng: &rng, backend: backend)
  let otherView = augmentedImages(data, indices, switches: switches, rng: &rng, backend: backend)
  let affines = indices.map { _ in sampleSpatialTransform(rng: &rng, switches: switches).affine }
  let valid = validityMask(affines: affines, height: data.size, width: data.size)
  let drawn = samplePixelPositions(valid: valid, count: positions, rng: &rng)
  return PretrainingBatch(view: view, otherView: otherView, affines: affines, positions: drawn)
}

/// A curve point: step and loss.
public struct CurvePoint: Codable, Hashable, Sendable {
  public var step: Int
  public var loss: Double

  public init(step: Int, loss: Double) {
    self.step = step
    self.loss = loss
  }
}

/// What every pretraining stage's outcome records (Pix2Rep's `PretrainingOutcome`, `SimCLROutcome`),
/// as the run's log and stage bookkeeping read it.
package protocol PretrainingSummary: Codable {
  var steps: Int { get }
  var bestStep: Int { get }
  var bestValidationLoss: Double { get }
  var seconds: Double { get }
  var relativeChangeLastQuarter: Double? { get }
  var validation: [CurvePoint] { get }
}

extension PretrainingSummary {
  /// The relative change over the last quarter had pretraining stopped at a quarter, a half and
  /// three quarters of its steps (where a validation falls there): the first steps of a run do not
  /// depend on its length, so one long run shows whether a shorter one would have flattened.
  package var changesAtShorterLengths: [(steps: Int, change: Double)] {
    [1, 2, 3].compactMap { quarter in
      let length = steps * quarter / 4
      let prefix = validation.filter { $0.step <= length }
      guard prefix.last?.step == length,
        let change = PretrainingOutcome.relativeChangeLastQuarter(prefix, steps: length)
      else { return nil }
      return (length, change)
    }
  }

  /// The report's line: length, best validation, the last quarter's change and the shorter lengths'.
  package func reportLine(_ name: String) -> String {
    let change = relativeChangeLastQuarter.map { String(format: "%+.2f%%", $0 * 100) } ?? "missing"
    let shorter = changesAtShorterLengths.map { String(format: "%+.2f%% at %d", $0.change * 100, $0.steps) }
    return String(format: "- %@: %d steps, best validation loss %.4f at step %d; relative change of the validation loss over the last quarter: ", name, steps, bestValidationLoss, bestStep)
      + change + (shorter.isEmpty ? "" : " (had it stopped earlier: " + shorter.joined(separator: ", ") + " steps)")
  }
}

/// What a pretraining stage leaves besides its weights.
public struct PretrainingOutcome: Codable, Sendable, PretrainingSummary {
  public var objective: PretrainingObjective
  public var steps: Int
  public var bestStep: Int
  public var bestValidationLoss: Double
  public var training: [CurvePoint]
  public var validation: [CurvePoint]
  /// Wall seconds, added up over the processes that resumed the pretraining from its checkpoint
  /// (from before 2026-12-01, only the last process's).
  public var seconds: Double
  /// Relative change of the validation loss over the last quarter of pretraining,
  /// (last - at 3/4) / |at 3/4|, from the validation nearest to three quarters of the steps (nil
  /// in run folders from before it was recorded). Near 0: the loss has flattened.
  public var relativeChangeLastQuarter: Double?

  package init(
    objective: PretrainingObjective, steps: Int, bestStep: Int, bestValidationLoss: Double, training: [CurvePoint],
    validation: [CurvePoint], seconds: Double, relativeChangeLastQuarter: Double?
  ) {
    (self.objective, self.steps, self.bestStep, self.bestValidationLoss) = (objective, steps, bestStep, bestValidationLoss)
    (self.training, self.validation, self.seconds) = (training, validation, seconds)
    self.relativeChangeLastQuarter = relativeChangeLastQuarter
  }

  /// `relativeChangeLastQuarter` of a validation curve over `steps` steps.
  public static func relativeChangeLastQuarter(_ curve: [CurvePoint], steps: Int) -> Double? {
    guard let last = curve.last, curve.count >= 2 else { return nil }
    let quarter = Double(steps) * 0.75
    guard let reference = curve.dropLast().min(by: { abs(Double($0.step) - quarter) < abs(Double($1.step) - quarter) }),
      reference.loss != 0
    else { return nil }
    return (last.loss - reference.loss) / abs(reference.loss)
  }
}

/// Pretrains backbone f and projection head g with Adam (docs/PROTOCOL.md section 3) and returns the
/// best-validation parameters (all groups, as Float) with the curves.
/// `initial`, when given, replaces the seeded initial values (all groups; `verify reproduce --init`).
/// With a `checkpoint` policy the pretraining saves its state at validations (at most once per
/// interval) and, when the file exists and was saved by this build, resumes from it with the same
/// final bits as an uninterrupted pretraining (`pretrainingLoop`).
package func pretrain<B: Backend>(
  backend: B, loss settings: PretrainingLoss, train: SliceSet, validation: SliceSet,
  config: ExperimentConfig, seed: UInt64, label: String, initial: [Float]? = nil, checkpoint: CheckpointPolicy? = nil
) throws -> (values: [Float], outcome: PretrainingOutcome) {
  let start = Date()
  var net = Pix2RepNetwork(config: config.model, backend: backend, seed: seed)
  if let initial { net.values = initial.map { B.Scalar($0) } }
  let rate = config.pretrainingLearningRate
  var adam = AdamOptimizer<B.Scalar>(layout: net.layout, learningRates: [.backbone: rate, .projection: rate])
  var sampler = BatchSampler(count: train.count, batchSize: config.pretrainingBatch, rng: SplitMix64(seed: seed, stream: 1))
  var rng = SplitMix64(seed: seed, stream: 2)
  // A fixed validation set of views, transforms and positions, so validation losses compare.
  var validationRNG = SplitMix64(seed: seed, stream: 3)
  let validationIndices = Array(validationRNG.permutation(validation.count).prefix(config.pretrainingValidationSlices))
  let validationBatches: [PretrainingBatch<B.Scalar>] = stride(from: 0, to: validationIndices.count, by: config.pretrainingBatch).map {
    let chunk = Array(validationIndices[$0..<min($0 + config.pretrainingBatch, validationIndices.count)])
    return pretrainingBatch(
      validation, chunk, positions: config.positions, switches: config.pretrainingAugmentation, rng: &validationRNG, backend: backend)
  }
  let record = try pretrainingLoop(
    config: config, label: label, checkpoint: checkpoint,
    capture: { TrainerState(values: net.values, adam: adam, rng: rng, sampler: sampler) },
    restore: { $0.restore(values: &net.values, adam: &adam, rng: &rng, sampler: &sampler) },
    values: { net.values }
  ) { _ in
    let batch = pretrainingBatch(
      train, sampler.next(), positions: config.positions, switches: config.pretrainingAugmentation, rng: &rng, backend: backend)
    return net.pretrainingStep(batch, loss: settings, optimizer: &adam)
  } validate: {
    var total = 0.0
    for b in validationBatches {
      total += net.pretrainingLoss(b, loss: settings, training: false, computeGradients: false).loss
    }
    return total / Double(max(validationBatches.count, 1))
  }
  let outcome = PretrainingOutcome(
    objective: settings.objective, steps: config.pretrainingSteps, bestStep: record.best.step, bestValidationLoss: record.best.loss,
    training: record.training, validation: record.validation, seconds: record.earlierSeconds + Date().timeIntervalSince(start),
    relativeChangeLastQuarter: PretrainingOutcome.relativeChangeLastQuarter(record.validation, steps: config.pretrainingSteps))
  return (record.best.values.map { Float($0) }, outcome)
}

/// What a pretraining loop kept: the best validation (its step, loss and values) and both curves.
struct PretrainingRecord<Scalar> {
  var best: (step: Int, loss: Double, values: [Scalar])
  /// The training loss averaged over every 10 steps (and the last ones).
  var training: [CurvePoint]
  var validation: [CurvePoint]
  /// Seconds trained before this process resumed the pretraining from its checkpoint (0 for a fresh one).
  var earlierSeconds = 0.0
}

/// What a pretraining checkpoint must match to be resumed.
struct PretrainingSchedule: Codable, Equatable {
  var steps: Int
  var validationInterval: Int
  var batch: Int

  init(_ config: ExperimentConfig) {
    (steps, validationInterval, batch) = (config.pretrainingSteps, config.pretrainingValidationInterval, config.pretrainingBatch)
  }
}

/// What `pretrainingLoop` records in its checkpoint besides the trainer's arrays and the best values.
struct PretrainingProgress: CheckpointProgress {
  var schedule: PretrainingSchedule
  var step: Int
  var bestStep: Int
  var bestLoss: Double
  var training: [CurvePoint]
  var validation: [CurvePoint]
  /// The training losses since the training curve's last point.
  var recent: [Double]
  var streams: TrainerStreams
  /// Seconds the pretraining had trained when it saved (over every process that resumed it).
  var seconds: Double
}

/// The loop both pretrainings share (Pix2Rep's objectives and SimCLR): `step` trains step k
/// (1-based) and returns its loss; every `config.pretrainingValidationInterval` steps and at the
/// last one `validate` gives the validation loss, and `values` (read then) becomes the best when
/// that loss is the lowest so far. Progress goes to the console under `label`.
///
/// With a `checkpoint` policy the loop saves, at validations (at most once per interval), the
/// trainer's `TrainerState` (`capture`) with its own state (step, best, curves, the partial training
/// average); when a checkpoint of this build and schedule exists it starts from there (`restore`),
/// and ends with the same bits as an uninterrupted run. A checkpoint holds the trainer's arrays and
/// then the best values. Without a policy `capture` and `restore` are never called.
func pretrainingLoop<Scalar: BinaryFloatingPoint>(
  config: ExperimentConfig, label: String, checkpoint: CheckpointPolicy? = nil,
  capture: () -> TrainerState<Scalar>, restore: (TrainerState<Scalar>) -> Void,
  values: () -> [Scalar], step: (Int) -> Double, validate: () -> Double
) throws -> PretrainingRecord<Scalar> {
  let started = Date()
  var record = PretrainingRecord<Scalar>(best: (0, .infinity, values()), training: [], validation: [])
  let steps = config.pretrainingSteps
  let schedule = PretrainingSchedule(config)
  var recent: [Double] = []
  var first = 1
  if let checkpoint {
    let saved: (state: TrainerState<Scalar>, best: [Scalar], progress: PretrainingProgress)? = checkpoint.resume(
      schedule: schedule, stateLengths: capture().arrays.map(\.count), bestLength: record.best.values.count, label: label)
    if let saved {
      let h = saved.progress
      restore(saved.state)
      record = PretrainingRecord(
        best: (h.bestStep, h.bestLoss, saved.best), training: h.training, validation: h.validation, earlierSeconds: h.seconds)
      (recent, first) = (h.recent, h.step + 1)
    }
  }
  func note(_ validationLoss: Double) -> String {
    String(format: "validation %.4f (best %.4f at step %d)", validationLoss, record.best.loss, record.best.step)
  }
  let progress = ProgressPrinter(label, total: steps, resumedAt: first - 1)
  var extra = record.validation.last.map { note($0.loss) } ?? ""
  var lastSave = Date()
  for k in stride(from: first, through: steps, by: 1) {
    let loss = step(k)
    recent.append(loss)
    if k % 10 == 0 || k == steps {
      record.training.append(CurvePoint(step: k, loss: recent.reduce(0, +) / Double(recent.count)))
      recent.removeAll()
    }
    if k % config.pretrainingValidationInterval == 0 || k == steps {
      let validationLoss = validate()
      record.validation.append(CurvePoint(step: k, loss: validationLoss))
      if validationLoss < record.best.loss { record.best = (k, validationLoss, values()) }
      extra = note(validationLoss)
      if let checkpoint, checkpoint.due(step: k, lastSave: lastSave) {
        let state = capture()
        try checkpoint.save(
          state, best: record.best.values,
          progress: PretrainingProgress(
            schedule: schedule, step: k, bestStep: record.best.step, bestLoss: record.best.loss, training: record.training,
            validation: record.validation, recent: recent, streams: state.streams,
            seconds: record.earlierSeconds + Date().timeIntervalSince(started)))
        lastSave = Date()
      }
    }
    progress.update(k, loss: loss, extra: extra)
  }
  progress.finish()
  return record
}

// MARK: - Downstream

/// How a downstream run trains.
package enum DownstreamMode {
  /// Frozen backbone (running statistics), only the head.
  case linearProbe
  /// Backbone and head, each with its learning rate.
  case fineTune(backboneRate: Double, headRate: Double)

  var isLinearProbe: Bool {
    if case .linearProbe = self { return true }
    return false
  }
}

/// Why a downstream run stopped.
public enum StopReason: String, Codable, Sendable {
  /// `patience` validations without a new best.
  case patience
  /// The epoch cap.
  case cap
}

/// The result of training a head (and maybe the backbone): the best-validation values.
package struct DownstreamOutcome {
  package var values: [Float]
  package var steps: Int
  package var bestStep: Int
  package var bestValidationLoss: Double
  /// Validation loss at step 0 and at every validation.
  package var curve: [CurvePoint]
  package var schedule: DownstreamSchedule
  package var stopReason: StopReason
  /// Seconds trained before this process resumed the run from its checkpoint (0 for a fresh run).
  package var earlierSeconds = 0.0
}

/// Trains the segmentation head (linear probing) or the whole network (fine-tuning, baseline)
/// with soft Dice on intensity-augmented training slices (docs/PROTOCOL.md section 4). Validation
/// (un-augmented slices, evaluation mode) follows `config.downstreamSchedule`: every epoch or
/// every `minimumValidationSteps` steps, whichever is longer; the run stops after `patience`
/// validations without a new best or at the epoch cap, and returns its best-validation values
/// (running statistics included). `initial` holds the starting parameters (a pretrained backbone,
/// or a random one); the head is freshly initialised from `seed`. With a `checkpoint` policy the run
/// saves its state at validations (at most once per interval) and, when the file exists and was
/// saved by this build, resumes from it with the same final bits as an uninterrupted run.
package func trainDownstream<B: Backend>(
  backend: B, mode: DownstreamMode, initial: [Float], train: SliceSet, validation: SliceSet,
  config: ExperimentConfig, seed: UInt64, label: String, checkpoint: CheckpointPolicy? = nil
) throws -> DownstreamOutcome {
  var net = Pix2RepNetwork(config: config.model, backend: backend, seed: seed)
  let fresh = net.values
  net.values = initial.map { B.Scalar($0) }
  for entry in net.layout.entries where entry.group == .segmentation {
    net.values.replaceSubrange(entry.range, with: fresh[entry.range])
  }
  var rng = SplitMix64(seed: seed, stream: 11)
  var sampler = BatchSampler(count: train.count, batchSize: config.downstreamBatch, rng: SplitMix64(seed: seed, stream: 12))
  let schedule = config.downstreamSchedule(trainingSlices: train.count)
  var adam: AdamOptimizer<B.Scalar>
  var cachedTrain: Tensor<B.Scalar>? = nil
  var cachedValidation: [Tensor<B.Scalar>] = []
  let validationBatches = validation.batches(of: config.downstreamBatch)
  switch mode {
  case .linearProbe:
    adam = AdamOptimizer(layout: net.layout, learningRates: [.segmentation: config.linearProbeLearningRate])
    // The backbone is frozen, so the validation features never change.
    var frozen = EvaluationForward(net)
    cachedValidation = validationBatches.map { frozen.features(validation.imageTensor($0)) }
    if config.linearProbeCachedFeatures {
      cachedTrain = features(&net, train, train.batches(of: config.downstreamBatch))
    }
  case .fineTune(let backboneRate, let headRate):
    adam = AdamOptimizer(layout: net.layout, learningRates: [.backbone: backboneRate, .segmentation: headRate])
  }
  let probing = !cachedValidation.isEmpty

  func validationLoss(_ net: inout Pix2RepNetwork<B>) -> Double {
    var total = 0.0
    var forward = probing ? nil : EvaluationForward(net)
    for (i, batch) in validationBatches.enumerated() {
      let labels = validation.labelBatch(batch)
      let loss = probing
        ? net.headLoss(features: cachedValidation[i], labels: labels)
        : backend.softDiceLoss(logits: forward!.logits(validation.imageTensor(batch)), labels: labels).loss
      total += loss * Double(batch.count)
    }
    return total / Double(validation.count)
  }

  return try downstreamLoop(
    schedule: schedule, label: label, checkpoint: checkpoint, valueCount: net.values.count, stateArrays: 3,
    capture: { TrainerState(values: net.values, adam: adam, rng: rng, sampler: sampler) },
    restore: { $0.restore(values: &net.values, adam: &adam, rng: &rng, sampler: &sampler) },
    validate: { validationLoss(&net) }, kept: { net.values },
    step: { _ in
      let loss = downstreamStep(
        &net, optimizer: &adam, probing: probing, train: train, indices: sampler.next(), rng: &rng, cachedFeatures: cachedTrain)
      return (loss, "")
    })
}

/// One training step of `trainDownstream` on the slices at `indices`: the loss and gradients of
/// `downstreamLossAndGradients`, then one Adam step. Returns the loss.
package func downstreamStep<B: Backend>(
  _ net: inout Pix2RepNetwork<B>, optimizer: inout AdamOptimizer<B.Scalar>, probing: Bool, train: SliceSet,
  indices: [Int], rng: inout SplitMix64, cachedFeatures: Tensor<B.Scalar>? = nil
) -> Double {
  let (loss, gradients) = downstreamLossAndGradients(
    &net, probing: probing, train: train, indices: indices, rng: &rng, cachedFeatures: cachedFeatures)
  optimizer.update(&net.values, gradients: gradients, backend: net.backend)
  return loss
}

/// Soft Dice loss and gradients of one downstream step on the slices at `indices`, before Adam:
/// - fine-tuning (`probing` false): intensity-augmented images (one seeded draw per slice from
///   `rng`) through the backbone in training mode (running statistics updated) and the head;
/// - linear probing: the augmented images through the frozen backbone (evaluation mode), then the
///   head alone; with `cachedFeatures` (N, D, S, S) of every training slice, those features instead
///   (no augmentation, `rng` untouched).
package func downstreamLossAndGradients<B: Backend>(
  _ net: inout Pix2RepNetwork<B>, probing: Bool, train: SliceSet, indices: [Int], rng: inout SplitMix64,
  cachedFeatures: Tensor<B.Scalar>? = nil
) -> (loss: Double, gradients: [B.Scalar]) {
  let labels = train.labelBatch(indices)
  if let cachedFeatures {
    return net.headLossAndGradients(features: gather(cachedFeatures, indices), labels: labels)
  }
  let images = augmentedImages(train, indices, rng: &rng, backend: net.backend)
  if probing {
    // The evaluation-mode forward of the frozen backbone: on the optimized backend the folded
    // inference path (no tape; built per step from the unchanging backbone, which costs little
    // beside the forward itself).
    var frozen = EvaluationForward(net)
    return net.headLossAndGradients(features: frozen.features(images), labels: labels)
  }
  return net.fineTuningLossAndGradients(images: images, labels: labels)
}

/// Frozen features of every slice (N, D, S, S), computed batch by batch in evaluation mode.
func features<B: Backend>(_ net: inout Pix2RepNetwork<B>, _ data: SliceSet, _ batches: [[Int]]) -> Tensor<B.Scalar> {
  var all = [B.Scalar]()
  var shape = Shape(0, net.config.features, data.size, data.size)
  var frozen = EvaluationForward(net)
  for batch in batches {
    all += frozen.features(data.imageTensor(batch)).data
    shape.n += batch.count
  }
  return Tensor(shape: shape, data: all)
}

/// Samples `indices` of an (N, C, H, W) tensor.
func gather<Scalar>(_ t: Tensor<Scalar>, _ indices: [Int]) -> Tensor<Scalar> {
  let per = t.shape.c * t.shape.plane
  var data = [Scalar]()
  data.reserveCapacity(indices.count * per)
  for i in indices { data += t.data[(i * per)..<((i + 1) * per)] }
  return Tensor(shape: Shape(indices.count, t.shape.c, t.shape.h, t.shape.w), data: data)
}

/// Hard 3D Dice of a network on every test volume, its slices predicted `batchSize` at a time in
/// evaluation mode (`EvaluationForward`: the folded inference path on the optimized backend).
package func evaluate<B: Backend>(_ net: inout Pix2RepNetwork<B>, test: SliceSet, batchSize: Int) -> [VolumeScore] {
  var predicted = [UInt8]()
  predicted.reserveCapacity(test.labels.count)
  var forward = EvaluationForward(net)
  for batch in test.batches(of: batchSize) {
    predicted += forward.labels(test.imageTensor(batch))
  }
  return scoreVolumes(predicted: predicted, test: test)
}

/// Hard 3D Dice of every volume of `test` (`volumeDice`) from predicted labels of all its slices.
/// predicted: (test.count, S, S), in slice order.
package func scoreVolumes(predicted: [UInt8], test: SliceSet) -> [VolumeScore] {
  precondition(predicted.count == test.labels.count, "scoreVolumes: \(predicted.count) predicted labels for \(test.labels.count)")
  let plane = test.size * test.size
  return test.volumes.enumerated().map { (v, id) in
    let slices = (0..<test.count).filter { test.volumeOfSlice[$0] == v }
    var p = [UInt8](), t = [UInt8]()
    for s in slices {
      p += predicted[(s * plane)..<((s + 1) * plane)]
      t += test.labels[(s * plane)..<((s + 1) * plane)]
    }
    return VolumeScore(patient: id.patient, phase: id.phase, dice: volumeDice(prediction: p, truth: t))
  }
}
