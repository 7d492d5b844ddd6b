import Dispatch
import Foundation
import Optimized
import Reference

/// `verify profile`: every optimized kernel at a preset's real layer shapes, checked against the
/// reference first, then timed beside it, with GFLOP/s and the fraction of the machine's measured
/// peak.
enum ProfileCommand: VerifyCommand {
  static let name = "profile"
  static let summary = "check, then time every optimized kernel against the reference (release builds only)"
  static let options = [
    OptionSpec("preset", value: true), OptionSpec("workers", value: true), OptionSpec("json", value: true),
    OptionSpec("full-reference", value: false), OptionSpec("steps-only", value: false),
  ]
  static let help = """
    usage: verify profile [--preset paper|cpu|smoke|tiny] [--workers N] [--json FILE] [--full-reference] [--steps-only]

    Refuses a debug build. Measures the machine's peak with the optimized GEMM micro-kernel on
    every worker, then, for every kernel at the preset's layer shapes (pretraining batch 8 per view;
    segmentation batch 16): runs the reference (Double) and the optimized (Float) kernel on the
    same inputs and checks every output (|opt - ref| <= 1e-4 + 1e-4 |ref|, TestSupport's
    "float32 kernel" preset); prints "all results match" or fails; then prints the median time of
    each, the speedup, the optimized GFLOP/s and its fraction of the peak. The reference is timed
    with fewer repetitions, and where one full-batch run would take more than a few seconds it is
    timed on one batch element and multiplied by the batch (marked *). Default preset: cpu;
    default workers: every active processor. --json FILE writes the same table.

    Then one whole pretraining step (InfoNCE, both views, forward, backward and Adam): checked at
    batch 1 (2 when the bottleneck is one pixel; loss and every gradient, |opt - ref| <= 2e-3 +
    2e-3 |ref|, TestSupport's "float32 network" preset), timed on the optimized backend at the
    full batch. The reference step takes minutes at the full batch, so by default it is timed at
    batches 1 and 2 and extrapolated linearly to the full batch (marked +); --full-reference times
    it at the full batch instead.
    --steps-only skips the kernel table.
    """

  static func run(_ options: inout Options) throws {
    try options.requireNoPositional(name)
    #if DEBUG
      throw VerifyError(
        "refusing to time a debug build (numeric code is 10-200x slower); run "
          + "`swift run -c release verify profile`")
    #else
      let (presetName, config) = try options.modelPreset()
      let workers = try options.workers()
      let jsonPath = options.string("json")
      try profile(
        presetName: presetName, config: config, workers: workers, jsonPath: jsonPath,
        fullReference: options.flag("full-reference"), stepsOnly: options.flag("steps-only"))
    #endif
  }

