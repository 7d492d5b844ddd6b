import Foundation
import Reference

// MARK: - Mean Teacher (Tarvainen and Valpola 2017), docs/PROTOCOL.md section 8

/// The unlabelled slices Mean Teacher's consistency sees: the pretraining training slices of every
/// training patient not among `labelled` (never a validation or test slice). When every training
/// patient is labelled (the largest budget on a 100-patient training set) there are none, and the
/// labelled training slices serve, as the consistency term is applied to every slice anyway.
package func unlabelledSlices(_ pretrainingTrain: SliceSet, excluding labelled: [Int], fallback: SliceSet) -> SliceSet {
  let excluded = Set(labelled)
  let kept = (0..<pretrainingTrain.count).filter { !excluded.contains(pretrainingTrain.volumes[pretrainingTrain.volumeOfSlice[$0]].patient) }
  return kept.isEmpty ? fallback : pretrainingTrain.subset(kept)
}

/// (N, ...) and (M, ...) tensors of the same per-sample shape stacked along the batch: (N + M, ...).
func stackBatch<Scalar>(_ a: Tensor<Scalar>, _ b: Tensor<Scalar>) -> Tensor<Scalar> {
  precondition(a.shape.c == b.shape.c && a.shape.h == b.shape.h && a.shape.w == b.shape.w, "stackBatch: \(a.shape) and \(b.shape)")
  return Tensor(shape: Shape(a.shape.n + b.shape.n, a.shape.c, a.shape.h, a.shape.w), data: a.data + b.data)
}

/// The losses of one Mean Teacher step.
struct MeanTeacherStepLoss {
  var dice: Double
  var consistency: Double
  var weight: Double
  var total: Double { dice + weight * consistency }
}

/// One Mean Teacher step, before Adam: the student on the labelled and unlabelled slices together
/// (BatchNorm in training mode), soft Dice on the labelled ones plus `weight` × the consistency
/// loss against the teacher over all of them; the teacher's forward in training mode (its running
/// statistics move, as the original's `ema_model.train()`), its logits a constant. Each network
/// sees its own intensity augmentation of the same slices (`studentRNG`, `teacherRNG`); no spatial
/// augmentation. Returns the losses and the student's gradients (parameter layout).
func meanTeacherLossAndGradients<B: Backend>(
  student: inout Pix2RepNetwork<B>, teacher: inout Pix2RepNetwork<B>, train: SliceSet, labelled: [Int],
  unlabelledSet: SliceSet, unlabelled: [Int], weight: Double, studentRNG: inout SplitMix64, teacherRNG: inout SplitMix64
) -> (loss: MeanTeacherStepLoss, gradients: [B.Scalar]) {
  let backend = student.backend
  let studentImages = stackBatch(
    augmentedImages(train, labelled, rng: &studentRNG, backend: backend),
    augmentedImages(unlabelledSet, unlabelled, rng: &studentRNG, backend: backend))
  let teacherImages = stackBatch(
    augmentedImages(train, labelled, rng: &teacherRNG, backend: backend),
    augmentedImages(unlabelledSet, unlabelled, rng: &teacherRNG, backend: backend))
  let tape = student.backboneForward(studentImages, training: true)
  let logits = student.segmentationForward(tape.output)
  let teacherLogits = teacher.segmentationForward(teacher.backboneForward(teacherImages, training: true).output)
  let labelledLogits = gather(logits, Array(0..<labelled.count))
  let (dice, gradDice) = backend.softDiceLoss(logits: labelledLogits, labels: train.labelBatch(labelled))
  let (consistency, gradConsistency) = backend.consistencyLoss(studentLogits: logits, teacherLogits: teacherLogits)
  var gradLogits = gradConsistency
  let w = B.Scalar(weight)
  for i in 0..<gradLogits.data.count { gradLogits.data[i] *= w }
  for i in 0..<gradDice.data.count { gradLogits.data[i] += gradDice.data[i] }
  var gradients = student.zeroGradients()
  let gradFeatures = student.segmentationBackward(features: tape.output, gradLogits: gradLogits, gradients: &gradients)
  student.backboneBackward(tape, gradOutput: gradFeatures, gradients: &gradients)
  return (MeanTeacherStepLoss(dice: dice, consistency: consistency, weight: weight), gradients)
}

/// The teacher's validation loss: soft Dice of its evaluation-mode predictions on the un-augmented
/// validation slices (as `trainDownstream` validates, through `EvaluationForward`).
func meanTeacherValidationLoss<B: Backend>(_ teacher: Pix2RepNetwork<B>, validation: SliceSet, batchSize: Int) -> Double {
  var forward = EvaluationForward(teacher)
  var total = 0.0
  for batch in validation.batches(of: batchSize) {
    let logits = forward.logits(validation.imageTensor(batch))
    total += teacher.backend.softDiceLoss(logits: logits, labels: validation.labelBatch(batch)).loss * Double(batch.count)
  }
  return total / Double(validation.count)
}

