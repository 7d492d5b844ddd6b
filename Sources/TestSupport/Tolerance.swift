import Reference

/// An accepted difference `|actual - expected| <= absolute + relative · |expected|`, with a name
/// that says where it comes from. Call sites use the named presets, never bare literals.
public struct Tolerance: Sendable, CustomStringConvertible {
  public let name: String
  public let absolute: Double
  public let relative: Double

  public init(_ name: String, absolute: Double, relative: Double) {
    self.name = name
    self.absolute = absolute
    self.relative = relative
  }

  /// The limit for one expected value.
  public func limit(for expected: Double) -> Double { absolute + relative * abs(expected) }

  public func accepts(_ actual: Double, _ expected: Double) -> Bool {
    // NaN is never accepted: `<=` with NaN is false.
    abs(actual - expected) <= limit(for: expected)
  }

  public var description: String { "\(name) (abs \(absolute), rel \(relative))" }

  // MARK: - Presets

  /// Operations that only move data (flips, rot90, concatenation): must be bit-exact.
  public static let exact = Tolerance("exact", absolute: 0, relative: 0)
  /// Double-precision rounding of a short computation.
  public static let doubleRounding = Tolerance("double rounding", absolute: 1e-12, relative: 1e-10)
  /// Central differences in Double against an analytic gradient (relative error below 1e-6).
  public static let finiteDifference = Tolerance("central difference", absolute: 1e-8, relative: 1e-6)
  /// Float32 kernels against the Double reference, single layers: ~1e-7 unit roundoff times the
  /// accumulation length of a few hundred terms, with headroom for cancellation.
  public static let float32Kernel = Tolerance("float32 kernel", absolute: 1e-4, relative: 1e-4)
  /// Float32 against Double through a whole network step (many layers, BatchNorm divisions).
  public static let float32Network = Tolerance("float32 network", absolute: 2e-3, relative: 2e-3)
}

/// The first mismatch of two arrays, or nil when every element is within tolerance.
public struct Mismatch: CustomStringConvertible, Sendable {
  public let label: String
  public let index: Int
  public let expected: Double
  public let actual: Double
  public let limit: Double
  public let mismatches: Int
  public let count: Int

  public var description: String {
    "\(label): \(mismatches)/\(count) elements outside tolerance; first at index \(index): "
      + "expected \(expected), actual \(actual), delta \(abs(actual - expected)), limit \(limit)"
  }
}

/// Compares element by element; shape (count) is checked before values.
public func firstMismatch<A: BinaryFloatingPoint, B: BinaryFloatingPoint>(
  _ label: String, actual: [A], expected: [B], tolerance: Tolerance
) -> Mismatch? {
  if actual.count != expected.count {
    return Mismatch(
      label: "\(label) (count \(actual.count), expected \(expected.count))", index: -1,
      expected: Double(expected.count), actual: Double(actual.count), limit: 0, mismatches: 1, count: 0)
  }
  var first: Mismatch?
  var bad = 0
  for i in 0..<actual.count {
    let a = Double(actual[i]), e = Double(expected[i])
    if !tolerance.accepts(a, e) {
      bad += 1
      if first == nil {
        first = Mismatch(
          label: label, index: i, expected: e, actual: a, limit: tolerance.limit(for: e), mismatches: 0,
          count: actual.count)
      }
    }
  }
  guard let f = first else { return nil }
  return Mismatch(
    label: "\(f.label) [\(tolerance.name)]", index: f.index, expected: f.expected, actual: f.actual,
    limit: f.limit, mismatches: bad, count: actual.count)
}
