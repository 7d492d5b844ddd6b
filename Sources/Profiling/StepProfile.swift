import Dispatch
import Foundation
import Optimized
import Reference
import TestSupport

// MARK: - The whole pretraining step

/// One pretraining step of `Pix2RepNetwork` (InfoNCE), the same code on both backends.
struct StepProfile {
  var config: ModelConfig
  var positions = InfoNCEConstants.sampledPositions

  /// Multiply-adds (x2) of one step at the full batch: every 3x3 convolution (forward, input and
  /// weight gradients), transposed convolution and projection-head 1x1 convolution (the last one
  /// on the M rows only) three times per view, and InfoNCE's two (2M x 2M x d) products, M the
  /// positions drawn at the full batch
  /// (fewer than asked when the images have fewer valid pixels). Pointwise work is not counted.
  var flops: Double {
    let n = Double(ProfileProbe.batch)
    let size = config.imageSize
    var macs = 3 * n * backboneMultiplyAdds(config)
    // The projection head's first layer at every pixel, its last layer on the M sampled rows.
    macs += 3 * n * Double(size * size * config.features * config.projectionHidden)
    let m = Double(batch(ProfileProbe.batch, as: Float.self).positions.count)
    macs += 3 * m * Double(config.projectionHidden * config.projectionOutput)
    let lossMacs: Double = 2 * (2 * m) * (2 * m) * Double(config.projectionOutput)
    return 2 * (2 * macs + lossMacs)
  }

  /// Random views in [0, 1) (rounded through Float), a phi per slice, positions as in training.
  func batch<S: BinaryFloatingPoint & Sendable>(_ count: Int, as: S.Type) -> PretrainingBatch<S> {
    let s = config.imageSize
    var rng = SplitMix64(seed: 17, stream: 0x57E9)
    func image() -> Tensor<S> {
      Tensor(shape: Shape(count, config.inputChannels, s, s), data: (0..<(count * config.inputChannels * s * s)).map { _ in
        S(Float(rng.uniform()))
      })
    }
    let view = image(), otherView = image()
    let affines = (0..<count).map { _ in sampleSpatialTransform(rng: &rng).affine }
    let drawn = samplePixelPositions(valid: validityMask(affines: affines, height: s, width: s), count: positions, rng: &rng)
    return PretrainingBatch(view: view, otherView: otherView, affines: affines, positions: drawn)
  }

  /// A reference network with values rounded through Float, so both backends start equal.
  var referenceNetwork: Pix2RepNetwork<ReferenceBackend> {
    let initial = Pix2RepNetwork(config: config, backend: ReferenceBackend(), seed: 3)
    return Pix2RepNetwork(config: config, backend: ReferenceBackend(), values: initial.values.map { Double(Float($0)) })
  }

  static let settings = PretrainingLoss(objective: .infoNCE)

  /// Whether the reference step is affordable by default: at most 5e10 operations per image
  /// (the CPU preset has 8.6e9; the paper preset's is about 2e12, hours of reference time).
  var referenceFeasible: Bool { flops / Double(ProfileProbe.batch) <= 5e10 }

  /// The smallest batch BatchNorm can train on: 1, or 2 when the bottleneck is a single pixel.
  var smallBatch: Int { config.imageSize >> config.depth > 1 ? 1 : 2 }

  /// Loss and every gradient at `smallBatch` on both backends; the first difference beyond
  /// TestSupport's "float32 network" tolerance, or nil.
  func check(workers: Int) -> String? {
    var reference = referenceNetwork
    var optimized = reference.converted(to: OptimizedBackend(workers: workers))
    let expected = reference.pretrainingLoss(
      batch(smallBatch, as: Double.self), loss: Self.settings, training: true, computeGradients: true)
    let actual = optimized.pretrainingLoss(
      batch(smallBatch, as: Float.self), loss: Self.settings, training: true, computeGradients: true)
    let tolerance = Tolerance.float32Network
    if !tolerance.accepts(actual.loss, expected.loss) {
      return "loss \(actual.loss), expected \(expected.loss)"
    }
    guard let g = actual.gradients, let e = expected.gradients else { return "no gradients" }
    return gradientMismatch(reference.layout, actual: g, expected: e)
  }

  /// Times one full step (loss, gradients, Adam) on a network of backend `B`.
  func stepSeconds<B: Backend>(_ network: Pix2RepNetwork<B>, batch count: Int, reps: Int) -> Double {
    var net = network
    var optimizer = AdamOptimizer<B.Scalar>(layout: net.layout, learningRates: [.backbone: 4.7e-4, .projection: 4.7e-4])
    let b = batch(count, as: B.Scalar.self)
    return profileMedian(reps: reps) { net.pretrainingStep(b, loss: Self.settings, optimizer: &optimizer) }
  }

  /// The median optimized step at the full batch on `workers` workers (after a warm-up).
  func optimizedSeconds(workers: Int) -> Double {
    let optimized = referenceNetwork.converted(to: OptimizedBackend(workers: workers))
    _ = stepSeconds(optimized, batch: ProfileProbe.batch, reps: 1)
    return stepSeconds(optimized, batch: ProfileProbe.batch, reps: 5)
  }

  func measure(workers: Int, peak: Double, fullReference: Bool) -> ProfileRow {
    let n = ProfileProbe.batch
    let optimized = referenceNetwork.converted(to: OptimizedBackend(workers: workers))
    _ = stepSeconds(optimized, batch: n, reps: 1)
    let optimizedSeconds = stepSeconds(optimized, batch: n, reps: 5)
    // A cheap reference step (under 1e9 operations per image) is timed at the full batch: the
    // extrapolation from two small batches is only as good as their difference, which timing noise
    // swamps when the steps take milliseconds (it once gave a negative time at the tiny preset).
    let direct = fullReference || flops / Double(n) <= 1e9
    let referenceSeconds: Double
    if !direct && !referenceFeasible {
      referenceSeconds = .nan
    } else if direct {
      referenceSeconds = stepSeconds(referenceNetwork, batch: n, reps: 1)
    } else {
      let b = smallBatch
      let one = stepSeconds(referenceNetwork, batch: b, reps: 1)
      let two = stepSeconds(referenceNetwork, batch: b + 1, reps: 1)
      referenceSeconds = one + Double(n - b) * (two - one)
    }
    var m = ProfileMeasurement(
      name: direct ? "pretraining step" : "pretraining step (ref +)", shape: "(\(n), 1, \(config.imageSize), \(config.imageSize)) x 2",
      flops: flops, referenceSeconds: referenceSeconds, referenceScaled: false)
    m.optimizedSeconds = optimizedSeconds
    return ProfileRow(m, peak: peak)
  }
}