  static func profile(
    presetName: String, config: ModelConfig, workers: Int, jsonPath: String?, fullReference: Bool, stepsOnly: Bool
  ) throws {
    let probes = stepsOnly ? [] : ProfileProbe.all(config: config)
    print("verify profile: preset \(presetName), pretraining batch \(ProfileProbe.batch) per view, \(workers) workers")
    let peak = measurePeakGFLOPS(workers: workers)
    print(String(format: "measured peak: %.1f GFLOP/s (4x24 FMA micro-kernel on L1-resident panels, %d workers)", peak, workers))

    // Validate everything first (the kernels' reference runs are timed on the way).
    print("checking \(probes.count) kernels and one whole pretraining step against the reference ...")
    var measurements = [ProfileMeasurement]()
    var failures = [String]()
    for probe in probes {
      let m = probe.measureReferenceAndCheck(workers: workers)
      if let problem = m.problem { failures.append("\(probe.name) \(probe.shape): \(problem)") }
      measurements.append(m)
    }
    let step = StepProfile(config: config)
    let stepReference = fullReference || step.referenceFeasible
    if stepReference, let problem = step.check(workers: workers) {
      failures.append("pretraining step at batch \(step.smallBatch): \(problem)")
    }
    if !failures.isEmpty {
      for failure in failures { print("MISMATCH \(failure)") }
      throw VerifyError("\(failures.count) optimized results differ from the reference")
    }
    if stepReference {
      print("all results match (\(probes.count) kernels, every output, abs 1e-4 + rel 1e-4; the pretraining step at "
        + "batch \(step.smallBatch), loss and every gradient, abs 2e-3 + rel 2e-3)")
    } else {
      print("all results match (\(probes.count) kernels, every output, abs 1e-4 + rel 1e-4). The whole step is not run on "
        + "the reference at this preset (\(String(format: "%.0f", step.flops / 8e9)) GFLOP per image, hours of reference "
        + "time; --full-reference forces it)")
    }

    // Then time.
    var table = [ProfileRow]()
    if !probes.isEmpty {
      for i in probes.indices { measurements[i].optimizedSeconds = probes[i].timeOptimized(workers: workers) }
      let rows = measurements.map { ProfileRow($0, peak: peak) }
      table = rows
      for (label, filter) in ProfileProbe.totals {
        let members = rows.filter { filter($0.name) }
        if !members.isEmpty { table.append(ProfileRow(total: label, members: members, peak: peak)) }
      }
      print("")
      print(ProfileRow.header)
      for row in table { print(row.line) }
      if measurements.contains(where: \.referenceScaled) {
        print("* reference timed on one batch element and multiplied by the batch size")
      }
      if measurements.contains(where: \.referenceReduced) {
        print("† reference (and the check) run on images of half the side or less, time multiplied by the operation count")
      }
      print("ref: Reference (Double, plain loops, 1 thread); opt: Optimized (Float32, SIMD, \(workers) workers);")
      print("times are medians; GFLOP/s and % peak are the optimized kernel's.")
    }

    // The whole step.
    print("")
    print("whole pretraining step (InfoNCE, batch \(ProfileProbe.batch) x 2 views, \(InfoNCEConstants.sampledPositions) "
      + "positions, forward + backward + Adam; \(String(format: "%.1f", step.flops / 1e9)) GFLOP in convolutions, GEMMs and InfoNCE):")
    let stepRow = step.measure(workers: workers, peak: peak, fullReference: fullReference)
    table.append(stepRow)
    print(ProfileRow.header)
    print(stepRow.line)
    let referenceNote = stepRow.referenceMilliseconds.isNaN
      ? "reference not timed at this preset"
      : String(format: "%.1f s reference", stepRow.referenceMilliseconds / 1e3)
        + (fullReference ? "" : " (+ extrapolated from batches \(step.smallBatch) and \(step.smallBatch + 1))")
        + String(format: "; %.0fx faster", stepRow.speedup)
    print(String(
      format: "step: %.3f s optimized (median), %@; %.1f GFLOP/s = %.1f%% of the measured peak",
      stepRow.optimizedMilliseconds / 1e3, referenceNote, stepRow.gflops, 100 * stepRow.fractionOfPeak))
    if let jsonPath {
      let report = ProfileReport(preset: presetName, workers: workers, batch: ProfileProbe.batch, peakGFLOPS: peak, rows: table)
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      try encoder.encode(report).write(to: URL(fileURLWithPath: jsonPath))
      print("wrote \(jsonPath)")
    }
  }
}

// MARK: - Table

struct ProfileReport: Codable {
  var preset: String
  var workers: Int
  var batch: Int
  var peakGFLOPS: Double
  var rows: [ProfileRow]
}

struct ProfileRow: Codable {
  var name: String
  var shape: String
  var referenceMilliseconds: Double
  var referenceScaled: Bool
  var referenceReduced: Bool
  var optimizedMilliseconds: Double
  var speedup: Double
  var gflops: Double
  var fractionOfPeak: Double

  init(_ m: ProfileMeasurement, peak: Double) {
    name = m.name
    shape = m.shape
    referenceMilliseconds = m.referenceSeconds * 1e3
    referenceScaled = m.referenceScaled
    referenceReduced = m.referenceReduced
    optimizedMilliseconds = m.optimizedSeconds * 1e3
    speedup = m.referenceSeconds / m.optimizedSeconds
    gflops = m.flops / m.optimizedSeconds / 1e9
    fractionOfPeak = gflops / peak
  }

