import Foundation
import Reference

// MARK: - The baselines' settings (docs/PROTOCOL.md section 8)

/// The settings of the image-level and semi-supervised baselines that the paper does not give, each
/// chosen from the original papers (docs/PROTOCOL.md section 8 gives the reasons); results.md
/// prints them (`text`).
public enum BaselineSettings {
  /// tau of SimCLR's NT-Xent. Chen et al. 2020 (arXiv 2002.05709) use 0.1 at ImageNet batch sizes
  /// (Table 5) but found 0.5 better for their small-batch CIFAR-10 runs (appendix B.9, batch 256
  /// and below); a pretraining batch here holds 8 slices, 16 views.
  public static let simCLRTemperature = 0.5
  /// w_max, the consistency weight after the ramp-up: Yu et al. 2019 (UA-MT, MICCAI, arXiv
  /// 1907.07034; code `--consistency 0.1`), the Mean Teacher adaptation to segmentation with a
  /// supervised loss on the scale of soft Dice. (Tarvainen and Valpola's CIFAR-10 setting, 100,
  /// weighs a 10-class image-level loss.)
  public static let consistencyMaximum = 0.1

  /// T, the length of the sigmoid ramp-up in steps: the shortest run the downstream schedule
  /// allows (`DownstreamSchedule.minimumSteps`, validation interval × patience), so every run,
  /// however early patience stops it, reaches w_max. At large budgets that is 6 epochs, about the
  /// original's 5 (CIFAR-10); at one patient, 120 steps.
  public static func rampUpSteps(_ schedule: DownstreamSchedule) -> Int { max(1, schedule.minimumSteps) }

  /// The settings as printed in results.md.
  public static func text(_ config: ExperimentConfig) -> String {
    let widths = SimCLRConstants.projectionWidths(bottleneck: config.model.widths.last!)
    return """
      Baselines: SimCLR (Chen et al. 2020): the encoder alone, its bottleneck (\(config.model.widths.last!) channels) \
      average-pooled, projection \(config.model.widths.last!) -> \(widths.hidden) -> \(widths.output), NT-Xent over the 2B views at \
      tau = \(simCLRTemperature) (Chen et al.'s small-batch value, appendix B.9; batch \(config.pretrainingBatch) slices, \
      \(2 * config.pretrainingBatch) views), same views, steps, Adam rate and validation as Pix2Rep pretraining; the decoder stays \
      as initialised, its BatchNorm statistics re-estimated on the unlabelled pretraining slices before probing or fine-tuning. \
      Mean Teacher (Tarvainen and Valpola 2017): batches of \(config.downstreamBatch) labelled + \(config.downstreamBatch) \
      unlabelled slices of the other training patients, independent intensity augmentations for student and teacher, soft \
      Dice on the labelled slices + w(t) × the softmax mean squared error over all; teacher an EMA of the student's weights \
      (decay \(MeanTeacherConstants.emaDecay), the original code's warm-up min(1 - 1/(t + 1), decay)), forward in training \
      mode; w(t) = w_max exp(-5 (1 - t/T)²) with w_max = \(consistencyMaximum) (Yu et al. 2019) and T = validation \
      interval × patience steps (the shortest run); the teacher is validated, kept at its best and tested. Mean Teacher \
      starts from the random backbone with the budget's chosen baseline rate; Pix2Rep FT + MT from the InfoNCE backbone with \
      the fine-tuning rates.
      """
  }
}

// MARK: - SimCLR pretraining

/// What the SimCLR pretraining stage leaves besides its weights (the counterpart of
/// `PretrainingOutcome`).
public struct SimCLROutcome: Codable, Sendable, PretrainingSummary {
  public var steps: Int
  public var bestStep: Int
  public var bestValidationLoss: Double
  public var training: [CurvePoint]
  public var validation: [CurvePoint]
  public var seconds: Double
  public var relativeChangeLastQuarter: Double?
  public var temperature: Double
  /// The projection's widths: input, hidden, output.
  public var projection: [Int]
}

/// The two views SimCLR compares for the slices at `indices`, made as Pix2Rep's pretraining makes
/// its pair: two independent intensity augmentations v = t(x), v' = t'(x), and one spatial
/// transform phi per slice applied to the second, so the views are (v, phi · v'), switched as
/// Pix2Rep's are (`ExperimentConfig.pretrainingAugmentation`).
func simCLRViews<B: Backend>(
  _ data: SliceSet, _ indices: [Int], switches: AugmentationSwitches, rng: inout SplitMix64, backend: B
) -> (view: Tensor<B.Scalar>, otherView: Tensor<B.Scalar>) {
  let view = augmentedImages(data, indices, switches: switches, rng: &rng, backend: backend)
  let otherView = augmentedImages(data, indices, switches: switches, rng: &rng, backend: backend)
  let affines = indices.map { _ in sampleSpatialTransform(rng: &rng, switches: switches).affine }
  return (view, backend.warpForward(input: otherView, affines: affines))
}

