import Experiment
import Foundation
import Optimized
import Reference
import TestSupport

// MARK: - The downstream work: fine-tuning, linear probing, prediction

/// One downstream operation of a reproduction, run through the functions `verify reproduce` runs
/// (`downstreamStep`, the step of `trainDownstream`; `evaluate`, the test-set prediction and Dice;
/// timed through their specialisations for the optimized backend, as the reproduction runs them),
/// on seeded synthetic slices, so whatever speeds those up shows here.
struct DownstreamProfile {
  enum Operation: CaseIterable {
    /// Batch 16: intensity augmentation, backbone (training mode) and head forward, soft Dice,
    /// backward through both, Adam with the backbone's and the head's learning rates.
    case fineTuning
    /// Batch 16: intensity augmentation, the frozen backbone in evaluation mode, the head forward
    /// and backward, Adam on the head.
    case linearProbing
    /// `predictionSlices` slices in evaluation mode, batch 16: hard labels and the 3D Dice of
    /// every volume.
    case prediction
  }

  /// Slices of the timed prediction; its row is per this many slices.
  static let predictionSlices = 100
  /// Slices per synthetic volume (about an ACDC short-axis stack).
  static let slicesPerVolume = 10

  var config: ModelConfig
  var operation: Operation
  /// The evaluation-mode network's 3x3 convolutions (probing's frozen backbone, prediction).
  var convolutions: InferenceConvolutions
  /// Initial parameters (Float) shared by both backends: seeded, and for probing and prediction the
  /// backbone's running statistics re-estimated on the slices. With the initial statistics (mean 0,
  /// variance 1) the evaluation-mode signal fades through the layers and the check would compare
  /// near-zero features.
  let values: [Float]

  /// `convolutions`: nil for the cpu preset's (`ExperimentConfig.cpu`: F(2x2, 3x3)).
  init(config: ModelConfig, operation: Operation, workers: Int, convolutions: InferenceConvolutions? = nil) {
    self.config = config
    self.operation = operation
    self.convolutions = convolutions ?? ExperimentConfig.cpu(seed: 0).inferenceConvolutions
    var net = Pix2RepNetwork(config: config, backend: OptimizedBackend(workers: workers), seed: 3)
    if operation != .fineTuning {
      let batch = Self.slices(config: config, count: ProfileProbe.segmentationBatch)
      net.reestimateBatchNormStatistics(over: [batch.imageTensor(Array(0..<batch.count))])
    }
    values = net.values
  }

  /// The protocol's downstream settings (learning rates, batch) at this model size.
  var experiment: ExperimentConfig {
    var e = ExperimentConfig.cpu(seed: 0)
    e.model = config
    return e
  }

  var name: String {
    switch operation {
    case .fineTuning: "fine-tuning step"
    case .linearProbing: "linear-probing step"
    case .prediction: "prediction, \(Self.predictionSlices) slices " + (convolutions == .winograd2x2 ? "F(2x2)" : "F(4x4)")
    }
  }

  /// Slices of one timed call.
  var batch: Int { operation == .prediction ? Self.predictionSlices : experiment.downstreamBatch }

  var shape: String { "(\(batch), 1, \(config.imageSize), \(config.imageSize))" }

  /// Multiply-adds (x2) of one timed call: the backbone's convolutions and the head's 1x1, forward,
  /// and for what trains, the input and weight gradients (twice the forward each). Pointwise work,
  /// the augmentation and the loss are not counted.
  var flops: Double {
    let backbone = backboneMultiplyAdds(config)
    let head = Double(config.features * config.classes * config.imageSize * config.imageSize)
    let perImage =
      switch operation {
      case .fineTuning: 3 * (backbone + head)
      case .linearProbing: backbone + 3 * head
      case .prediction: backbone + head
      }
    return 2 * Double(batch) * perImage
  }

  /// Whether the reference check is affordable by default (the same bound as the pretraining step's).
  var referenceFeasible: Bool { flops / Double(batch) <= 5e10 }

  /// Slices of the check: 1, or 2 when the bottleneck is a single pixel (training-mode BatchNorm
  /// needs two values per channel).
  var smallBatch: Int { config.imageSize >> config.depth > 1 ? 1 : 2 }