/// Trains a student and its mean teacher (docs/PROTOCOL.md section 8) from `initial` (the random
/// backbone, or a pretrained one) with a fresh segmentation head drawn from `seed`, as
/// `trainDownstream` starts a fine-tuning run: Adam at `backboneRate` / `headRate`, batches of
/// `downstreamBatch` labelled slices of `train` plus as many unlabelled ones (`unlabelled`), the
/// consistency weight ramped up over `BaselineSettings.rampUpSteps` steps to
/// `BaselineSettings.consistencyMaximum`, the teacher updated by `emaUpdate` (trainable entries
/// only, decay `meanTeacherDecay(step:)`) after every Adam step. The teacher is what is validated
/// (`config.downstreamSchedule`: the same interval, patience and cap), kept at its best and
/// returned. With a `checkpoint` policy the run saves its state at validations and resumes from a
/// checkpoint of this build with the same final bits, as `trainDownstream` does.
package func trainMeanTeacher<B: Backend>(
  backend: B, initial: [Float], backboneRate: Double, headRate: Double, train: SliceSet, unlabelled: SliceSet,
  validation: SliceSet, config: ExperimentConfig, seed: UInt64, label: String, checkpoint: CheckpointPolicy? = nil
) throws -> DownstreamOutcome {
  var student = Pix2RepNetwork(config: config.model, backend: backend, seed: seed)
  let fresh = student.values
  student.values = initial.map { B.Scalar($0) }
  for entry in student.layout.entries where entry.group == .segmentation {
    student.values.replaceSubrange(entry.range, with: fresh[entry.range])
  }
  var teacher = student
  let averaged = student.layout.entries.filter { $0.role.isTrainable && $0.group != .projection }.map(\.range)
  var adam = AdamOptimizer<B.Scalar>(layout: student.layout, learningRates: [.backbone: backboneRate, .segmentation: headRate])
  var sampler = BatchSampler(count: train.count, batchSize: config.downstreamBatch, rng: SplitMix64(seed: seed, stream: 12))
  var unlabelledSampler = BatchSampler(count: unlabelled.count, batchSize: config.downstreamBatch, rng: SplitMix64(seed: seed, stream: 13))
  var studentRNG = SplitMix64(seed: seed, stream: 11)
  var teacherRNG = SplitMix64(seed: seed, stream: 14)
  let schedule = config.downstreamSchedule(trainingSlices: train.count)
  let rampUp = Double(BaselineSettings.rampUpSteps(schedule))

  // Checkpoint convention: arrays [student, teacher, Adam's first and second moments]; random
  // streams [student's augmentation, teacher's]; samplers [labelled, unlabelled].
  return try downstreamLoop(
    schedule: schedule, label: label, checkpoint: checkpoint, valueCount: student.values.count, stateArrays: 4,
    capture: {
      TrainerState(
        arrays: [student.values, teacher.values, adam.firstMoment, adam.secondMoment],
        randomStates: [studentRNG.state, teacherRNG.state], samplers: [.init(sampler), .init(unlabelledSampler)],
        adamSteps: [adam.step])
    },
    restore: { state in
      (student.values, teacher.values) = (state.arrays[0], state.arrays[1])
      adam.restore(step: state.adamSteps[0], firstMoment: state.arrays[2], secondMoment: state.arrays[3])
      (studentRNG, teacherRNG) = (SplitMix64(seed: state.randomStates[0]), SplitMix64(seed: state.randomStates[1]))
      state.samplers[0].restore(&sampler)
      state.samplers[1].restore(&unlabelledSampler)
    },
    // The teacher is what is validated and kept.
    validate: { meanTeacherValidationLoss(teacher, validation: validation, batchSize: config.downstreamBatch) },
    kept: { teacher.values },
    step: { step in
      // The original counts the ramp-up from 0 (`sigmoid_rampup(epoch, T)` from epoch 0).
      let weight = consistencyWeight(at: Double(step - 1), rampUpLength: rampUp, maximum: BaselineSettings.consistencyMaximum)
      let (loss, gradients) = meanTeacherLossAndGradients(
        student: &student, teacher: &teacher, train: train, labelled: sampler.next(), unlabelledSet: unlabelled,
        unlabelled: unlabelledSampler.next(), weight: weight, studentRNG: &studentRNG, teacherRNG: &teacherRNG)
      adam.update(&student.values, gradients: gradients, backend: backend)
      let decay = meanTeacherDecay(step: step)
      for range in averaged {
        backend.emaUpdate(teacher: &teacher.values, student: student.values, range: range, decay: decay)
      }
      return (loss.total, String(format: "dice %.4f, consistency %.5f × w %.4f, teacher's ", loss.dice, loss.consistency, loss.weight))
    })
}
