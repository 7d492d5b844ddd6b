import Foundation
import Reference
import TestExpectations
import Testing
import TestSupport

/// The samplers draw what docs/PROTOCOL.md section 3 says, checked over 100,000 seeded draws
/// against the docs/PROTOCOL.md numbers written out here (not the library's constants), within 4
/// standard errors.
@Suite struct SamplerTests {
  static let draws = 100_000

  @Test("phi: flips x/y/none with p 0.45/0.32/0.23, theta ~ U(-pi/2, pi/2), s ~ U(0.33, 0.95), t ~ U(-(1-s), 1-s)")
  func spatialSampler() {
    var rng = SplitMix64(seed: 41)
    var flips: [Flip: Int] = [:]
    var thetas = [Double](), scales = [Double](), relativeOffsets = [Double]()
    for _ in 0..<Self.draws {
      let phi = sampleSpatialTransform(rng: &rng)
      flips[phi.flip, default: 0] += 1
      thetas.append(phi.theta)
      scales.append(phi.scale)
      // t / (1 - s) ~ U(-1, 1) for both offsets.
      relativeOffsets.append(phi.offsetX / (1 - phi.scale))
      relativeOffsets.append(phi.offsetY / (1 - phi.scale))
    }
    expectRate("flip x", hits: flips[.x, default: 0], total: Self.draws, probability: 0.45)
    expectRate("flip y", hits: flips[.y, default: 0], total: Self.draws, probability: 0.32)
    expectRate("no flip", hits: flips[.none, default: 0], total: Self.draws, probability: 0.23)
    expectUniform("theta", thetas, low: -Double.pi / 2, high: Double.pi / 2)
    expectUniform("zoom side", scales, low: 0.33, high: 0.95)
    expectUniform("offset / (1 - s)", relativeOffsets, low: -1, high: 1)
    // The range is covered: with 1e5 uniform draws a gap of 1e-3 of the range at either end has
    // probability e^-100.
    #expect(thetas.min()! < -Double.pi / 2 + 1e-3 * Double.pi && thetas.max()! > Double.pi / 2 - 1e-3 * Double.pi)
    #expect(scales.min()! < 0.33 + 1e-3 * 0.62 && scales.max()! > 0.95 - 1e-3 * 0.62)
  }

  @Test("phi's affine is R·C·F: det A = ±s² (minus when flipped) and A·0 = R·t")
  func spatialAffineFactors() {
    var rng = SplitMix64(seed: 42)
    for draw in 0..<1000 {
      let phi = sampleSpatialTransform(rng: &rng)
      let a = phi.affine
      let sign = phi.flip == .none ? 1.0 : -1.0
      expectClose("draw \(draw) det", a.a * a.d - a.b * a.c, sign * phi.scale * phi.scale, tolerance: .doubleRounding)
      let rotated = Affine2D.rotation(phi.theta).apply(phi.offsetX, phi.offsetY)
      expectClose("draw \(draw) A·0", [a.tx, a.ty], [rotated.x, rotated.y], tolerance: .doubleRounding)
      // F acts first: A·(1, 0) - A·0 = R·(±s, 0), negative x only for an x flip.
      let column = Affine2D.rotation(phi.theta).apply(phi.flip == .x ? -phi.scale : phi.scale, 0)
      expectClose("draw \(draw) A e_x", [a.a, a.c], [column.x, column.y], tolerance: .doubleRounding)
    }
  }