/// The encoder's trainable entries (`inc` and the `down{k}` blocks), the only backbone tensors a
/// SimCLR step changes.
func encoderRanges(_ layout: ParameterLayout) -> [Range<Int>] {
  layout.entries.filter { $0.group == .backbone && $0.role.isTrainable && ($0.name.hasPrefix("inc.") || $0.name.hasPrefix("down")) }
    .map(\.range)
}

/// The head's weights as one flat buffer (W1, b1, W2, b2), for Adam.
func flatHead<Scalar>(_ head: SimCLRProjectionHead<Scalar>) -> [Scalar] {
  head.weight1 + head.bias1 + head.weight2 + head.bias2
}

/// A head with the widths of `head` and the weights of the flat buffer `flat` (`flatHead` order).
func unflatHead<Scalar>(_ flat: [Scalar], like head: SimCLRProjectionHead<Scalar>) -> SimCLRProjectionHead<Scalar> {
  let a = head.weight1.count, b = a + head.bias1.count, c = b + head.weight2.count
  return SimCLRProjectionHead(
    inputWidth: head.inputWidth, hidden: head.hidden, output: head.output, weight1: Array(flat[0..<a]),
    bias1: Array(flat[a..<b]), weight2: Array(flat[b..<c]), bias2: Array(flat[c...]))
}

/// Adam (PyTorch's) over given ranges of a flat buffer, with one step counter: the encoder entries
/// of the network's layout, or the whole of the SimCLR head's own buffer.
struct RangeAdam<Scalar: BinaryFloatingPoint & Sendable> {
  let ranges: [Range<Int>]
  let learningRate: Double
  var step = 0
  var firstMoment: [Scalar]
  var secondMoment: [Scalar]

  init(count: Int, ranges: [Range<Int>], learningRate: Double) {
    self.ranges = ranges
    self.learningRate = learningRate
    firstMoment = [Scalar](repeating: 0, count: count)
    secondMoment = [Scalar](repeating: 0, count: count)
  }

  mutating func update<B: Backend>(_ values: inout [Scalar], gradients: [Scalar], backend: B) where B.Scalar == Scalar {
    step += 1
    for range in ranges {
      backend.adamUpdate(
        values: &values, gradients: gradients, firstMoment: &firstMoment, secondMoment: &secondMoment, range: range,
        learningRate: learningRate, hyper: AdamHyperparameters(), step: step)
    }
  }
}

/// The SimCLR loss of two views and, when `computeGradients`, the gradients of the encoder (network
/// layout; the decoder's entries stay 0) and of the head: each view through the encoder alone
/// (BatchNorm statistics per view, as Pix2Rep's pretraining), `simCLRLoss` on the two bottlenecks,
/// `encoderBackward` from the bottleneck with no skip gradient.
func simCLRLossAndGradients<B: Backend>(
  _ net: inout Pix2RepNetwork<B>, head: SimCLRProjectionHead<B.Scalar>, view: Tensor<B.Scalar>, otherView: Tensor<B.Scalar>,
  temperature: Double, training: Bool, computeGradients: Bool
) -> (loss: Double, gradients: [B.Scalar]?, gradHead: SimCLRProjectionHead<B.Scalar>?) {
  let tape = net.encoderForward(view, training: training)
  let otherTape = net.encoderForward(otherView, training: training)
  let result = net.backend.simCLRLoss(
    features: tape.bottleneck, otherFeatures: otherTape.bottleneck, head: head, temperature: temperature)
  guard computeGradients else { return (result.loss, nil, nil) }
  var gradients = net.zeroGradients()
  let noSkips = [Tensor<B.Scalar>?](repeating: nil, count: net.config.depth)
  net.encoderBackward(tape, gradBottleneck: result.gradFeatures, skips: noSkips, gradients: &gradients)
  net.encoderBackward(otherTape, gradBottleneck: result.gradOtherFeatures, skips: noSkips, gradients: &gradients)
  return (result.loss, gradients, result.gradHead)
}