  /// Seeded slices: images uniform in [0, 1), labels uniform in 0 ..< classes, `slicesPerVolume`
  /// per test volume.
  static func slices(config: ModelConfig, count: Int) -> SliceSet {
    let plane = config.imageSize * config.imageSize
    var rng = SplitMix64(seed: 23, stream: 0xD0A5)
    var set = SliceSet(size: config.imageSize)
    for i in 0..<count {
      set.append(
        image: (0..<plane).map { _ in Float(rng.uniform()) },
        label: (0..<plane).map { _ in UInt8(rng.next() % UInt64(config.classes)) },
        volume: SliceSet.VolumeID(patient: 101 + i / slicesPerVolume, phase: "ED"))
    }
    return set
  }

  /// The Adam of `trainDownstream` for this operation: backbone and head rates when fine-tuning,
  /// the head's alone when probing.
  func optimizer<S: BinaryFloatingPoint & Sendable>(_ layout: ParameterLayout) -> AdamOptimizer<S> {
    let e = experiment
    return operation == .fineTuning
      ? AdamOptimizer(
        layout: layout, learningRates: [.backbone: e.fineTuneBackboneLearningRate, .segmentation: e.fineTuneHeadLearningRate])
      : AdamOptimizer(layout: layout, learningRates: [.segmentation: e.linearProbeLearningRate])
  }

  func network<B: Backend>(_ backend: B) -> Pix2RepNetwork<B> {
    Pix2RepNetwork(config: config, backend: backend, values: values.map { B.Scalar($0) })
  }

  // MARK: Check

  /// Runs the operation at `smallBatch` on both backends: the steps' loss and every gradient, or
  /// prediction's logits and every volume's Dice, within TestSupport's "float32 network"
  /// tolerance. Returns the first difference (or nil) and the reference's time scaled to `batch`.
  func check(workers: Int) -> (problem: String?, referenceSeconds: Double) {
    let tolerance = Tolerance.float32Network
    let small = smallBatch
    let data = Self.slices(config: config, count: small)
    let indices = Array(0..<small)
    var reference = network(ReferenceBackend())
    var optimized = network(OptimizedBackend(workers: workers, inferenceConvolutions: convolutions))
    let perSlice: Double
    switch operation {
    case .fineTuning, .linearProbing:
      let probing = operation == .linearProbing
      var expected: (loss: Double, gradients: [Double])!
      perSlice = referenceSeconds { [initial = reference] in
        var net = initial
        var rng = SplitMix64(seed: 5, stream: 11)
        expected = downstreamLossAndGradients(&net, probing: probing, train: data, indices: indices, rng: &rng)
      } / Double(small)
      var rng = SplitMix64(seed: 5, stream: 11)
      let actual = downstreamLossAndGradients(&optimized, probing: probing, train: data, indices: indices, rng: &rng)
      if !tolerance.accepts(actual.loss, expected.loss) {
        return ("loss \(actual.loss), expected \(expected.loss)", perSlice * Double(batch))
      }
      return (gradientMismatch(reference.layout, actual: actual.gradients, expected: expected.gradients), perSlice * Double(batch))
    case .prediction:
      let images: Tensor<Double> = data.imageTensor(indices)
      let expectedLogits = reference.segmentationForward(reference.frozenFeatures(images))
      // The path `evaluate` runs on the optimized backend (the folded inference network).
      var forward = EvaluationForward(optimized)
      let actualLogits = forward.logits(images.converted())
      if let mismatch = firstMismatch("logits", actual: actualLogits.data, expected: expectedLogits.data, tolerance: tolerance) {
        return (mismatch.description, .nan)
      }
      var expected: [VolumeScore] = []
      let batchSize = experiment.downstreamBatch
      perSlice = referenceSeconds { expected = evaluate(&reference, test: data, batchSize: batchSize) } / Double(small)
      let actual = evaluate(&optimized, test: data, batchSize: batchSize)
      if let mismatch = firstMismatch(
        "volume Dice", actual: actual.flatMap(\.dice), expected: expected.flatMap(\.dice), tolerance: tolerance)
      {
        return (mismatch.description, perSlice * Double(batch))
      }
      return (nil, perSlice * Double(batch))
    }
  }

  /// Seconds of `body`; a call under half a second is repeated and the fastest of three kept (the
  /// first call of a small step pays one-time costs that would dominate it).
  func referenceSeconds(_ body: () -> Void) -> Double {
    let first = profileSeconds(body)
    return first > 0.5 ? first : min(first, profileSeconds(body), profileSeconds(body))
  }

  // MARK: Timing