  @Test("intensity transforms apply with p 0.3/0.5/0.9/0.75/0.35 and draw docs/PROTOCOL.md's parameter ranges")
  func intensitySampler() {
    var rng = SplitMix64(seed: 43)
    var noise = [Double](), blur = [Double](), logGamma = [Double](), bias = [Double]()
    var inversions = 0
    for _ in 0..<Self.draws {
      let t = sampleIntensityParameters(rng: &rng)
      if let n = t.noise { noise.append(n.sigma) }
      if let b = t.blur { blur.append(b.sigmaX); blur.append(b.sigmaY) }
      if let g = t.logGamma { logGamma.append(g) }
      if let c = t.biasCoefficients {
        #expect(c.count == 10)
        bias += c
      }
      if t.invert { inversions += 1 }
    }
    expectRate("noise", hits: noise.count, total: Self.draws, probability: 0.3)
    expectRate("blur", hits: blur.count / 2, total: Self.draws, probability: 0.5)
    expectRate("gamma", hits: logGamma.count, total: Self.draws, probability: 0.9)
    expectRate("bias field", hits: bias.count / 10, total: Self.draws, probability: 0.75)
    expectRate("inversion", hits: inversions, total: Self.draws, probability: 0.35)
    expectUniform("noise sigma", noise, low: 0, high: 0.5)
    expectUniform("blur sigma", blur, low: 0, high: 1.3)
    expectUniform("log-gamma", logGamma, low: -0.05, high: 0.05)
    expectUniform("bias coefficient", bias, low: -0.9, high: 0.9)
  }

  @Test("the sampled noise seeds differ, so two views get different noise fields")
  func noiseSeedsDiffer() {
    var rng = SplitMix64(seed: 44)
    var seeds = Set<UInt64>()
    var count = 0
    for _ in 0..<1000 {
      if let n = sampleIntensityParameters(rng: &rng).noise {
        seeds.insert(n.seed)
        count += 1
      }
    }
    #expect(seeds.count == count && count > 0)
  }

  // MARK: - Pixel positions

  @Test("pixel positions are distinct, valid, M of them, and each valid position is drawn with rate M/V")
  func pixelPositionsUniform() {
    // 24 flags, 15 valid; draw 5 without replacement 20,000 times: each valid position appears in a
    // draw with probability 5/15.
    var rng = SplitMix64(seed: 45)
    let valid = (0..<24).map { $0 % 8 != 0 && $0 % 5 != 3 }
    let validCount = valid.filter { $0 }.count
    var hits = [Int](repeating: 0, count: valid.count)
    let trials = 20_000
    for _ in 0..<trials {
      let positions = samplePixelPositions(valid: valid, count: 5, rng: &rng)
      #expect(positions.count == 5 && Set(positions).count == 5)
      for p in positions {
        #expect(valid[p], "position \(p) is not valid")
        hits[p] += 1
      }
    }
    for p in 0..<valid.count where valid[p] {
      expectRate("position \(p)", hits: hits[p], total: trials, probability: 5 / Double(validCount))
    }
  }

  @Test("with fewer valid positions than M, every valid position is taken, in ascending order")
  func pixelPositionsAll() {
    var rng = SplitMix64(seed: 46)
    let valid = [false, true, true, false, true]
    #expect(samplePixelPositions(valid: valid, count: 1000, rng: &rng) == [1, 2, 4])
    #expect(samplePixelPositions(valid: valid, count: 3, rng: &rng) == [1, 2, 4])
    #expect(samplePixelPositions(valid: [false, false], count: 3, rng: &rng).isEmpty)
  }

  @Test("gathering pixels reads (n, c, y, x) at n·H·W + y·W + x, and scattering puts them back")
  func gatherScatter() {
    let t = randomTensor(Shape(2, 3, 4, 5), seed: 47)
    let positions = [0, 19, 20, 39, 7]
    let rows = gatherPixels(tensor: t, positions: positions)
    #expect(rows.shape == Shape(5, 3, 1, 1))
    for c in 0..<3 {
      expectClose("row 1 channel \(c)", rows[1, c, 0, 0], t[0, c, 3, 4], tolerance: .exact)
      expectClose("row 2 channel \(c)", rows[2, c, 0, 0], t[1, c, 0, 0], tolerance: .exact)
      expectClose("row 4 channel \(c)", rows[4, c, 0, 0], t[0, c, 1, 2], tolerance: .exact)
    }
    let back = scatterPixels(rows: rows, positions: positions, shape: t.shape)
    for n in 0..<2 {
      for y in 0..<4 {
        for x in 0..<5 {
          let kept = positions.contains(n * 20 + y * 5 + x)
          expectClose("scatter (\(n), \(y), \(x))", back[n, 2, y, x], kept ? t[n, 2, y, x] : 0, tolerance: .exact)
        }
      }
    }
  }
}
