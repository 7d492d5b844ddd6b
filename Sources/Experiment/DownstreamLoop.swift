import Foundation
import Reference

/// What a trainer (downstream or pretraining) carries from one step to the next besides what its
/// loop keeps (the best values, the curves, the patience count): the state a checkpoint must hold
/// for the run to resume to the same bits. Which array, stream, sampler and optimizer is which is
/// the trainer's convention.
struct TrainerState<Scalar: BinaryFloatingPoint> {
  /// The parameters (with running statistics), Adam's moments, a teacher, a separate head.
  var arrays: [[Scalar]]
  /// Random streams' states (`SplitMix64.state`).
  var randomStates: [UInt64]
  var samplers: [SamplerState]
  /// Each Adam optimizer's step.
  var adamSteps: [Int]
}

/// The part of a `TrainerState` that a checkpoint's header records (the arrays follow it raw).
struct TrainerStreams: Codable {
  var randomStates: [UInt64]
  var samplers: [SamplerState]
  var adamSteps: [Int]
}

extension TrainerState {
  init(arrays: [[Scalar]], streams: TrainerStreams) {
    self.init(arrays: arrays, randomStates: streams.randomStates, samplers: streams.samplers, adamSteps: streams.adamSteps)
  }

  var streams: TrainerStreams { TrainerStreams(randomStates: randomStates, samplers: samplers, adamSteps: adamSteps) }
}

extension TrainerState where Scalar: Sendable {
  /// The state of the plain trainer (`pretrain`, `trainDownstream`): one network's `values`, one
  /// Adam, one augmentation stream, one batch sampler. Arrays [values, Adam's first and second
  /// moments]; random streams [augmentation]; samplers [training batches].
  init(values: [Scalar], adam: AdamOptimizer<Scalar>, rng: SplitMix64, sampler: BatchSampler) {
    self.init(
      arrays: [values, adam.firstMoment, adam.secondMoment], randomStates: [rng.state], samplers: [.init(sampler)],
      adamSteps: [adam.step])
  }

  /// Puts a plain trainer's state (`init(values:adam:rng:sampler:)`) back.
  func restore(values: inout [Scalar], adam: inout AdamOptimizer<Scalar>, rng: inout SplitMix64, sampler: inout BatchSampler) {
    values = arrays[0]
    adam.restore(step: adamSteps[0], firstMoment: arrays[1], secondMoment: arrays[2])
    rng = SplitMix64(seed: randomStates[0])
    samplers[0].restore(&sampler)
  }
}

/// What `downstreamLoop` records in its checkpoint besides the trainer's arrays and the best values.
struct DownstreamProgress: CheckpointProgress {
  var schedule: DownstreamSchedule
  var step: Int
  var sinceBest: Int
  var bestStep: Int
  var bestLoss: Double
  var curve: [CurvePoint]
  var streams: TrainerStreams
  /// Seconds the run had trained when it saved (over every process that resumed it).
  var seconds: Double
}

/// The schedule every downstream run shares (`trainDownstream`, `trainMeanTeacher`; docs/PROTOCOL.md
/// section 4): steps until the cap or until `schedule.patience` validations without a new best; a
/// validation every `schedule.validationInterval` steps and at the cap; the best-validation values
/// kept; the validation curve from step 0; progress on standard error; with a `checkpoint` policy,
/// a save at validations (at most once per interval) and, when a checkpoint of this build exists,
/// a resumed run that ends with the same bits as an uninterrupted one.
///
/// The trainer supplies its step (given the step number, from 1; returns the loss and a note for
/// the progress line), its validation loss, the values a new best keeps (`kept`, read only then),
/// and the capture and restoration of its `TrainerState` of `stateArrays` arrays. A checkpoint
/// holds those arrays and then the best values.
func downstreamLoop<Scalar: BinaryFloatingPoint>(
  schedule: DownstreamSchedule, label: String, checkpoint: CheckpointPolicy?, valueCount: Int, stateArrays: Int,
  capture: () -> TrainerState<Scalar>, restore: (TrainerState<Scalar>) -> Void,
  validate: () -> Double, kept: () -> [Scalar], step trainStep: (Int) -> (loss: Double, note: String)
) throws -> DownstreamOutcome {
  var best: (step: Int, loss: Double, values: [Scalar])
  var curve: [CurvePoint]
  var sinceBest = 0
  var step = 0
  var earlierSeconds = 0.0
  let started = Date()
  let saved: (state: TrainerState<Scalar>, best: [Scalar], progress: DownstreamProgress)? = checkpoint?.resume(
    schedule: schedule, stateLengths: [Int](repeating: valueCount, count: stateArrays), bestLength: valueCount, label: label)
  if let saved {
    let h = saved.progress
    restore(saved.state)
    best = (h.bestStep, h.bestLoss, saved.best)
    (curve, sinceBest, step, earlierSeconds) = (h.curve, h.sinceBest, h.step, h.seconds)
  } else {
    best = (0, validate(), kept())
    curve = [CurvePoint(step: 0, loss: best.loss)]
  }
  let progress = ProgressPrinter(label, total: schedule.maxSteps, resumedAt: step)
  var lastSave = Date()
  while step < schedule.maxSteps && sinceBest < schedule.patience {
    step += 1
    let (loss, note) = trainStep(step)
    if step % schedule.validationInterval == 0 || step == schedule.maxSteps {
      let v = validate()
      curve.append(CurvePoint(step: step, loss: v))
      if v < best.loss {
        best = (step, v, kept())
        sinceBest = 0
      } else {
        sinceBest += 1
      }
      if let checkpoint, checkpoint.due(step: step, lastSave: lastSave) {
        let state = capture()
        try checkpoint.save(
          state, best: best.values,
          progress: DownstreamProgress(
            schedule: schedule, step: step, sinceBest: sinceBest, bestStep: best.step, bestLoss: best.loss, curve: curve,
            streams: state.streams, seconds: earlierSeconds + Date().timeIntervalSince(started)))
        lastSave = Date()
      }
    }
    let epoch = (step + schedule.stepsPerEpoch - 1) / schedule.stepsPerEpoch
    progress.update(
      step, loss: loss,
      extra: "epoch \(epoch), " + note
        + String(format: "best validation %.4f at step %d, %d/%d without a new best", best.loss, best.step, sinceBest, schedule.patience),
      open: true)
  }
  progress.finish()
  return DownstreamOutcome(
    values: best.values.map { Float($0) }, steps: step, bestStep: best.step, bestValidationLoss: best.loss, curve: curve,
    schedule: schedule, stopReason: sinceBest >= schedule.patience ? .patience : .cap, earlierSeconds: earlierSeconds)
}