  /// A sum over rows: total time, total FLOPs over total time.
  init(total label: String, members: [ProfileRow], peak: Double) {
    name = label
    shape = "\(members.count) rows"
    referenceMilliseconds = members.reduce(0) { $0 + $1.referenceMilliseconds }
    referenceScaled = members.contains(where: \.referenceScaled)
    referenceReduced = members.contains(where: \.referenceReduced)
    optimizedMilliseconds = members.reduce(0) { $0 + $1.optimizedMilliseconds }
    speedup = referenceMilliseconds / optimizedMilliseconds
    let flops = members.reduce(0) { $0 + $1.gflops * $1.optimizedMilliseconds * 1e-3 }
    gflops = flops / (optimizedMilliseconds * 1e-3)
    fractionOfPeak = gflops / peak
  }

  static let header =
    "kernel".padding(toLength: 30, withPad: " ", startingAt: 0) + "shape".padding(toLength: 30, withPad: " ", startingAt: 0)
    + "      ref ms        opt ms   speedup   GFLOP/s  % peak"

  var line: String {
    let mark = (referenceScaled ? "*" : "") + (referenceReduced ? "†" : "")
    let reference = String(format: "%12.2f", referenceMilliseconds) + mark.padding(toLength: 2, withPad: " ", startingAt: 0)
    let rest = String(format: "%11.3f %8.1fx %9.1f %6.1f%%", optimizedMilliseconds, speedup, gflops, 100 * fractionOfPeak)
    return name.padding(toLength: 30, withPad: " ", startingAt: 0) + shape.padding(toLength: 30, withPad: " ", startingAt: 0)
      + reference + rest
  }
}

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
  static let batch = 8
  /// Segmentation batch (docs/PROTOCOL.md section 4).
  static let segmentationBatch = 16

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

  /// The first output element outside |a - e| <= 1e-4 + 1e-4 |e| (TestSupport's "float32 kernel"
  /// preset, which this executable does not link), or nil.
  func compare(_ actual: [[Float]], _ expected: [[Double]]) -> String? {
    let absolute = 1e-4, relative = 1e-4
    if actual.count != expected.count { return "\(actual.count) outputs, expected \(expected.count)" }
    for (k, (a, e)) in zip(actual, expected).enumerated() {
      if a.count != e.count { return "output \(k): \(a.count) values, expected \(e.count)" }
      var bad = 0
      var first: String?
      for i in 0..<a.count {
        let limit = absolute + relative * abs(e[i])
        if !(abs(Double(a[i]) - e[i]) <= limit) {
          bad += 1
          if first == nil { first = "output \(k) index \(i): expected \(e[i]), actual \(a[i]), limit \(limit)" }
        }
      }
      if let first { return "\(bad)/\(a.count) outside tolerance; first \(first)" }
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

// MARK: - Kernels written once for both backends

/// Seeded inputs in [-1, 1), rounded through Float so both backends see the same numbers.
struct ProbeInputs {
  var rng: SplitMix64
  init(_ seed: UInt64) { rng = SplitMix64(seed: seed, stream: 0x5052_4F46) }
  mutating func values(_ count: Int, scale: Double = 1, offset: Double = 0) -> [Double] {
    (0..<count).map { _ in Double(Float(offset + scale * (2 * rng.uniform() - 1))) }
  }
}

protocol ProbeKernel: Sendable {
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]]
}

/// A kernel on square images of side `size`, whose work scales with size².
protocol SizedProbeKernel: ProbeKernel {
  var size: Int { get set }
}

func probeCast<B: Backend>(_ values: [Double], _: B) -> [B.Scalar] { values.map { B.Scalar($0) } }
func probeCast<B: Backend>(_ shape: Shape, _ values: [Double], _ b: B) -> Tensor<B.Scalar> {
  Tensor(shape: shape, data: probeCast(values, b))
}

