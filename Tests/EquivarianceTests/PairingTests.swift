import Foundation
import Reference
import Testing
import TestSupport

/// The pairing z = phi·g(v), z' = g(phi·v) for a pointwise network g (1x1 convolutions and ReLU):
/// g commutes with any data movement, so the two sides differ only by where bilinear interpolation
/// happens, and positives are nearly parallel.
@Suite struct PairingTests {
  /// g: 1x1 conv 3 -> 16, ReLU, 1x1 conv 16 -> 8, with seeded weights.
  static func network(_ v: Tensor<Double>) -> Tensor<Double> {
    var rng = SplitMix64(seed: 81)
    let w1 = (0..<(16 * 3)).map { _ in rng.uniform(-1, 1) }, b1 = (0..<16).map { _ in rng.uniform(-0.5, 0.5) }
    let w2 = (0..<(8 * 16)).map { _ in rng.uniform(-1, 1) }, b2 = (0..<8).map { _ in rng.uniform(-0.5, 0.5) }
    let hidden = reluForward(input: conv1x1Forward(input: v, weight: w1, bias: b1))
    return conv1x1Forward(input: hidden, weight: w2, bias: b2)
  }

  /// Cosine similarity of the feature vectors at (n, y, x) of a and b.
  static func cosine(_ a: Tensor<Double>, _ b: Tensor<Double>, _ n: Int, _ y: Int, _ x: Int) -> Double {
    var ab = 0.0, aa = 0.0, bb = 0.0
    for c in 0..<a.shape.c {
      ab += a[n, c, y, x] * b[n, c, y, x]
      aa += a[n, c, y, x] * a[n, c, y, x]
      bb += b[n, c, y, x] * b[n, c, y, x]
    }
    return ab / (aa * bb).squareRoot()
  }

  @Test("for a pointwise network, phi·g(v) = g(phi·v) exactly when phi is a flip or a 90-degree rotation",
    arguments: AxisPermutation.allCases)
  func pairingExactForPermutations(permutation: AxisPermutation) {
    let v = randomTensor(Shape(2, 3, 6, 6), seed: 82)
    let affines = [permutation.affine, permutation.affine]
    expectExact("pairing under \(permutation)",
      warpForward(input: Self.network(v), affines: affines),
      Self.network(warpForward(input: v, affines: affines)))
  }

  @Test("for a pointwise network, phi·g(v) and g(phi·v) agree at valid pixels of smooth images: positives at cosine ~1")
  func pairingAgreesForSampledTransforms() throws {
    // Both sides approximate g(v(A·p)): one interpolates g∘v, the other v. Where g is linear over
    // the bilinear cell they differ by O(|w|²/8) for a plane wave of frequency |w|; where a ReLU
    // kink crosses the cell, by first-order terms. So: mean positive cosine above 0.999 and every
    // positive above 0.99 (at |w| = 2pi/24 this measured 0.99985 and 0.9943), while the same
    // features paired without phi, the control, have mean cosine 0.60.
    let frequency = 2 * Double.pi / 24
    let s = Shape(2, 3, 20, 20)
    let v = planeWaves(s, frequency: frequency, seed: 83)
    let unwarped = Self.network(v)
    var rng = SplitMix64(seed: 84)
    var worst = 1.0, pairedSum = 0.0, unpairedSum = 0.0, count = 0
    for _ in 0..<8 {
      let affines = [sampleSpatialTransform(rng: &rng).affine, sampleSpatialTransform(rng: &rng).affine]
      let z = warpForward(input: unwarped, affines: affines)
      let zPrime = Self.network(warpForward(input: v, affines: affines))
      let valid = validityMask(affines: affines, height: s.h, width: s.w)
      for n in 0..<s.n {
        for y in 0..<s.h {
          for x in 0..<s.w where valid[n * s.plane + y * s.w + x] {
            let positive = Self.cosine(z, zPrime, n, y, x)
            worst = min(worst, positive)
            pairedSum += positive
            unpairedSum += Self.cosine(unwarped, zPrime, n, y, x)
            count += 1
          }
        }
      }
    }
    try #require(count > 8 * s.n * s.plane / 10, "only \(count) valid pixels")
    #expect(pairedSum / Double(count) > 0.999, "mean positive cosine \(pairedSum / Double(count))")
    #expect(worst > 0.99, "worst positive cosine \(worst)")
    #expect(unpairedSum / Double(count) < 0.7, "unpaired mean cosine \(unpairedSum / Double(count))")
  }
}