  /// The median optimized call at `batch` on `workers` workers (after a warm-up call), from the
  /// same initial values each time.
  func optimizedSeconds(workers: Int) -> Double {
    var net = network(OptimizedBackend(workers: workers, inferenceConvolutions: convolutions))
    let data = Self.slices(config: config, count: batch)
    switch operation {
    case .fineTuning, .linearProbing:
      let probing = operation == .linearProbing
      var adam: AdamOptimizer<Float> = optimizer(net.layout)
      var rng = SplitMix64(seed: 5, stream: 11)
      let indices = Array(0..<batch)
      func step() -> Double {
        optimizedDownstreamStep(&net, optimizer: &adam, probing: probing, train: data, indices: indices, rng: &rng)
      }
      _ = step()
      return profileMedian(reps: 7) { step() }
    case .prediction:
      let batchSize = experiment.downstreamBatch
      _ = optimizedEvaluate(&net, test: data, batchSize: batchSize)
      return profileMedian(reps: 5) { optimizedEvaluate(&net, test: data, batchSize: batchSize) }
    }
  }

  /// The median seconds of each of several predictions (`operation == .prediction`), timed call by
  /// call in turn after a warm-up of each, so that their ratio sees the same load.
  static func alternatedPredictionSeconds(_ profiles: [DownstreamProfile], workers: Int, reps: Int = 7) -> [Double] {
    precondition(profiles.allSatisfy { $0.operation == .prediction }, "alternatedPredictionSeconds: predictions only")
    var nets = profiles.map { $0.network(OptimizedBackend(workers: workers, inferenceConvolutions: $0.convolutions)) }
    let data = profiles.map { Self.slices(config: $0.config, count: $0.batch) }
    let batchSize = profiles.map(\.experiment.downstreamBatch)
    for i in nets.indices { _ = optimizedEvaluate(&nets[i], test: data[i], batchSize: batchSize[i]) }
    var times = [[Double]](repeating: [], count: profiles.count)
    for _ in 0..<reps {
      for i in nets.indices {
        times[i].append(profileSeconds { blackHole(optimizedEvaluate(&nets[i], test: data[i], batchSize: batchSize[i])) })
      }
    }
    return times.map { t in
      let sorted = t.sorted()
      return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
  }

  /// The row: the optimized median at the full batch (`optimizedSeconds`, or measured here) beside
  /// the reference time of the check, scaled from `smallBatch` slices (marked *).
  func row(workers: Int, referenceSeconds: Double, peak: Double, optimizedSeconds seconds: Double? = nil) -> ProfileRow {
    var m = ProfileMeasurement(
      name: name, shape: shape, flops: flops, referenceSeconds: referenceSeconds, referenceScaled: !referenceSeconds.isNaN)
    m.optimizedSeconds = seconds ?? optimizedSeconds(workers: workers)
    return ProfileRow(m, peak: peak)
  }
}

// MARK: - Shared by the whole-step profiles

/// Multiply-adds of one image through the backbone's forward: every 3x3 convolution and every
/// transposed convolution.
func backboneMultiplyAdds(_ config: ModelConfig) -> Double {
  let size = config.imageSize, w = config.widths, depth = config.depth
  var macs = 0.0
  func conv3x3(_ cin: Int, _ cout: Int, _ s: Int) { macs += Double(cin * cout * 9 * s * s) }
  conv3x3(config.inputChannels, w[0], size)
  conv3x3(w[0], w[0], size)
  for k in 1...depth {
    conv3x3(w[k - 1], w[k], size >> k)
    conv3x3(w[k], w[k], size >> k)
  }
  for k in 1...depth {
    let input = w[depth - k + 1], output = k == depth ? config.features : w[depth - k], s = size >> (depth - k)
    macs += Double(input * (input / 2) * 4 * (s / 2) * (s / 2))
    conv3x3(input, output, s)
    conv3x3(output, output, s)
  }
  return macs
}

/// The first trainable tensor whose gradient differs beyond TestSupport's "float32 network"
/// tolerance, or nil. actual, expected: gradients in `layout`.
func gradientMismatch<A: BinaryFloatingPoint, E: BinaryFloatingPoint>(
  _ layout: ParameterLayout, actual: [A], expected: [E]
) -> String? {
  for entry in layout.entries where entry.role.isTrainable {
    if let mismatch = firstMismatch(
      "gradient \(entry.name)", actual: Array(actual[entry.range]), expected: Array(expected[entry.range]),
      tolerance: .float32Network)
    {
      return mismatch.description
    }
  }
  return nil
}