struct Conv3x3Probe: SizedProbeKernel {
  var cin: Int, cout: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(cin * 1000 + cout + size))
    let shape = Shape(batch, cin, size, size)
    let x = probeCast(shape, r.values(shape.count), b)
    let w = probeCast(r.values(cout * cin * 9, scale: (3 / Double(9 * cin)).squareRoot()), b)
    if !backward { return { [b.conv3x3Forward(input: x, weight: w, outputChannels: cout).data] } }
    let dy = probeCast(Shape(batch, cout, size, size), r.values(batch * cout * size * size), b)
    return {
      let g = b.conv3x3Backward(input: x, weight: w, gradOutput: dy)
      return [g.gradInput.data, g.gradWeight]
    }
  }
}

struct Conv1x1Probe: SizedProbeKernel {
  var cin: Int, cout: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    conv1x1Call(b, input: Shape(batch, cin, size, size), cout: cout, backward: backward, seed: UInt64(cin * 1000 + cout + size + 1))
  }
}

/// The projection head's last layer as the pretraining step runs it (`projectionOutputRows`):
/// `rows` pixel rows laid out as one (1, cin, 1, rows) image. Not sized: its work does not depend
/// on the image side.
struct RowsConv1x1Probe: ProbeKernel {
  var cin: Int, cout: Int, rows: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    conv1x1Call(b, input: Shape(1, cin, 1, rows), cout: cout, backward: backward, seed: UInt64(cin * 1000 + cout + rows + 1))
  }
}

/// Seeded inputs of a 1x1 convolution (forward, or backward with a random output gradient) and
/// the call that runs it.
func conv1x1Call<B: Backend>(_ b: B, input shape: Shape, cout: Int, backward: Bool, seed: UInt64) -> () -> [[B.Scalar]] {
  var r = ProbeInputs(seed)
  let x = probeCast(shape, r.values(shape.count), b)
  let w = probeCast(r.values(cout * shape.c, scale: (3 / Double(shape.c)).squareRoot()), b)
  let bias = probeCast(r.values(cout), b)
  if !backward { return { [b.conv1x1Forward(input: x, weight: w, bias: bias).data] } }
  let outShape = Shape(shape.n, cout, shape.h, shape.w)
  let dy = probeCast(outShape, r.values(outShape.count), b)
  return {
    let g = b.conv1x1Backward(input: x, weight: w, gradOutput: dy)
    return [g.gradInput.data, g.gradWeight, g.gradBias]
  }
}

struct ConvTransposeProbe: SizedProbeKernel {
  var cin: Int, cout: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(cin * 1000 + cout + size + 2))
    let shape = Shape(batch, cin, size, size)
    let x = probeCast(shape, r.values(shape.count), b)
    let w = probeCast(r.values(cin * cout * 4, scale: (3 / Double(cin)).squareRoot()), b)
    let bias = probeCast(r.values(cout), b)
    if !backward { return { [b.convTranspose2x2Forward(input: x, weight: w, bias: bias).data] } }
    let dy = probeCast(Shape(batch, cout, 2 * size, 2 * size), r.values(batch * cout * 4 * size * size), b)
    return {
      let g = b.convTranspose2x2Backward(input: x, weight: w, gradOutput: dy)
      return [g.gradInput.data, g.gradWeight, g.gradBias]
    }
  }
}

struct BatchNormProbe: SizedProbeKernel {
  var channels: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(channels * 100 + size + 3))
    let shape = Shape(batch, channels, size, size)
    let x = probeCast(shape, r.values(shape.count, scale: 2, offset: 0.5), b)
    let weight = probeCast(r.values(channels, scale: 0.5, offset: 1), b)
    let bias = probeCast(r.values(channels), b)
    let mean = probeCast(r.values(channels), b)
    let variance = probeCast(r.values(channels, scale: 0.5, offset: 1), b)
    if !backward {
      return {
        var m = mean, v = variance
        let y = b.batchNormForward(input: x, weight: weight, bias: bias, runningMean: &m, runningVariance: &v, training: true)
        return [y.output.data, m, v]
      }
    }
    var m = mean, v = variance
    let saved = b.batchNormForward(input: x, weight: weight, bias: bias, runningMean: &m, runningVariance: &v, training: true).saved
    let dy = probeCast(shape, r.values(shape.count), b)
    return {
      let g = b.batchNormBackward(input: x, weight: weight, saved: saved, gradOutput: dy)
      return [g.gradInput.data, g.gradWeight, g.gradBias]
    }
  }
}

