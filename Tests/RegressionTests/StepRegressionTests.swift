import KernelCatalog
import Optimized
import Reference
import Testing
import TestSupport

// Whole training steps on both backends: the same seeded network and batch, every gradient tensor
// compared by name. The kernels are checked one by one in KernelHarness; these catch what only a
// whole step exercises (tapes, skip connections, the pairing of the two views, the parameter layout).

// MARK: - Seeded networks and batches

enum StepFixture {
  /// `ModelConfig.tiny`, and a slightly larger model with three levels and odd head sizes.
  static let configs: [(name: String, config: ModelConfig)] = [
    ("tiny", .tiny),
    ("small", ModelConfig(widths: [4, 8, 16], features: 5, imageSize: 8, projectionHidden: 6, projectionOutput: 5)),
  ]

  static func config(_ name: String) -> ModelConfig { configs.first { $0.name == name }!.config }

  /// A reference network at `seed`, its values rounded through Float so that both backends start
  /// from the same numbers.
  static func referenceNetwork(_ config: ModelConfig, seed: UInt64) -> Pix2RepNetwork<ReferenceBackend> {
    let initial = Pix2RepNetwork(config: config, backend: ReferenceBackend(), seed: seed)
    return Pix2RepNetwork(config: config, backend: ReferenceBackend(), values: initial.values.map { Double(Float($0)) })
  }

  /// Two intensity views of `count` random slices, a random phi per slice (rotation, zoom, flip as
  /// in pretraining) and up to `positions` pixel positions whose source lies inside the image.
  static func pretrainingBatch(_ config: ModelConfig, count: Int, positions: Int, seed: UInt64) -> PretrainingBatch<Double> {
    let s = config.imageSize
    var rng = SplitMix64(seed: seed, stream: 0x57E9)
    func image() -> Tensor<Double> {
      Tensor(shape: Shape(count, config.inputChannels, s, s), data: (0..<(count * config.inputChannels * s * s)).map { _ in
        Double(Float(rng.uniform()))
      })
    }
    let view = image(), otherView = image()
    let affines = (0..<count).map { _ in sampleSpatialTransform(rng: &rng).affine }
    let valid = validityMask(affines: affines, height: s, width: s)
    let drawn = samplePixelPositions(valid: valid, count: positions, rng: &rng)
    return PretrainingBatch(view: view, otherView: otherView, affines: affines, positions: drawn)
  }

  /// `count` random slices and random labels in 0 ..< classes.
  static func segmentationBatch(_ config: ModelConfig, count: Int, seed: UInt64) -> (images: Tensor<Double>, labels: [UInt8]) {
    let s = config.imageSize
    var rng = SplitMix64(seed: seed, stream: 0x5E6)
    let images = Tensor(shape: Shape(count, config.inputChannels, s, s), data: (0..<(count * config.inputChannels * s * s)).map { _ in
      Double(Float(rng.uniform()))
    })
    let labels = (0..<(count * s * s)).map { _ in UInt8(rng.int(below: config.classes)) }
    return (images, labels)
  }
}

/// The outputs of one step: the loss, every gradient tensor and the values after it (running
/// statistics, and parameters when Adam ran), by name.
struct StepOutputs {
  var loss: Double
  var tensors: [LabeledOutput]

  static func make<S: BinaryFloatingPoint>(loss: Double, gradients: [S]?, values: [S], layout: ParameterLayout) -> StepOutputs {
    var tensors = [LabeledOutput]()
    if let gradients {
      for entry in layout.entries where entry.role.isTrainable {
        tensors.append(output("gradient \(entry.name)", Array(gradients[entry.range])))
      }
    }
    // Values after the step: the running statistics, and every parameter when Adam ran.
    for entry in layout.entries where gradients == nil || !entry.role.isTrainable {
      tensors.append(output("value \(entry.name)", Array(values[entry.range])))
    }
    return StepOutputs(loss: loss, tensors: tensors)
  }

  var all: [LabeledOutput] { [LabeledOutput(label: "loss", values: [loss])] + tensors }
}

