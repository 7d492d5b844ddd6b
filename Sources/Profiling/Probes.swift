import Dispatch
import Foundation
import Optimized
import Reference
import TestSupport

// MARK: - Probes

/// One kernel call at one shape, measured.
struct ProfileMeasurement {
  var name: String
  var shape: String
  var flops: Double
  var referenceSeconds: Double
  var referenceScaled: Bool
  /// The reference (and the check) ran on smaller images; its time is scaled by the operations.
  var referenceReduced = false
  var optimizedSeconds = Double.nan
  var problem: String?
}

/// A kernel call written once for any backend: `prepare` draws the inputs for a batch size and
/// returns a closure that runs the kernel once and returns its outputs.
struct ProfileProbe {
  /// Pretraining batch per view (docs/PROTOCOL.md section 3).
  static let batch = BatchSizes.pretraining
  /// Segmentation batch (docs/PROTOCOL.md section 4).
  static let segmentationBatch = BatchSizes.downstream

  var name: String
  var shape: String
  /// Batch of the timed call, and whether time scales with it (false for whole-batch losses).
  var batch: Int
  var scalesWithBatch: Bool
  /// Floating-point operations of one call at `batch` (multiply-adds count 2).
  var flops: Double
  var prepareReference: @Sendable (Int) -> () -> [[Double]]
  var prepareOptimized: @Sendable (Int, Int) -> () -> [[Float]]
  /// The same kernel on images of half the side (a quarter of the work), when it has a size.
  var halved: (@Sendable () -> ProfileProbe)?

  /// Above this many operations per batch element, the reference runs on smaller images (halved
  /// until below it) and its time is scaled by the operation count; about 2-6 s of reference time.
  static let referenceBudget = 2e9

  init<K: ProbeKernel>(
    _ kernel: K, name: String, shape: String, batch: Int, scalesWithBatch: Bool = true, flops: Double,
    halved: (@Sendable () -> ProfileProbe)? = nil
  ) {
    self.name = name
    self.shape = shape
    self.batch = batch
    self.scalesWithBatch = scalesWithBatch
    self.flops = flops
    prepareReference = { n in kernel.prepare(ReferenceBackend(), batch: n) }
    prepareOptimized = { n, workers in kernel.prepare(OptimizedBackend(workers: workers), batch: n) }
    self.halved = halved
  }

  /// A sized kernel also knows itself at half the side (from 16 up).
  init<K: SizedProbeKernel>(_ kernel: K, name: String, shape: String, batch: Int, scalesWithBatch: Bool = true, flops: Double) {
    var halved: (@Sendable () -> ProfileProbe)? = nil
    if kernel.size >= 16 {
      var smaller = kernel
      smaller.size /= 2
      let small = smaller
      halved = {
        ProfileProbe(small, name: name, shape: shape, batch: batch, scalesWithBatch: scalesWithBatch, flops: flops / 4)
      }
    }
    self.init(
      kernel, name: name, shape: shape, batch: batch, scalesWithBatch: scalesWithBatch, flops: flops, halved: halved)
  }

  /// Rows summed into totals: label and which kernel names belong.
  static let totals: [(String, @Sendable (String) -> Bool)] = [
    ("TOTAL conv3x3 fwd+bwd", { $0.hasPrefix("conv3x3") }),
    ("TOTAL all kernels above", { _ in true }),
  ]

  /// Runs the reference, then the optimized kernel on the same inputs, and compares every output.
  /// The reference runs on the full batch when that takes a few seconds at most, else on one batch
  /// element (time multiplied by the batch); on images small enough for `referenceBudget` (time
  /// multiplied by the operation count). The check runs where the reference ran.
  func measureReferenceAndCheck(workers: Int) -> ProfileMeasurement {
    var m = ProfileMeasurement(name: name, shape: shape, flops: flops, referenceSeconds: 0, referenceScaled: false)
    var probe = self
    var sizeFactor = 1.0
    while probe.flops / Double(probe.scalesWithBatch ? probe.batch : 1) > Self.referenceBudget, let smaller = probe.halved?() {
      sizeFactor *= probe.flops / smaller.flops
      probe = smaller
    }
    m.referenceReduced = sizeFactor > 1
    var checkBatch = batch
    if scalesWithBatch && batch > 1 {
      let single = probe.prepareReference(1)
      let t1 = profileSeconds { blackHole(single()) }
      if t1 * Double(batch) > 3 {
        checkBatch = 1
        m.referenceScaled = true
        m.referenceSeconds = profileMedian(reps: t1 > 1 ? 1 : 3, single) * Double(batch)
      }
    }
    let reference = probe.prepareReference(checkBatch)
    var expected = [[Double]]()
    let t = profileSeconds { expected = reference() }
    if !m.referenceScaled {
      m.referenceSeconds = t > 0.5 ? t : min(t, profileMedian(reps: 3, reference))
    }
    m.referenceSeconds *= sizeFactor
    let actual = probe.prepareOptimized(checkBatch, workers)()
    m.problem = compare(actual, expected)
    return m
  }

  /// Median time of the optimized kernel at the full batch: one warm-up, then about a second of
  /// repetitions (3 ... 25).
  func timeOptimized(workers: Int) -> Double {
    let run = prepareOptimized(batch, workers)
    let first = profileSeconds { blackHole(run()) }
    let reps = max(3, min(25, Int(1 / max(first, 1e-6))))
    return profileMedian(reps: reps, run)
  }

  /// The first output outside TestSupport's "float32 kernel" tolerance, or nil.
  func compare(_ actual: [[Float]], _ expected: [[Double]]) -> String? {
    if actual.count != expected.count { return "\(actual.count) outputs, expected \(expected.count)" }
    for (k, (a, e)) in zip(actual, expected).enumerated() {
      if let mismatch = firstMismatch("output \(k)", actual: a, expected: e, tolerance: .float32Kernel) {
        return mismatch.description
      }
    }
    return nil
  }
}

func profileSeconds(_ body: () -> Void) -> Double {
  let start = DispatchTime.now().uptimeNanoseconds
  body()
  return Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
}

func profileMedian<T>(reps: Int, _ body: () -> T) -> Double {
  var times = [Double]()
  for _ in 0..<reps { times.append(profileSeconds { blackHole(body()) }) }
  times.sort()
  return times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
}