struct ReLUProbe: SizedProbeKernel {
  var channels: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(channels * 100 + size + 4))
    let shape = Shape(batch, channels, size, size)
    let x = probeCast(shape, r.values(shape.count), b)
    if !backward { return { [b.reluForward(input: x).data] } }
    let y = b.reluForward(input: x)
    let dy = probeCast(shape, r.values(shape.count), b)
    return { [b.reluBackward(output: y, gradOutput: dy).data] }
  }
}

struct MaxPoolProbe: SizedProbeKernel {
  var channels: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(channels * 100 + size + 5))
    let shape = Shape(batch, channels, size, size)
    let x = probeCast(shape, r.values(shape.count), b)
    if !backward { return { [b.maxPool2x2Forward(input: x).data] } }
    let dy = probeCast(Shape(batch, channels, size / 2, size / 2), r.values(shape.count / 4), b)
    return { [b.maxPool2x2Backward(input: x, gradOutput: dy).data] }
  }
}

struct ConcatProbe: SizedProbeKernel {
  var channels: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(channels * 100 + size + 6))
    let shape = Shape(batch, channels, size, size)
    let first = probeCast(shape, r.values(shape.count), b)
    let second = probeCast(shape, r.values(shape.count), b)
    if !backward { return { [b.concatChannels(first, second).data] } }
    let joined = b.concatChannels(first, second)
    return {
      let (p, q) = b.splitChannels(joined, firstChannels: channels)
      return [p.data, q.data]
    }
  }
}

struct WarpProbe: SizedProbeKernel {
  var channels: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(channels * 100 + size + 7))
    let shape = Shape(batch, channels, size, size)
    let x = probeCast(shape, r.values(shape.count), b)
    var rng = SplitMix64(seed: 7, stream: 1)
    let affines = (0..<batch).map { _ in sampleSpatialTransform(rng: &rng).affine }
    if !backward { return { [b.warpForward(input: x, affines: affines).data] } }
    return { [b.warpBackward(gradOutput: x, affines: affines).data] }
  }
}

struct L2NormalizeProbe: ProbeKernel {
  var rows: Int, columns: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(rows + columns + 8))
    let shape = Shape(rows, columns, 1, 1)
    let x = probeCast(shape, r.values(shape.count), b)
    if !backward { return { [b.l2NormalizeForward(input: x).data] } }
    let dy = probeCast(shape, r.values(shape.count), b)
    return { [b.l2NormalizeBackward(input: x, gradOutput: dy).data] }
  }
}

struct InfoNCEProbe: ProbeKernel {
  var rows: Int, columns: Int
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(rows + columns + 9))
    let shape = Shape(rows, columns, 1, 1)
    // Unit rows, rounded to Float after normalising.
    func unitRows() -> Tensor<B.Scalar> {
      var values = [Double]()
      for _ in 0..<rows {
        let row = r.values(columns)
        let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
        values += row.map { Double(Float($0 / norm)) }
      }
      return probeCast(shape, values, b)
    }
    let z = unitRows(), zPrime = unitRows()
    return {
      let l = b.infoNCE(z: z, zPrime: zPrime, temperature: InfoNCEConstants.temperature)
      return [[B.Scalar(l.loss)], l.gradZ.data, l.gradZPrime.data]
    }
  }
}

struct BarlowTwinsProbe: ProbeKernel {
  var rows: Int, columns: Int
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(rows + columns + 10))
    let shape = Shape(rows, columns, 1, 1)
    let base = r.values(shape.count)
    let z = probeCast(shape, base, b)
    let zPrime = probeCast(shape, zip(base, r.values(shape.count, scale: 0.5)).map { Double(Float($0 + $1)) }, b)
    return {
      let l = b.barlowTwins(z: z, zPrime: zPrime, lambda: BarlowTwinsConstants.lambda)
      return [[B.Scalar(l.loss)], l.gradZ.data, l.gradZPrime.data]
    }
  }
}

