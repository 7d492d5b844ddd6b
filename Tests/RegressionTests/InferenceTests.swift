import Experiment
import KernelCatalog
import Optimized
import Reference
import Testing
import TestSupport

// The inference path (Optimized.InferenceNetwork: BatchNorm folded into the convolutions, no tape,
// fused bias + ReLU, skip + pool and head passes) against the reference network's evaluation-mode
// forward, `segmentationForward(frozenFeatures(x))` in Double, on tiny seeded networks whose
// BatchNorm statistics and affine parameters are far from their defaults (so the folding matters).

// MARK: - Fixture

enum InferenceFixture {
  /// `tiny` (1x1 bottleneck), the step tests' `small`, and one with 6 classes (two class groups of
  /// the fused head, the second partial), 3 channels, and 10 x 10 planes (a last 4-pixel step).
  static let configs: [(name: String, config: ModelConfig)] = [
    ("tiny", .tiny),
    ("small", ModelConfig(widths: [4, 8, 16], features: 5, imageSize: 8, projectionHidden: 6, projectionOutput: 5)),
    ("six classes", ModelConfig(widths: [3, 6], features: 7, imageSize: 10, projectionHidden: 2, projectionOutput: 2, classes: 6)),
  ]

  /// With `InferenceConvolutions.winograd4x4`: 12 x 12 and 8 x 8 planes of 4 and more channels,
  /// where F(4x4, 3x3) runs (12 x 12: cut tiles gathered lane by lane).
  static let fourByFour: (name: String, config: ModelConfig) = (
    "F(4x4) at 12", ModelConfig(widths: [4, 8], features: 4, imageSize: 12, projectionHidden: 2, projectionOutput: 2)
  )

  /// Every fixture network with each choice of the evaluation-mode convolutions (`fourByFour` with
  /// `winograd4x4` only).
  static let cases: [InferenceCase] =
    configs.flatMap { c in InferenceConvolutions.allCases.map { InferenceCase(name: c.name, convolutions: $0) } }
    + [InferenceCase(name: fourByFour.name, convolutions: .winograd4x4)]

  static func config(_ name: String) -> ModelConfig {
    name == fourByFour.name ? fourByFour.config : configs.first { $0.name == name }!.config
  }

  /// A reference network at `seed` whose every BatchNorm has running mean ~ U(-0.5, 0.5), running
  /// variance ~ U(0.25, 2), weight ~ U(0.5, 1.5) and bias ~ U(-0.3, 0.3), and whose head bias ~
  /// U(-0.2, 0.2); every value rounded through Float so both paths start from the same numbers.
  static func network(_ config: ModelConfig, seed: UInt64) -> Pix2RepNetwork<ReferenceBackend> {
    var net = Pix2RepNetwork(config: config, backend: ReferenceBackend(), seed: seed)
    var rng = SplitMix64(seed: seed, stream: 0xB4)
    for entry in net.layout.entries {
      let range: (Double, Double)? = switch entry.role {
      case .runningMean: (-0.5, 0.5)
      case .runningVariance: (0.25, 2)
      case .bnWeight: (0.5, 1.5)
      case .bnBias: (-0.3, 0.3)
      case .convBias where entry.group == .segmentation: (-0.2, 0.2)
      default: nil
      }
      if let range {
        net.setParameter(entry.name, (0..<entry.count).map { _ in range.0 + (range.1 - range.0) * rng.uniform() })
      }
    }
    net.values = net.values.map { Double(Float($0)) }
    return net
  }

  /// `count` seeded images (count, 1, S, S) in [0, 1), rounded through Float.
  static func images(_ config: ModelConfig, count: Int, seed: UInt64) -> Tensor<Double> {
    let s = config.imageSize
    var rng = SplitMix64(seed: seed, stream: 0x1A6)
    return Tensor(shape: Shape(count, config.inputChannels, s, s), data: (0..<(count * config.inputChannels * s * s)).map { _ in
      Double(Float(rng.uniform()))
    })
  }

  static func inference(
    _ net: Pix2RepNetwork<ReferenceBackend>, convolutions: InferenceConvolutions = .winograd2x2, workers: Int,
    batchSize: Int = 16
  ) -> InferenceNetwork {
    InferenceNetwork(
      config: net.config, values: net.values.map { Float($0) }, convolutions: convolutions, workers: workers,
      batchSize: batchSize)
  }
}

/// A fixture network and the evaluation-mode convolutions to run it with.
struct InferenceCase: Sendable, CustomTestStringConvertible {
  let name: String
  let convolutions: InferenceConvolutions
  var config: ModelConfig { InferenceFixture.config(name) }
  var testDescription: String { "\(name), \(convolutions.rawValue)" }
}

// MARK: - Tests

@Suite struct InferenceTests {
  /// Float32 against Double through a whole evaluation-mode forward. It has no batch statistics
  /// (no division by a batch variance), so its error stays at the single-kernel level: measured
  /// worst 7e-7 absolute on the features and 2.4e-7 on the logits, on these networks and the cpu
  /// preset's (under 1% of this limit); a bias folded 0.1% off fails it. With F(4x4, 3x3) too.
  static let tolerance = Tolerance.float32Kernel

