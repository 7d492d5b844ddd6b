import Reference

/// Central-difference gradient checks in Double.
///
/// For a function `f(x) -> y` with an analytic backward, the scalar loss is `L = sum(y * dy)` for a
/// seeded random `dy`; the analytic gradient `dL/dx` is compared with `(L(x + h) - L(x - h)) / 2h` at
/// sampled entries.
public enum FiniteDifference {
  /// Default step: balances truncation (h^2) against rounding (eps / h) in Double.
  public static let defaultStep = 1e-6

  /// A seeded upstream gradient of `count` standard normal values.
  public static func upstream(count: Int, seed: UInt64) -> [Double] {
    var rng = SplitMix64(seed: seed, stream: 0xD0)
    return (0..<count).map { _ in rng.normal() }
  }

  /// sum(a * b) in Double.
  public static func dot(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "dot: \(a.count) vs \(b.count)")
    var s = 0.0
    for i in 0..<a.count { s += a[i] * b[i] }
    return s
  }

  /// Entries to probe: all when `count <= maxSamples`, otherwise a seeded sample that always
  /// includes the first and the last entry.
  public static func sampleIndices(count: Int, maxSamples: Int, seed: UInt64) -> [Int] {
    if count <= maxSamples { return Array(0..<count) }
    var rng = SplitMix64(seed: seed, stream: 0x5A)
    var picked = Set([0, count - 1])
    while picked.count < maxSamples { picked.insert(rng.int(below: count)) }
    return picked.sorted()
  }

  /// Checks `analytic` (the gradient of `loss` at `point`) at sampled entries.
  /// - Parameters:
  ///   - loss: the scalar loss as a function of the whole point.
  /// - Returns: the worst mismatch, or nil when all sampled entries are within tolerance.
  public static func check(
    _ label: String, point: [Double], analytic: [Double], maxSamples: Int = 64, seed: UInt64 = 1,
    step: Double = defaultStep, tolerance: Tolerance = .finiteDifference, loss: ([Double]) -> Double
  ) -> Mismatch? {
    if point.count != analytic.count {
      return Mismatch(
        label: "\(label): gradient count \(analytic.count), expected \(point.count)", index: -1,
        expected: Double(point.count), actual: Double(analytic.count), limit: 0, mismatches: 1, count: 0)
    }
    let indices = sampleIndices(count: point.count, maxSamples: maxSamples, seed: seed)
    var numeric = [Double]()
    var probed = [Double]()
    var x = point
    for i in indices {
      let saved = x[i]
      x[i] = saved + step
      let plus = loss(x)
      x[i] = saved - step
      let minus = loss(x)
      x[i] = saved
      numeric.append((plus - minus) / (2 * step))
      probed.append(analytic[i])
    }
    guard let m = firstMismatch(label, actual: probed, expected: numeric, tolerance: tolerance) else {
      return nil
    }
    return Mismatch(
      label: m.label + " (entry \(indices[max(m.index, 0)]) of \(point.count))", index: indices[max(m.index, 0)],
      expected: m.expected, actual: m.actual, limit: m.limit, mismatches: m.mismatches, count: m.count)
  }
}
