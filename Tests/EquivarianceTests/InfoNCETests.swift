import Foundation
import Reference
import TestExpectations
import Testing
import TestSupport

/// Pixel InfoNCE: its symmetries, and its value where it has a closed form.
@Suite struct InfoNCETests {
  static let tau = 0.53

  /// `t` with its rows reordered: row m of the result is row order[m] of t.
  static func permuteRows(_ t: Tensor<Double>, _ order: [Int]) -> Tensor<Double> {
    var out = Tensor<Double>(zeros: t.shape)
    for m in 0..<order.count {
      for c in 0..<t.shape.c { out[m, c, 0, 0] = t[order[m], c, 0, 0] }
    }
    return out
  }

  @Test("InfoNCE is symmetric in its two views (loss equal, gradients exchanged)")
  func symmetricInViews() {
    let z = randomUnitRows(7, 5, seed: 51), zPrime = randomUnitRows(7, 5, seed: 52)
    let forward = infoNCE(z: z, zPrime: zPrime, temperature: Self.tau)
    let swapped = infoNCE(z: zPrime, zPrime: z, temperature: Self.tau)
    expectClose("loss", swapped.loss, forward.loss, tolerance: .doubleRounding)
    expectClose("gradient of z", swapped.gradZPrime.data, forward.gradZ.data, tolerance: .doubleRounding)
    expectClose("gradient of z'", swapped.gradZ.data, forward.gradZPrime.data, tolerance: .doubleRounding)
  }

  @Test("InfoNCE is unchanged by a common permutation of the sampled positions (gradients permuted)")
  func commonPermutation() {
    let z = randomUnitRows(9, 4, seed: 53), zPrime = randomUnitRows(9, 4, seed: 54)
    var rng = SplitMix64(seed: 55)
    let order = rng.permutation(9)
    let forward = infoNCE(z: z, zPrime: zPrime, temperature: Self.tau)
    let permuted = infoNCE(z: Self.permuteRows(z, order), zPrime: Self.permuteRows(zPrime, order), temperature: Self.tau)
    expectClose("loss", permuted.loss, forward.loss, tolerance: .doubleRounding)
    expectClose("gradient of z", permuted.gradZ.data, Self.permuteRows(forward.gradZ, order).data,
      tolerance: .doubleRounding)
    expectClose("gradient of z'", permuted.gradZPrime.data, Self.permuteRows(forward.gradZPrime, order).data,
      tolerance: .doubleRounding)
    // Permuting one view only breaks the pairs, and the loss moves.
    let broken = infoNCE(z: Self.permuteRows(z, order), zPrime: zPrime, temperature: Self.tau)
    #expect(abs(broken.loss - forward.loss) > 1e-3)
  }

  @Test("InfoNCE of identical views with orthonormal rows is log(e^(1/tau) + 2M - 2) - 1/tau")
  func identicalOrthonormalViews() {
    // Row i's positive is itself (similarity 1/tau); its 2M - 2 negatives are orthogonal (0), so
    // every row's cross-entropy is -1/tau + log(e^(1/tau) + 2M - 2). At M = 1000, tau = 0.53 this
    // is 5.716, docs/PROTOCOL.md section 3's "identical views about 5.7" (random high-dimensional
    // rows are nearly orthogonal).
    let m = 6, d = 11
    // Gram-Schmidt on seeded random vectors: M orthonormal rows in d dimensions.
    var rows = randomUnitRows(m, d, seed: 56)
    for i in 0..<m {
      for j in 0..<i {
        var dot = 0.0
        for c in 0..<d { dot += rows[i, c, 0, 0] * rows[j, c, 0, 0] }
        for c in 0..<d { rows[i, c, 0, 0] -= dot * rows[j, c, 0, 0] }
      }
      rows = l2NormalizeForward(input: rows)
    }
    let closedForm = { (m: Int) in log(exp(1 / Self.tau) + Double(2 * m - 2)) - 1 / Self.tau }
    expectClose("M = 6", infoNCE(z: rows, zPrime: rows, temperature: Self.tau).loss, closedForm(m),
      tolerance: .doubleRounding)
    #expect(abs(closedForm(1000) - 5.7) < 0.02)
  }

  @Test("InfoNCE of identical views whose rows are all equal is log(2M - 1)")
  func collapsedViews() {
    // Every similarity is 1/tau, so each row's softmax is uniform over its 2M - 1 entries.
    let m = 5
    let one = randomUnitRows(1, 3, seed: 57)
    let rows = Tensor(shape: Shape(m, 3, 1, 1), data: Array([[Double]](repeating: one.data, count: m).joined()))
    let result = infoNCE(z: rows, zPrime: rows, temperature: Self.tau)
    expectClose("loss", result.loss, log(Double(2 * m - 1)), tolerance: .doubleRounding)
    // At a collapse the gradients of the cross-entropy cancel row by row.
    expectClose("gradient", result.gradZ.data, [Double](repeating: 0, count: rows.shape.count),
      tolerance: .doubleRounding)
  }

  @Test("InfoNCE of one pair is 0: its only logit is its positive")
  func onePair() {
    let result = infoNCE(z: randomUnitRows(1, 4, seed: 58), zPrime: randomUnitRows(1, 4, seed: 59), temperature: Self.tau)
    expectClose("loss", result.loss, 0, tolerance: .exact)
  }

  @Test("InfoNCE of random features at M = 1000, tau = 0.53 is log(2M - 1) = 7.60 plus 1/(2 d tau²)",
    .enabled(if: optimizedBuild, "2000 x 2000 similarities: about a second in release, over a minute in debug"))
  func randomFeatures() {
    // Independent random unit vectors in d dimensions have cosines of variance 1/d, so logits
    // S ~ N(0, sigma²) with sigma² = 1/(d tau²). Each row then costs log sum over 2M - 1 of e^S
    // minus its positive S: on average log(2M - 1) + sigma²/2. The M positive logits (each shared
    // by two rows) dominate the spread: standard error sqrt(sigma² / M).
    let m = 1000, d = 64
    let z = randomUnitRows(m, d, seed: 60), zPrime = randomUnitRows(m, d, seed: 61)
    let loss = infoNCE(z: z, zPrime: zPrime, temperature: Self.tau).loss
    let sigma2 = 1 / (Double(d) * Self.tau * Self.tau)
    let expected = log(Double(2 * m - 1)) + sigma2 / 2
    let statistical = Tolerance("4 standard errors", absolute: 4 * (sigma2 / Double(m)).squareRoot(), relative: 0)
    expectClose("random features", loss, expected, tolerance: statistical)
    #expect(abs(log(Double(2 * m - 1)) - 7.60) < 0.005)
  }
}