/// Pretrains the encoder with SimCLR (docs/PROTOCOL.md section 8) from `initial` (the random
/// backbone every method starts from), following `pretrain`: the same steps, batch, Adam rate and
/// validation interval, a fixed seeded validation set, the best-validation weights kept. The head
/// (`SimCLRProjectionHead`, drawn from `seed`) has its own buffer and Adam, so the network's layout
/// and weight files are unchanged. The decoder never runs, so it stays as initialised; its
/// BatchNorm running statistics are then re-estimated on the training slices
/// (`reestimateBatchNormStatistics`, as for the random-backbone control), the encoder's trained
/// statistics kept. Returns the network's values (as Float) and the curves. With a `checkpoint`
/// policy it saves and resumes as `pretrain` does, to the same final bits.
package func pretrainSimCLR<B: Backend>(
  backend: B, initial: [Float], train: SliceSet, validation: SliceSet, config: ExperimentConfig, seed: UInt64, label: String,
  checkpoint: CheckpointPolicy? = nil
) throws -> (values: [Float], outcome: SimCLROutcome) {
  let start = Date()
  var net = Pix2RepNetwork(config: config.model, backend: backend, values: initial.map { B.Scalar($0) })
  var head = SimCLRProjectionHead<Double>(inputWidth: config.model.widths.last!, seed: seed).converted(to: B.Scalar.self)
  let temperature = BaselineSettings.simCLRTemperature
  let rate = config.pretrainingLearningRate
  var encoderAdam = RangeAdam<B.Scalar>(count: net.layout.count, ranges: encoderRanges(net.layout), learningRate: rate)
  var headValues = flatHead(head)
  var headAdam = RangeAdam<B.Scalar>(count: headValues.count, ranges: [0..<headValues.count], learningRate: rate)
  var sampler = BatchSampler(count: train.count, batchSize: config.pretrainingBatch, rng: SplitMix64(seed: seed, stream: 1))
  var rng = SplitMix64(seed: seed, stream: 2)
  var validationRNG = SplitMix64(seed: seed, stream: 3)
  let validationIndices = Array(validationRNG.permutation(validation.count).prefix(config.pretrainingValidationSlices))
  let validationViews = stride(from: 0, to: validationIndices.count, by: config.pretrainingBatch).map {
    simCLRViews(validation, Array(validationIndices[$0..<min($0 + config.pretrainingBatch, validationIndices.count)]),
      switches: config.pretrainingAugmentation, rng: &validationRNG, backend: backend)
  }
  // Checkpoint convention: arrays [values, the encoder's Adam moments (network layout), the head,
  // the head's Adam moments]; random streams [augmentation]; samplers [training batches]; Adam
  // steps [encoder, head].
  let record = try pretrainingLoop(
    config: config, label: label, checkpoint: checkpoint,
    capture: {
      TrainerState(
        arrays: [
          net.values, encoderAdam.firstMoment, encoderAdam.secondMoment, headValues, headAdam.firstMoment, headAdam.secondMoment,
        ],
        randomStates: [rng.state], samplers: [.init(sampler)], adamSteps: [encoderAdam.step, headAdam.step])
    },
    restore: { state in
      net.values = state.arrays[0]
      (encoderAdam.step, encoderAdam.firstMoment, encoderAdam.secondMoment) = (state.adamSteps[0], state.arrays[1], state.arrays[2])
      headValues = state.arrays[3]
      (headAdam.step, headAdam.firstMoment, headAdam.secondMoment) = (state.adamSteps[1], state.arrays[4], state.arrays[5])
      head = unflatHead(headValues, like: head)
      rng = SplitMix64(seed: state.randomStates[0])
      state.samplers[0].restore(&sampler)
    },
    values: { net.values }
  ) { _ in
    let views = simCLRViews(train, sampler.next(), switches: config.pretrainingAugmentation, rng: &rng, backend: backend)
    let (loss, gradients, gradHead) = simCLRLossAndGradients(
      &net, head: head, view: views.view, otherView: views.otherView, temperature: temperature, training: true, computeGradients: true)
    encoderAdam.update(&net.values, gradients: gradients!, backend: backend)
    headAdam.update(&headValues, gradients: flatHead(gradHead!), backend: backend)
    head = unflatHead(headValues, like: head)
    return loss
  } validate: {
    var total = 0.0
    for v in validationViews {
      total += simCLRLossAndGradients(
        &net, head: head, view: v.view, otherView: v.otherView, temperature: temperature, training: false, computeGradients: false).loss
    }
    return total / Double(max(validationViews.count, 1))
  }
  net.values = record.best.values
  let trained = net.values
  net.reestimateBatchNormStatistics(over: train.batches(of: config.downstreamBatch).lazy.map { train.imageTensor($0) as Tensor<B.Scalar> })
  for entry in net.layout.entries where !entry.role.isTrainable && (entry.name.hasPrefix("inc.") || entry.name.hasPrefix("down")) {
    net.values.replaceSubrange(entry.range, with: trained[entry.range])
  }
  let outcome = SimCLROutcome(
    steps: config.pretrainingSteps, bestStep: record.best.step, bestValidationLoss: record.best.loss, training: record.training,
    validation: record.validation, seconds: record.earlierSeconds + Date().timeIntervalSince(start),
    relativeChangeLastQuarter: PretrainingOutcome.relativeChangeLastQuarter(record.validation, steps: config.pretrainingSteps),
    temperature: temperature, projection: [head.inputWidth, head.hidden, head.output])
  return (net.values.map { Float($0) }, outcome)
}
