import Foundation

/// SplitMix64: a small, fast, well-mixed 64-bit generator. Every random draw in the package comes
/// from one of these, seeded explicitly, so the same seed gives the same bits on every machine.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  public private(set) var state: UInt64

  public init(seed: UInt64) { state = seed }

  /// An independent stream for `(seed, stream)`, e.g. one per patient or per run.
  public init(seed: UInt64, stream: UInt64) {
    var mixer = SplitMix64(seed: seed ^ 0x5851_F42D_4C95_7F2D)
    let a = mixer.next()
    state = a ^ (stream &* 0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03
    _ = next()
  }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in [0, 1) with 53 random bits.
  public mutating func uniform() -> Double {
    Double(next() >> 11) * 0x1.0p-53
  }

  /// Uniform in [a, b).
  public mutating func uniform(_ a: Double, _ b: Double) -> Double {
    a + (b - a) * uniform()
  }

  /// True with probability p.
  public mutating func bernoulli(_ p: Double) -> Bool {
    uniform() < p
  }

  /// Standard normal by Box-Muller (one value per call, so the stream stays simple to reason about).
  public mutating func normal() -> Double {
    let u1 = 1.0 - uniform()  // (0, 1]
    let u2 = uniform()
    return (-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2)
  }

  /// Uniform integer in 0 ..< n (unbiased, by rejection).
  public mutating func int(below n: Int) -> Int {
    precondition(n > 0, "int(below:) needs n > 0")
    return Int(next(upperBound: UInt64(n)))
  }

  /// A uniformly random permutation of 0 ..< n (Fisher-Yates).
  public mutating func permutation(_ n: Int) -> [Int] {
    var p = Array(0..<n)
    if n < 2 { return p }
    for i in stride(from: n - 1, to: 0, by: -1) {
      p.swapAt(i, int(below: i + 1))
    }
    return p
  }

  /// A Poisson draw (Knuth's method; fine for the small means used here).
  public mutating func poisson(_ mean: Double) -> Int {
    let limit = exp(-mean)
    var k = 0
    var p = uniform()
    while p > limit {
      k += 1
      p *= uniform()
    }
    return k
  }
}
