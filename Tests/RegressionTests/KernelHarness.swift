import Optimized
import Reference
import Testing
import TestSupport

// One harness for every kernel: each entry of `kernelRegistry` runs its forward and backward on any
// `Backend`, from seeded inputs that are exactly representable in Float (so both backends see the
// same numbers), over a sweep of shapes that hits the optimized code's remainder paths. The tests
// below run every entry against the reference and across worker counts.

// MARK: - The kernel protocol

/// The shape of one case: the main input (N, C, H, W), a second channel count (output channels,
/// the second tensor of a concatenation, Adam's step, ...) and a variant flag whose meaning each
/// kernel states in the doc comment of its `cases` (KernelRegistry.swift).
struct KernelShape: Sendable, CustomStringConvertible {
  var n: Int, c: Int, h: Int, w: Int
  var other: Int
  var variant: Int

  init(_ n: Int, _ c: Int, _ h: Int, _ w: Int, other: Int = 0, variant: Int = 0) {
    self.n = n
    self.c = c
    self.h = h
    self.w = w
    self.other = other
    self.variant = variant
  }

  var shape: Shape { Shape(n, c, h, w) }
  var description: String { "(\(n), \(c), \(h), \(w)) other \(other) variant \(variant)" }
}

/// One labelled output of a kernel run, as Double (a Float converts exactly, so comparing these
/// bit patterns compares the Float bits).
struct LabeledOutput {
  let label: String
  let values: [Double]
}

/// A kernel (forward and backward) written once against `Backend`.
protocol RegressionKernel: Sendable {
  var name: String { get }
  /// The accepted difference between the optimized (Float) and reference (Double) outputs.
  var tolerance: Tolerance { get }
  var cases: [KernelShape] { get }
  /// Runs the kernel on `backend` from inputs drawn with `inputs`; returns every output.
  func run<B: Backend>(_ backend: B, _ shape: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput]
}

/// A registry entry as a test argument.
struct RegisteredKernel: Sendable, CustomTestStringConvertible {
  let kernel: any RegressionKernel
  var testDescription: String { kernel.name }
}

// MARK: - Seeded inputs

/// Seeded values rounded through Float, so the reference computes on exactly the optimized inputs.
struct SeededInputs {
  var rng: SplitMix64

  init(seed: UInt64) { rng = SplitMix64(seed: seed, stream: 0x4B45_524E) }

  /// Standard normal values times `scale`, plus `offset`.
  mutating func normal(_ count: Int, scale: Double = 1, offset: Double = 0) -> [Double] {
    (0..<count).map { _ in Double(Float(offset + scale * rng.normal())) }
  }

  /// Uniform values in [a, b).
  mutating func uniform(_ count: Int, _ a: Double, _ b: Double) -> [Double] {
    (0..<count).map { _ in Double(Float(rng.uniform(a, b))) }
  }

  /// Multiples of 0.5 in [-2, 2]: many exact zeros and ties (the kinks of ReLU and max-pool).
  mutating func quantized(_ count: Int) -> [Double] {
    (0..<count).map { _ in Double(rng.int(below: 9) - 4) * 0.5 }
  }

  mutating func int(below n: Int) -> Int { rng.int(below: n) }
}

// MARK: - Conversions between the test's Doubles and a backend's scalars

func scalars<B: Backend>(_ values: [Double], for _: B) -> [B.Scalar] { values.map { B.Scalar($0) } }

func tensor<B: Backend>(_ shape: Shape, _ values: [Double], for backend: B) -> Tensor<B.Scalar> {
  Tensor(shape: shape, data: scalars(values, for: backend))
}

func doubles<S: BinaryFloatingPoint>(_ values: [S]) -> [Double] { values.map { Double($0) } }

func output<S: BinaryFloatingPoint>(_ label: String, _ values: [S]) -> LabeledOutput {
  LabeledOutput(label: label, values: doubles(values))
}

func output<S: BinaryFloatingPoint>(_ label: String, _ t: Tensor<S>) -> LabeledOutput {
  LabeledOutput(label: label, values: doubles(t.data))
}

// MARK: - Checks

/// The first output that differs from `expected` beyond `tolerance` (counts before values), as a
/// message, or nil.
func compareOutputs(
  _ context: String, actual: [LabeledOutput], expected: [LabeledOutput], tolerance: Tolerance
) -> String? {
  if actual.map(\.label) != expected.map(\.label) {
    return "\(context): outputs \(actual.map(\.label)), expected \(expected.map(\.label))"
  }
  for (a, e) in zip(actual, expected) {
    if let m = firstMismatch("\(context) \(a.label)", actual: a.values, expected: e.values, tolerance: tolerance) {
      return m.description
    }
  }
  return nil
}

