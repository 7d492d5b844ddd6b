import Foundation
import Reference
import TestExpectations
import Testing
import TestSupport

/// Pixel Barlow Twins: zero (up to its eps) where the two views agree and are decorrelated, and
/// growing with off-diagonal correlation as `sum (C_ii - 1)² + lambda sum C_ij²` says.
@Suite struct BarlowTwinsTests {
  static let eps = BarlowTwinsConstants.epsilon

  /// Column k (k = 1 ... 7) of the 8 x 8 Sylvester Hadamard matrix, entry (p, k) = (-1)^popcount(p & k):
  /// entries ±1, each column of mean 0 and biased variance 1, the columns mutually orthogonal. So
  /// its first d columns are standardised, decorrelated pixel vectors, exactly representable.
  static func hadamardColumns(_ d: Int) -> Tensor<Double> {
    var t = Tensor<Double>(zeros: Shape(8, d, 1, 1))
    for p in 0..<8 {
      for k in 0..<d { t[p, k, 0, 0] = (p & (k + 1)).nonzeroBitCount % 2 == 0 ? 1 : -1 }
    }
    return t
  }

  @Test("Barlow Twins of identical, decorrelated, standardised views is 0 up to eps: d·(eps/(1 + eps))²")
  func identicalDecorrelated() {
    // Standardising divides by sqrt(1 + eps), so C = I / (1 + eps): each diagonal term is
    // (1/(1 + eps) - 1)² = (eps/(1 + eps))², every off-diagonal term 0. The gradient is of the same
    // order: dL/du_i = (2/N)(C_ii - 1) u_i, of which standardisation keeps the fraction eps/(1 + eps)
    // along u_i, so dL/dz = -2 (eps/(1 + eps))² z / (N (1 + eps)) for each view.
    let e = Self.eps / (1 + Self.eps)
    for d in [1, 4, 7] {
      let views = Self.hadamardColumns(d)
      let result = barlowTwins(z: views, zPrime: views, lambda: 5e-3)
      expectClose("d = \(d) loss", result.loss, Double(d) * e * e, tolerance: .doubleRounding)
      #expect(result.loss < 1e-9)
      let gradient = views.data.map { -2 * e * e * $0 / (8 * (1 + Self.eps)) }
      expectClose("d = \(d) gradient of z", result.gradZ.data, gradient, tolerance: .doubleRounding)
      expectClose("d = \(d) gradient of z'", result.gradZPrime.data, gradient, tolerance: .doubleRounding)
    }
  }

  @Test("Barlow Twins grows with off-diagonal correlation rho as 2 lambda rho² / (1 + eps)²",
    arguments: [5e-3, 0.7])
  func growsWithCorrelation(lambda: Double) {
    // Identical views whose two components are a and rho·a + sqrt(1 - rho²)·b, with a and b
    // standardised and orthogonal: both components are standardised and C = [[1, rho], [rho, 1]]
    // / (1 + eps), so loss = 2 (eps/(1 + eps))² + 2 lambda rho² / (1 + eps)².
    let basis = Self.hadamardColumns(2)
    var previous = -1.0
    for rho in [0.0, 0.1, 0.3, 0.6, 0.9] {
      var views = basis
      for p in 0..<8 {
        views[p, 1, 0, 0] = rho * basis[p, 0, 0, 0] + (1 - rho * rho).squareRoot() * basis[p, 1, 0, 0]
      }
      let loss = barlowTwins(z: views, zPrime: views, lambda: lambda).loss
      let shrink = 1 / (1 + Self.eps)
      let expected = 2 * (Self.eps * shrink) * (Self.eps * shrink) + 2 * lambda * rho * rho * shrink * shrink
      expectClose("lambda \(lambda) rho \(rho)", loss, expected, tolerance: .doubleRounding)
      #expect(loss > previous, "loss \(loss) at rho \(rho) not above \(previous)")
      previous = loss
    }
  }

  @Test("Barlow Twins of uncorrelated standardised views pays the whole diagonal: C = 0, loss = d")
  func uncorrelatedViews() {
    // z' takes Hadamard columns orthogonal to z's: C = 0, loss = d exactly (each (0 - 1)²).
    let all = Self.hadamardColumns(6)
    var z = Tensor<Double>(zeros: Shape(8, 3, 1, 1)), zPrime = z
    for p in 0..<8 {
      for k in 0..<3 {
        z[p, k, 0, 0] = all[p, k, 0, 0]
        zPrime[p, k, 0, 0] = all[p, k + 3, 0, 0]
      }
    }
    expectClose("loss", barlowTwins(z: z, zPrime: zPrime, lambda: 5e-3).loss, 3, tolerance: .doubleRounding)
  }

  @Test("Barlow Twins is unchanged by a common permutation of the pixels and by rescaling a component")
  func invariances() {
    // Standardisation removes each component's offset and scale, up to the eps inside the square
    // root (relative effect eps / variance, here under 1e-4); the pixel order never matters.
    let z = randomTensor(Shape(12, 4, 1, 1), seed: 71), zPrime = randomTensor(Shape(12, 4, 1, 1), seed: 72)
    let loss = barlowTwins(z: z, zPrime: zPrime, lambda: 5e-3).loss
    var rng = SplitMix64(seed: 73)
    let order = rng.permutation(12)
    var zP = z, zPrimeP = zPrime
    for m in 0..<12 {
      for c in 0..<4 {
        zP[m, c, 0, 0] = z[order[m], c, 0, 0]
        zPrimeP[m, c, 0, 0] = zPrime[order[m], c, 0, 0]
      }
    }
    expectClose("permuted", barlowTwins(z: zP, zPrime: zPrimeP, lambda: 5e-3).loss, loss, tolerance: .doubleRounding)
    var scaled = z
    for m in 0..<12 { scaled[m, 2, 0, 0] = 3 * z[m, 2, 0, 0] + 5 }
    let epsEffect = Tolerance("eps / variance", absolute: 0, relative: 1e-4)
    expectClose("rescaled", barlowTwins(z: scaled, zPrime: zPrime, lambda: 5e-3).loss, loss, tolerance: epsEffect)
  }
}
