import Reference
import TestSupport

// One catalogue of every kernel, written once against `Backend`: its name, the seeded inputs it
// draws for a shape, its calls on any backend with their labelled outputs, its tolerance against
// the reference, the small shapes RegressionTests sweeps, and its operation count for `verify
// profile`, which runs the same entries at a preset's layer shapes. The list is `kernelCatalog`
// (Catalog.swift).

// MARK: - The kernel protocol

/// The shape of one call: the main input (N, C, H, W), a second channel count (output channels,
/// the second tensor of a concatenation, Adam's step, ...) and a variant flag whose meaning each
/// kernel states in its doc comment.
package struct KernelShape: Sendable, Equatable, CustomStringConvertible {
  package var n: Int, c: Int, h: Int, w: Int
  package var other: Int
  package var variant: Int

  package init(_ n: Int, _ c: Int, _ h: Int, _ w: Int, other: Int = 0, variant: Int = 0) {
    self.n = n
    self.c = c
    self.h = h
    self.w = w
    self.other = other
    self.variant = variant
  }

  package var shape: Shape { Shape(n, c, h, w) }
  package var description: String { "(\(n), \(c), \(h), \(w)) other \(other) variant \(variant)" }
}

/// The passes of a kernel that `verify profile` times separately.
package enum KernelPass: Sendable {
  /// The forward pass, or the whole call of a kernel without a separate backward (a loss with its
  /// gradient, an optimiser's update).
  case forward
  /// The backward pass, on the inputs the forward was prepared with.
  case backward
}

/// A kernel (forward and backward) written once against `Backend`.
package protocol CatalogKernel: Sendable {
  var name: String { get }
  /// The accepted difference between the optimized (Float) and reference (Double) outputs.
  var tolerance: Tolerance { get }
  /// The small shapes RegressionTests runs, chosen to hit the optimized code's remainder paths.
  var cases: [KernelShape] { get }
  /// Draws the inputs of one call at `shape` from `inputs`, converted to `backend`'s scalars, and
  /// returns the calls on them. Every call can be repeated and returns the same outputs.
  func prepare<B: Backend>(_ backend: B, _ shape: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel
  /// Floating-point operations of one call of `pass` at `shape` (a multiply-add counts 2); 0 where
  /// none are counted (data movement; work the profile does not model).
  func flops(_ shape: KernelShape, _ pass: KernelPass) -> Double
}

extension CatalogKernel {
  package func flops(_ shape: KernelShape, _ pass: KernelPass) -> Double { 0 }

  /// Every output of the forward and then the backward pass, as Double.
  package func run<B: Backend>(_ backend: B, _ shape: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    prepare(backend, shape, &inputs).runAll().map(\.labeled)
  }
}

/// A kernel's calls on fixed inputs.
package struct PreparedKernel {
  package let forward: () -> [KernelOutput]
  /// nil for a kernel without a separate backward pass.
  package let backward: (() -> [KernelOutput])?

  package init(forward: @escaping () -> [KernelOutput], backward: (() -> [KernelOutput])? = nil) {
    self.forward = forward
    self.backward = backward
  }

  /// The call of `pass`; nil when the kernel has no such pass.
  package func call(_ pass: KernelPass) -> (() -> [KernelOutput])? {
    switch pass {
    case .forward: forward
    case .backward: backward
    }
  }

  /// The forward outputs followed by the backward's.
  package func runAll() -> [KernelOutput] { forward() + (backward?() ?? []) }
}

/// One labelled output of a kernel call in the backend's own scalars: converting it to Double
/// (`labeled`) happens when it is compared, outside the timed call.
package struct KernelOutput {
  package let label: String
  private let convert: () -> [Double]

  /// `scale` multiplies every value after the exact conversion to Double (for outputs whose
  /// entries are O(1 / count), so the absolute part of a tolerance does not swallow them).
  package init<S: BinaryFloatingPoint>(_ label: String, _ values: [S], scale: Double = 1) {
    self.label = label
    convert = { scale == 1 ? values.map { Double($0) } : values.map { Double($0) * scale } }
  }

  package init<S: BinaryFloatingPoint>(_ label: String, _ tensor: Tensor<S>, scale: Double = 1) {
    self.init(label, tensor.data, scale: scale)
  }

  package var labeled: LabeledOutput { LabeledOutput(label: label, values: convert()) }
}

/// One labelled output as Double (a Float converts exactly, so comparing these bit patterns
/// compares the Float bits).
package struct LabeledOutput {
  package let label: String
  package let values: [Double]

  package init(label: String, values: [Double]) {
    self.label = label
    self.values = values
  }
}

// MARK: - Seeded inputs

/// Seeded values rounded through Float, so the reference computes on exactly the optimized inputs.
package struct SeededInputs {
  package var rng: SplitMix64

  package init(seed: UInt64) { rng = SplitMix64(seed: seed, stream: 0x4B45_524E) }

  /// Standard normal values times `scale`, plus `offset`.
  package mutating func normal(_ count: Int, scale: Double = 1, offset: Double = 0) -> [Double] {
    (0..<count).map { _ in Double(Float(offset + scale * rng.normal())) }
  }

  /// Uniform values in [a, b).
  package mutating func uniform(_ count: Int, _ a: Double, _ b: Double) -> [Double] {
    (0..<count).map { _ in Double(Float(rng.uniform(a, b))) }
  }

  /// Multiples of 0.5 in [-2, 2]: many exact zeros and ties (the kinks of ReLU and max-pool).
  package mutating func quantized(_ count: Int) -> [Double] {
    (0..<count).map { _ in Double(rng.int(below: 9) - 4) * 0.5 }
  }

  package mutating func int(below n: Int) -> Int { rng.int(below: n) }
}

// MARK: - Conversions between Doubles and a backend's scalars

package func scalars<B: Backend>(_ values: [Double], for _: B) -> [B.Scalar] { values.map { B.Scalar($0) } }

package func tensor<B: Backend>(_ shape: Shape, _ values: [Double], for backend: B) -> Tensor<B.Scalar> {
  Tensor(shape: shape, data: scalars(values, for: backend))
}

package func doubles<S: BinaryFloatingPoint>(_ values: [S]) -> [Double] { values.map { Double($0) } }

package func output<S: BinaryFloatingPoint>(_ label: String, _ values: [S]) -> LabeledOutput {
  LabeledOutput(label: label, values: doubles(values))
}

package func output<S: BinaryFloatingPoint>(_ label: String, _ t: Tensor<S>) -> LabeledOutput {
  LabeledOutput(label: label, values: doubles(t.data))
}

// MARK: - Checks

/// The first output that differs from `expected` beyond `tolerance` (labels and counts before
/// values), as a message, or nil.
package func compareOutputs(
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
package func compareBits(_ context: String, actual: [LabeledOutput], expected: [LabeledOutput]) -> String? {
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
