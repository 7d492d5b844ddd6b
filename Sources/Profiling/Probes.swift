import Dispatch
import Foundation
import KernelCatalog
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

/// One catalogue kernel's pass at one of the preset's layer shapes, as a row of the table: the
/// kernel (KernelCatalog) draws the seeded inputs, runs on either backend, labels its outputs and
/// counts the operations; the probe says which call and shape, and how to print it.
package struct ProfileProbe {
  /// Pretraining batch per view (docs/PROTOCOL.md section 3).
  static let batch = BatchSizes.pretraining
  /// Segmentation batch (docs/PROTOCOL.md section 4).
  static let segmentationBatch = BatchSizes.downstream

  package var name: String
  /// The shape as the table prints it.
  package var shape: String
  package var kernel: any CatalogKernel
  /// The shape of the timed call; its `n` is the batch when `scalesWithBatch`.
  package var kernelShape: KernelShape
  package var pass: KernelPass
  /// Whether time scales with the batch `kernelShape.n` (false for whole-batch losses and Adam).
  package var scalesWithBatch: Bool

  init(
    _ kernel: any CatalogKernel, _ pass: KernelPass, _ kernelShape: KernelShape, name: String, shape: String,
    scalesWithBatch: Bool = true
  ) {
    self.kernel = kernel
    self.pass = pass
    self.kernelShape = kernelShape
    self.name = name
    self.shape = shape
    self.scalesWithBatch = scalesWithBatch
  }

  /// Batch of the timed call.
  var batch: Int { kernelShape.n }
  /// Floating-point operations of one call at `batch` (multiply-adds count 2).
  package var flops: Double { kernel.flops(kernelShape, pass) }

  /// The same call on images of half the side (a quarter of the work), for images of side 16 or
  /// more.
  var halved: ProfileProbe? {
    guard kernelShape.h >= 16 && kernelShape.w >= 16 else { return nil }
    var smaller = self
    smaller.kernelShape.h /= 2
    smaller.kernelShape.w /= 2
    return smaller
  }

  /// The call on `backend` at `batch` (when the time scales with it), from inputs seeded by the
  /// row, so both backends draw the same numbers.
  func prepare<B: Backend>(_ backend: B, batch: Int) -> () -> [KernelOutput] {
    var callShape = kernelShape
    if scalesWithBatch { callShape.n = batch }
    var inputs = SeededInputs(seed: FNV1a.hash("\(name) \(shape)".utf8))
    guard let call = kernel.prepare(backend, callShape, &inputs).call(pass) else {
      preconditionFailure("\(kernel.name) has no separate \(pass) pass")
    }
    return call
  }

  /// Above this many operations per batch element, the reference runs on smaller images (halved
  /// until below it) and its time is scaled by the operation count; about 2-6 s of reference time.
  static let referenceBudget = 2e9

  /// Rows summed into totals: label and which kernel names belong.
  static let totals: [(String, @Sendable (String) -> Bool)] = [
    ("TOTAL conv3x3 fwd+bwd", { $0.hasPrefix("conv3x3") }),
    ("TOTAL all kernels above", { _ in true }),
  ]

  /// Runs the reference, then the optimized kernel on the same inputs, and compares every output
  /// within the kernel's tolerance.
  /// The reference runs on the full batch when that takes a few seconds at most, else on one batch
  /// element (time multiplied by the batch); on images small enough for `referenceBudget` (time
  /// multiplied by the operation count). The check runs where the reference ran.
  func measureReferenceAndCheck(workers: Int) -> ProfileMeasurement {
    var m = ProfileMeasurement(name: name, shape: shape, flops: flops, referenceSeconds: 0, referenceScaled: false)
    var probe = self
    var sizeFactor = 1.0
    while probe.flops / Double(probe.scalesWithBatch ? probe.batch : 1) > Self.referenceBudget, let smaller = probe.halved {
      sizeFactor *= probe.flops / smaller.flops
      probe = smaller
    }
    m.referenceReduced = sizeFactor > 1
    var checkBatch = batch
    if scalesWithBatch && batch > 1 {
      let single = probe.prepare(ReferenceBackend(), batch: 1)
      let t1 = profileSeconds { blackHole(single()) }
      if t1 * Double(batch) > 3 {
        checkBatch = 1
        m.referenceScaled = true
        m.referenceSeconds = profileMedian(reps: t1 > 1 ? 1 : 3, single) * Double(batch)
      }
    }
    let reference = probe.prepare(ReferenceBackend(), batch: checkBatch)
    var expected = [KernelOutput]()
    let t = profileSeconds { expected = reference() }
    if !m.referenceScaled {
      m.referenceSeconds = t > 0.5 ? t : min(t, profileMedian(reps: 3, reference))
    }
    m.referenceSeconds *= sizeFactor
    let actual = probe.prepare(OptimizedBackend(workers: workers), batch: checkBatch)()
    m.problem = compare(actual, expected)
    return m
  }

  /// The check alone, at the row's own shape: the first output of the optimized call outside the
  /// kernel's tolerance of the reference's, or nil.
  package func check(workers: Int) -> String? {
    compare(prepare(OptimizedBackend(workers: workers), batch: batch)(), prepare(ReferenceBackend(), batch: batch)())
  }

  func compare(_ actual: [KernelOutput], _ expected: [KernelOutput]) -> String? {
    compareOutputs(kernel.name, actual: actual.map(\.labeled), expected: expected.map(\.labeled), tolerance: kernel.tolerance)
  }

  /// Median time of the optimized kernel at the full batch: one warm-up, then about a second of
  /// repetitions (3 ... 25).
  func timeOptimized(workers: Int) -> Double {
    let run = prepare(OptimizedBackend(workers: workers), batch: batch)
    let first = profileSeconds { blackHole(run()) }
    let reps = max(3, min(25, Int(1 / max(first, 1e-6))))
    return profileMedian(reps: reps, run)
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
