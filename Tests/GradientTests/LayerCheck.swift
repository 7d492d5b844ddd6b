import Reference
import Testing
import TestSupport

/// Seeded inputs for the layer gradient tests, and the assertion that an analytic gradient matches
/// central differences.
enum LayerCheck {
  /// `count` values uniform in `range`, from stream `seed`.
  static func uniform(count: Int, seed: UInt64, in range: Range<Double> = -1..<1) -> [Double] {
    var rng = SplitMix64(seed: seed, stream: 0x1A7E)
    return (0..<count).map { _ in rng.uniform(range.lowerBound, range.upperBound) }
  }

  /// A tensor of values uniform in `range`.
  static func tensor(_ shape: Shape, seed: UInt64, in range: Range<Double> = -1..<1) -> Tensor<Double> {
    Tensor(shape: shape, data: uniform(count: shape.count, seed: seed, in: range))
  }

  /// A tensor whose values are at least `margin` away from 0 (random sign, magnitude in
  /// [margin, margin + 1)), so a step of 1e-6 never crosses the ReLU kink.
  static func awayFromZero(_ shape: Shape, seed: UInt64, margin: Double = 0.1) -> Tensor<Double> {
    var rng = SplitMix64(seed: seed, stream: 0x2E10)
    let data = (0..<shape.count).map { _ in
      let magnitude = margin + rng.uniform()
      return rng.bernoulli(0.5) ? magnitude : -magnitude
    }
    return Tensor(shape: shape, data: data)
  }

  /// A tensor whose values are a random permutation of 0, 0.1, 0.2, ... plus noise under 0.01:
  /// all distinct by more than 0.08, so every max-pool window has a clear winner.
  static func distinct(_ shape: Shape, seed: UInt64) -> Tensor<Double> {
    var rng = SplitMix64(seed: seed, stream: 0xD157)
    let order = rng.permutation(shape.count)
    return Tensor(shape: shape, data: order.map { 0.1 * Double($0) + 0.01 * rng.uniform() })
  }

  /// A seeded upstream gradient `dy` for an output of `shape`.
  static func upstream(_ shape: Shape, seed: UInt64) -> Tensor<Double> {
    Tensor(shape: shape, data: FiniteDifference.upstream(count: shape.count, seed: seed))
  }

  /// Expects `analytic` to be the gradient of `loss` at `point` (central differences, relative error
  /// under 1e-6, `Tolerance.finiteDifference`); a failure carries the Mismatch description.
  static func expectGradient(
    _ label: String, point: [Double], analytic: [Double],
    sourceLocation: SourceLocation = #_sourceLocation, loss: ([Double]) -> Double
  ) {
    let mismatch = FiniteDifference.check(label, point: point, analytic: analytic, loss: loss)
    #expect(mismatch == nil, "\(mismatch?.description ?? "")", sourceLocation: sourceLocation)
  }

}