  @Test("the folded inference forward matches the reference evaluation-mode forward: features and logits",
    arguments: InferenceFixture.cases)
  func matchesReference(_ test: InferenceCase) {
    let (config, configName) = (test.config, test.testDescription)
    var reference = InferenceFixture.network(config, seed: 31)
    let images = InferenceFixture.images(config, count: 3, seed: 32)
    let expectedFeatures = reference.frozenFeatures(images)
    let expectedLogits = reference.segmentationForward(expectedFeatures)
    var inference = InferenceFixture.inference(reference, convolutions: test.convolutions, workers: 2)
    let x: Tensor<Float> = images.converted()
    let features = inference.features(x), logits = inference.logits(x)
    #expect(features.shape == expectedFeatures.shape && logits.shape == expectedLogits.shape)
    for (label, actual, expected) in [("features", features, expectedFeatures), ("logits", logits, expectedLogits)] {
      if let m = firstMismatch("\(configName) \(label)", actual: actual.data, expected: expected.data, tolerance: Self.tolerance) {
        Issue.record(Comment(rawValue: m.description))
      }
    }
  }

  @Test("predicted labels are the reference's arg-max wherever its top two logits differ by more than the tolerance",
    arguments: InferenceFixture.cases)
  func labelsMatchReference(_ test: InferenceCase) throws {
    let (config, configName) = (test.config, test.testDescription)
    var reference = InferenceFixture.network(config, seed: 41)
    let images = InferenceFixture.images(config, count: 4, seed: 42)
    let logits = reference.segmentationForward(reference.frozenFeatures(images))
    let expected = argmaxChannels(logits)
    var inference = InferenceFixture.inference(reference, convolutions: test.convolutions, workers: 2)
    let labels = inference.predictLabels(images.converted())
    try #require(labels.count == expected.count, "\(labels.count) labels, expected \(expected.count)")
    let plane = config.imageSize * config.imageSize
    var compared = 0
    for i in labels.indices {
      let (n, p) = (i / plane, i % plane)
      let column = (0..<config.classes).map { logits.data[(n * config.classes + $0) * plane + p] }.sorted(by: >)
      if column[0] - column[1] <= Self.tolerance.limit(for: column[0]) { continue }
      compared += 1
      #expect(labels[i] == expected[i], "\(configName) pixel \(i): label \(labels[i]), reference \(expected[i]) (top logits \(column[0]), \(column[1]))")
    }
    // The check is not vacuous: almost every pixel has a clear winner.
    #expect(2 * compared > labels.count, "\(configName): only \(compared) of \(labels.count) pixels have a clear arg-max")
  }

  @Test("features, logits and labels are bit-identical for 1, 2 and 3 workers and for any batch size",
    arguments: InferenceFixture.cases)
  func deterministic(_ test: InferenceCase) {
    let (config, configName) = (test.config, test.testDescription)
    let reference = InferenceFixture.network(config, seed: 51)
    let x: Tensor<Float> = InferenceFixture.images(config, count: 5, seed: 52).converted()
    func run(workers: Int, batchSize: Int) -> [LabeledOutput] {
      var inference = InferenceFixture.inference(
        reference, convolutions: test.convolutions, workers: workers, batchSize: batchSize)
      // Twice through the same network: the reused buffers carry nothing from one call to the next.
      let first = inference.logits(x)
      return [
        output("features", inference.features(x)), output("logits", first), output("logits again", inference.logits(x)),
        output("labels", inference.predictLabels(x).map { Float($0) }),
      ]
    }
    let expected = run(workers: 1, batchSize: 16)
    for (workers, batchSize) in [(2, 16), (3, 16), (1, 1), (2, 2), (3, 4)] {
      if let problem = compareBits("\(configName) workers \(workers) batch \(batchSize) vs 1 worker, one batch", actual: run(workers: workers, batchSize: batchSize), expected: expected) {
        Issue.record(Comment(rawValue: problem))
      }
    }
  }

  @Test("EvaluationForward is the folded path on the optimized backend and the network's own forward on the reference")
  func evaluationForwardDispatches() {
    let config = InferenceFixture.config("small")
    var reference = InferenceFixture.network(config, seed: 61)
    let images = InferenceFixture.images(config, count: 3, seed: 62)
    var onReference = EvaluationForward(reference)
    let expectedLogits = reference.segmentationForward(reference.frozenFeatures(images))
    let (referenceLogits, referenceLabels) = (onReference.logits(images), onReference.labels(images))
    #expect(referenceLogits == expectedLogits)
    #expect(referenceLabels == argmaxChannels(expectedLogits))
    var onOptimized = EvaluationForward(reference.converted(to: OptimizedBackend(workers: 2)))
    var inference = InferenceFixture.inference(reference, workers: 2)
    let x: Tensor<Float> = images.converted()
    let actual = [onOptimized.features(x), onOptimized.logits(x)], labels = onOptimized.labels(x)
    let expected = [inference.features(x), inference.logits(x)], expectedLabels = inference.predictLabels(x)
    #expect(actual == expected)
    #expect(labels == expectedLabels)
  }

  @Test("the validation loss (soft Dice on evaluation-mode logits) is the reference's quantity",
    arguments: InferenceFixture.configs.map(\.name))
  func validationLossMatchesReference(configName: String) {
    let config = InferenceFixture.config(configName)
    var reference = InferenceFixture.network(config, seed: 71)
    let (images, labels) = StepFixture.segmentationBatch(config, count: 3, seed: 72)
    let expected = reference.headLoss(features: reference.frozenFeatures(images), labels: labels)
    let backend = OptimizedBackend(workers: 2)
    var forward = EvaluationForward(reference.converted(to: backend))
    let actual = backend.softDiceLoss(logits: forward.logits(images.converted()), labels: labels).loss
    #expect(Self.tolerance.accepts(actual, expected), "\(configName): loss \(actual), reference \(expected), limit \(Self.tolerance.limit(for: expected)) [\(Self.tolerance.name)]")
  }
}