struct SoftDiceProbe: SizedProbeKernel {
  var classes: Int, size: Int
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(classes + size + 11))
    let shape = Shape(batch, classes, size, size)
    let logits = probeCast(shape, r.values(shape.count, scale: 3), b)
    var rng = SplitMix64(seed: 11)
    let labels = (0..<(batch * size * size)).map { _ in UInt8(rng.int(below: classes)) }
    return {
      let l = b.softDiceLoss(logits: logits, labels: labels)
      return [[B.Scalar(l.loss)], l.gradLogits.data]
    }
  }
}

struct AdamProbe: ProbeKernel {
  var count: Int
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(count + 12))
    let values = probeCast(r.values(count), b)
    let gradients = probeCast(r.values(count, scale: 0.1), b)
    let first = probeCast(r.values(count, scale: 0.01), b)
    let second = probeCast(r.values(count, scale: 0.005, offset: 0.005), b)
    return {
      var v = values, m = first, s = second
      b.adamUpdate(
        values: &v, gradients: gradients, firstMoment: &m, secondMoment: &s, range: 0..<count, learningRate: 4.7e-4,
        hyper: AdamHyperparameters(), step: 3)
      return [v, m, s]
    }
  }
}

// MARK: - The preset's layers

extension ProfileProbe {
  /// Every kernel of one pretraining step (and the segmentation loss) at the preset's shapes.
  static func all(config: ModelConfig) -> [ProfileProbe] {
    let n = batch
    let size = config.imageSize
    let w = config.widths
    let depth = config.depth
    var probes = [ProfileProbe]()
    func shape(_ c: Int, _ s: Int) -> String { "(\(n), \(c), \(s), \(s))" }

    // 3x3 convolutions of every DoubleConv: (name, cin, cout, size).
    var convs = [("inc", config.inputChannels, w[0], size)]
    for k in 1...depth { convs.append(("down\(k)", w[k - 1], w[k], size >> k)) }
    for k in 1...depth {
      let input = w[depth - k + 1]
      convs.append(("up\(k)", input, k == depth ? config.features : w[depth - k], size >> (depth - k)))
    }
    for (layer, cin, cout, s) in convs {
      for (index, (a, c)) in [(cin, cout), (cout, cout)].enumerated() {
        let macs = Double(n * a * c * 9 * s * s)
        let label = "\(layer).\(index * 3) \(a)->\(c)"
        probes.append(ProfileProbe(Conv3x3Probe(cin: a, cout: c, size: s, backward: false), name: "conv3x3 fwd \(label)", shape: shape(a, s), batch: n, flops: 2 * macs))
        probes.append(ProfileProbe(Conv3x3Probe(cin: a, cout: c, size: s, backward: true), name: "conv3x3 bwd \(label)", shape: shape(a, s), batch: n, flops: 4 * macs))
      }
    }
    // Transposed convolutions of the Up blocks.
    for k in 1...depth {
      let input = w[depth - k + 1], s = size >> (depth - k + 1)
      let macs = Double(n * input * (input / 2) * 4 * s * s)
      for backward in [false, true] {
        probes.append(ProfileProbe(
          ConvTransposeProbe(cin: input, cout: input / 2, size: s, backward: backward),
          name: "convT2x2 \(backward ? "bwd" : "fwd") up\(k)", shape: shape(input, s), batch: n, flops: (backward ? 4 : 2) * macs))
      }
    }
    // 1x1 convolutions: projection head and segmentation head. The projection head's last layer
    // runs on the sampled rows only (see `pretrainingLoss`).
    let rows = InfoNCEConstants.sampledPositions
    for backward in [false, true] {
      let macs = Double(rows * config.projectionHidden * config.projectionOutput)
      probes.append(ProfileProbe(
        RowsConv1x1Probe(cin: config.projectionHidden, cout: config.projectionOutput, rows: rows, backward: backward),
        name: "conv1x1 \(backward ? "bwd" : "fwd") proj net.3", shape: "(1, \(config.projectionHidden), 1, \(rows))", batch: 1,
        flops: (backward ? 4 : 2) * macs))
    }
    let heads = [
      ("proj net.0", config.features, config.projectionHidden, n),
      ("seg conv", config.features, config.classes, segmentationBatch),
    ]
    for (label, cin, cout, b) in heads {
      let macs = Double(b * cin * cout * size * size)
      for backward in [false, true] {
        probes.append(ProfileProbe(
          Conv1x1Probe(cin: cin, cout: cout, size: size, backward: backward),
          name: "conv1x1 \(backward ? "bwd" : "fwd") \(label)", shape: "(\(b), \(cin), \(size), \(size))", batch: b,
          flops: (backward ? 4 : 2) * macs))
      }
    }
    // Pointwise and data movement at the largest activations.
    let bnShapes = [(w[0], size), (config.features, size), (config.projectionHidden, size)]
    for (c, s) in bnShapes {
      let count = Double(n * c * s * s)
      for backward in [false, true] {
        probes.append(ProfileProbe(
          BatchNormProbe(channels: c, size: s, backward: backward), name: "batchNorm \(backward ? "bwd" : "fwd")",
          shape: shape(c, s), batch: n, flops: (backward ? 8 : 5) * count))
      }
    }
    for backward in [false, true] {
      let c = config.projectionHidden
      probes.append(ProfileProbe(
        ReLUProbe(channels: c, size: size, backward: backward), name: "relu \(backward ? "bwd" : "fwd")",
        shape: shape(c, size), batch: n, flops: Double(n * c * size * size)))
    }
    for k in 1...depth {
      let c = w[k - 1], s = size >> (k - 1)
      for backward in [false, true] {
        probes.append(ProfileProbe(
          MaxPoolProbe(channels: c, size: s, backward: backward), name: "maxPool \(backward ? "bwd" : "fwd") down\(k)",
          shape: shape(c, s), batch: n, flops: Double(n * c * s * s)))
        probes.append(ProfileProbe(
          ConcatProbe(channels: c, size: s, backward: backward), name: "\(backward ? "split" : "concat") up\(depth - k + 1)",
          shape: "2 x " + shape(c, s), batch: n, flops: 0))
      }
    }
    for backward in [false, true] {
      let c = config.projectionHidden  // the warp moves g's hidden activations
      probes.append(ProfileProbe(
        WarpProbe(channels: c, size: size, backward: backward), name: "warp \(backward ? "bwd" : "fwd") proj hidden",
        shape: shape(c, size), batch: n, flops: 8 * Double(n * c * size * size)))
    }
    // Losses on the M sampled positions, and Adam over every parameter.
    let m = InfoNCEConstants.sampledPositions, d = config.projectionOutput
    for backward in [false, true] {
      probes.append(ProfileProbe(
        L2NormalizeProbe(rows: m, columns: d, backward: backward), name: "l2Normalize \(backward ? "bwd" : "fwd")",
        shape: "(\(m), \(d))", batch: n, scalesWithBatch: false, flops: 3 * Double(m * d)))
    }
    probes.append(ProfileProbe(
      InfoNCEProbe(rows: m, columns: d), name: "infoNCE fwd+bwd", shape: "2 x (\(m), \(d))", batch: n,
      scalesWithBatch: false, flops: 3 * 2 * Double(4 * m * m * d)))
    probes.append(ProfileProbe(
      BarlowTwinsProbe(rows: m, columns: d), name: "barlowTwins fwd+bwd", shape: "2 x (\(m), \(d))", batch: n,
      scalesWithBatch: false, flops: 3 * 2 * Double(m * d * d)))
    probes.append(ProfileProbe(
      SoftDiceProbe(classes: config.classes, size: size), name: "softDice fwd+bwd",
      shape: "(\(segmentationBatch), \(config.classes), \(size), \(size))", batch: segmentationBatch,
      flops: 0))
    let parameters = ParameterLayout(config: config).count
    probes.append(ProfileProbe(
      AdamProbe(count: parameters), name: "adam", shape: "\(parameters) values", batch: n, scalesWithBatch: false,
      flops: 12 * Double(parameters)))
    return probes
  }
}

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
    let size = config.imageSize, w = config.widths, depth = config.depth
    var macs = 0.0
    func conv3x3(_ cin: Int, _ cout: Int, _ s: Int) { macs += 3 * n * Double(cin * cout * 9 * s * s) }
    conv3x3(config.inputChannels, w[0], size)
    conv3x3(w[0], w[0], size)
    for k in 1...depth {
      conv3x3(w[k - 1], w[k], size >> k)
      conv3x3(w[k], w[k], size >> k)
    }
    for k in 1...depth {
      let input = w[depth - k + 1], output = k == depth ? config.features : w[depth - k], s = size >> (depth - k)
      let transposedMacs: Int = input * (input / 2) * 4 * (s / 2) * (s / 2)
      macs += 3 * n * Double(transposedMacs)
      conv3x3(input, output, s)
      conv3x3(output, output, s)
    }
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
  /// |opt - ref| <= 2e-3 + 2e-3 |ref| (TestSupport's "float32 network" preset), or nil.
  func check(workers: Int) -> String? {
    var reference = referenceNetwork
    var optimized = reference.converted(to: OptimizedBackend(workers: workers))
    let expected = reference.pretrainingLoss(
      batch(smallBatch, as: Double.self), loss: Self.settings, training: true, computeGradients: true)
    let actual = optimized.pretrainingLoss(
      batch(smallBatch, as: Float.self), loss: Self.settings, training: true, computeGradients: true)
    let absolute = 2e-3, relative = 2e-3
    if !(abs(actual.loss - expected.loss) <= absolute + relative * abs(expected.loss)) {
      return "loss \(actual.loss), expected \(expected.loss)"
    }
    guard let g = actual.gradients, let e = expected.gradients else { return "no gradients" }
    for entry in reference.layout.entries where entry.role.isTrainable {
      for i in entry.range where !(abs(Double(g[i]) - e[i]) <= absolute + relative * abs(e[i])) {
        return "gradient \(entry.name)[\(i - entry.offset)] \(g[i]), expected \(e[i])"
      }
    }
    return nil
  }

  /// Times one full step (loss, gradients, Adam) on a network of backend `B`.
  func stepSeconds<B: Backend>(_ network: Pix2RepNetwork<B>, batch count: Int, reps: Int) -> Double {
    var net = network
    var optimizer = AdamOptimizer<B.Scalar>(layout: net.layout, learningRates: [.backbone: 4.7e-4, .projection: 4.7e-4])
    let b = batch(count, as: B.Scalar.self)
    return profileMedian(reps: reps) { net.pretrainingStep(b, loss: Self.settings, optimizer: &optimizer) }
  }

  func measure(workers: Int, peak: Double, fullReference: Bool) -> ProfileRow {
    let n = ProfileProbe.batch
    let optimized = referenceNetwork.converted(to: OptimizedBackend(workers: workers))
    _ = stepSeconds(optimized, batch: n, reps: 1)
    let optimizedSeconds = stepSeconds(optimized, batch: n, reps: 5)
    let referenceSeconds: Double
    if !fullReference && !referenceFeasible {
      referenceSeconds = .nan
    } else if fullReference {
      referenceSeconds = stepSeconds(referenceNetwork, batch: n, reps: 1)
    } else {
      let b = smallBatch
      let one = stepSeconds(referenceNetwork, batch: b, reps: 1)
      let two = stepSeconds(referenceNetwork, batch: b + 1, reps: 1)
      referenceSeconds = one + Double(n - b) * (two - one)
    }
    var m = ProfileMeasurement(
      name: fullReference ? "pretraining step" : "pretraining step (ref +)", shape: "(\(n), 1, \(config.imageSize), \(config.imageSize)) x 2",
      flops: flops, referenceSeconds: referenceSeconds, referenceScaled: false)
    m.optimizedSeconds = optimizedSeconds
    return ProfileRow(m, peak: peak)
  }
}