/// The three steps the experiments run, on any backend.
enum StepKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
  case pretrainingInfoNCE, pretrainingBarlowTwins, pretrainingWithAdam, fineTuning

  var testDescription: String { rawValue }

  /// Runs the step on `network` (converted from the reference one) and returns its outputs.
  func run<B: Backend>(_ network: Pix2RepNetwork<B>, configName: String) -> StepOutputs {
    let config = StepFixture.config(configName)
    var net = network
    switch self {
    case .pretrainingInfoNCE, .pretrainingBarlowTwins, .pretrainingWithAdam:
      let batch = StepFixture.pretrainingBatch(config, count: 2, positions: 9, seed: 11)
      let converted = PretrainingBatch<B.Scalar>(
        view: batch.view.converted(), otherView: batch.otherView.converted(), affines: batch.affines,
        positions: batch.positions)
      let objective: PretrainingObjective = self == .pretrainingBarlowTwins ? .barlowTwins : .infoNCE
      let settings = PretrainingLoss(objective: objective)
      if self == .pretrainingWithAdam {
        var optimizer = AdamOptimizer<B.Scalar>(layout: net.layout, learningRates: [.backbone: 4.7e-4, .projection: 4.7e-4])
        let loss = net.pretrainingStep(converted, loss: settings, optimizer: &optimizer)
        return StepOutputs.make(loss: loss, gradients: nil as [B.Scalar]?, values: net.values, layout: net.layout)
      }
      let (loss, gradients) = net.pretrainingLoss(converted, loss: settings, training: true, computeGradients: true)
      return StepOutputs.make(loss: loss, gradients: gradients, values: net.values, layout: net.layout)
    case .fineTuning:
      let (images, labels) = StepFixture.segmentationBatch(config, count: 3, seed: 12)
      let (loss, gradients) = net.fineTuningLossAndGradients(images: images.converted(), labels: labels)
      return StepOutputs.make(loss: loss, gradients: gradients, values: net.values, layout: net.layout)
    }
  }
}

// MARK: - Tests

@Suite struct StepRegressionTests {
  static let cases: [(StepKind, String)] = StepKind.allCases.flatMap { kind in StepFixture.configs.map { (kind, $0.name) } }

  @Test("a whole optimized step matches the reference: loss, every gradient tensor, every value after it",
    arguments: cases)
  func stepMatchesReference(kind: StepKind, configName: String) {
    let reference = StepFixture.referenceNetwork(StepFixture.config(configName), seed: 21)
    let expected = kind.run(reference, configName: configName).all
    let actual = kind.run(reference.converted(to: OptimizedBackend(workers: 2)), configName: configName).all
    if let problem = compareOutputs("\(kind) \(configName)", actual: actual, expected: expected, tolerance: .float32Network) {
      Issue.record(Comment(rawValue: problem))
    }
  }

  @Test("a whole optimized step is bit-identical for 1, 2, 3 and 8 workers", arguments: StepKind.allCases)
  func stepIsDeterministic(kind: StepKind) {
    let reference = StepFixture.referenceNetwork(StepFixture.config("small"), seed: 21)
    let single = kind.run(reference.converted(to: OptimizedBackend(workers: 1)), configName: "small").all
    for workers in [2, 3, 8] {
      let actual = kind.run(reference.converted(to: OptimizedBackend(workers: workers)), configName: "small").all
      if let problem = compareBits("\(kind) workers \(workers) vs 1", actual: actual, expected: single) {
        Issue.record(Comment(rawValue: problem))
      }
    }
  }
}

@Suite struct WorkerCountTests {
  @Test("the default worker count is every core up to the cap, and a backend accepts it on any machine",
    arguments: [1, 2, 15, 16, 17, 64, 256])
  func defaultIsCappedAndAccepted(cores: Int) {
    let workers = defaultWorkerCount(activeProcessors: cores)
    #expect(workers == min(cores, maximumWorkerCount), "\(cores) cores gave \(workers) workers")
    // The backend's precondition traps outside 1...maximumWorkerCount; constructing it must not.
    #expect(OptimizedBackend(workers: workers).workers == workers)
  }
}