/// The first output whose bits differ from `expected`, as a message, or nil.
func compareBits(_ context: String, actual: [LabeledOutput], expected: [LabeledOutput]) -> String? {
  for (a, e) in zip(actual, expected) {
    if a.values.count != e.values.count {
      return "\(context) \(a.label): count \(a.values.count), expected \(e.values.count)"
    }
    if let i = a.values.indices.first(where: { a.values[$0].bitPattern != e.values[$0].bitPattern }) {
      return "\(context) \(a.label): index \(i) is \(a.values[i]), expected \(e.values[i]) bit for bit"
    }
  }
  return nil
}

/// Seed of one case, so every case draws different numbers and reruns draw the same.
func caseSeed(_ kernel: any RegressionKernel, _ index: Int) -> UInt64 {
  FNV1a.hash(kernel.name.utf8) &+ UInt64(index)
}

func runKernel<B: Backend>(_ kernel: any RegressionKernel, on backend: B, case index: Int) -> [LabeledOutput] {
  var inputs = SeededInputs(seed: caseSeed(kernel, index))
  return kernel.run(backend, kernel.cases[index], &inputs)
}

/// Records an issue for every case where the optimized kernel (2 workers) differs from the
/// reference by more than the kernel's tolerance.
func expectMatchesReference(_ kernel: any RegressionKernel) {
  for index in kernel.cases.indices {
    let expected = runKernel(kernel, on: ReferenceBackend(), case: index)
    let actual = runKernel(kernel, on: OptimizedBackend(workers: 2), case: index)
    let context = "\(kernel.name) \(kernel.cases[index])"
    if let problem = compareOutputs(context, actual: actual, expected: expected, tolerance: kernel.tolerance) {
      Issue.record(Comment(rawValue: problem))
    }
  }
}

/// Records an issue for every case where the optimized kernel's bits with `workers` workers differ
/// from its bits with one.
func expectDeterministic(_ kernel: any RegressionKernel, workers counts: [Int]) {
  for index in kernel.cases.indices {
    let single = runKernel(kernel, on: OptimizedBackend(workers: 1), case: index)
    for workers in counts {
      let actual = runKernel(kernel, on: OptimizedBackend(workers: workers), case: index)
      let context = "\(kernel.name) \(kernel.cases[index]) workers \(workers) vs 1"
      if let problem = compareBits(context, actual: actual, expected: single) {
        Issue.record(Comment(rawValue: problem))
      }
    }
  }
}

// MARK: - Tests

@Suite struct KernelRegressionTests {
  @Test("every optimized kernel matches its reference over the shape sweep", arguments: kernelRegistry)
  func matchesReference(_ entry: RegisteredKernel) {
    #expect(!entry.kernel.cases.isEmpty, "\(entry.kernel.name) has no cases")
    expectMatchesReference(entry.kernel)
  }

  @Test("every optimized kernel gives bit-identical results for 1, 2, 3 and 8 workers", arguments: kernelRegistry)
  func deterministicAcrossWorkers(_ entry: RegisteredKernel) {
    expectDeterministic(entry.kernel, workers: [2, 3, 8])
  }

  @Test("the registry covers every Backend kernel and the channel counts 1, 3, 7, 8, 9, 15, 16, 17, 33")
  func registryCoverage() {
    let names = Set(kernelRegistry.map(\.kernel.name))
    for required in [
      "conv3x3", "conv1x1", "convTranspose2x2", "batchNorm (training)", "batchNorm (evaluation)", "relu",
      "maxPool2x2", "concat/split", "warp", "l2Normalize", "infoNCE", "barlowTwins", "softDice", "adam",
      "intensityAugmentation", "globalAveragePool", "consistencyLoss", "emaUpdate", "simCLR objective",
    ] {
      #expect(names.contains(required), "no registry entry for \(required)")
    }
    for name in ["conv3x3", "conv1x1", "convTranspose2x2"] {
      guard let kernel = kernelRegistry.first(where: { $0.kernel.name == name })?.kernel else { continue }
      let channels = Set(kernel.cases.flatMap { [$0.c, $0.other] })
      let batches = Set(kernel.cases.map(\.n))
      for required in [1, 3, 7, 8, 9, 15, 16, 17, 33] {
        #expect(channels.contains(required), "\(name) never uses \(required) channels")
      }
      #expect(batches.contains(1) && batches.contains(3), "\(name) needs batch 1 and batch 3 cases")
      #expect(kernel.cases.contains { $0.h == 9 && $0.w == 13 }, "\(name) needs a 9x13 case")
    }
  }
}
