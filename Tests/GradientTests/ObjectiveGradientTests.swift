import Reference
import Testing
import TestSupport

/// The Pix2Rep objective's backward passes against central differences in Double
/// (`Tolerance.finiteDifference`), with `L = sum(out * dout)` for a seeded `dout`.
@Suite struct ObjectiveGradientTests {
  /// A tensor of values uniform in [-1, 1) from `seed`.
  static func tensor(_ shape: Shape, seed: UInt64) -> Tensor<Double> {
    var rng = SplitMix64(seed: seed, stream: 0x0B1E)
    return Tensor(shape: shape, data: (0..<shape.count).map { _ in rng.uniform(-1, 1) })
  }

  /// Expects `analytic` to be the gradient of `loss` at `point` by central differences.
  static func expectGradient(
    _ label: String, point: [Double], analytic: [Double],
    sourceLocation: SourceLocation = #_sourceLocation, loss: ([Double]) -> Double
  ) {
    let mismatch = FiniteDifference.check(label, point: point, analytic: analytic, loss: loss)
    #expect(mismatch == nil, "\(mismatch?.description ?? "")", sourceLocation: sourceLocation)
  }

  // MARK: - Warp

  @Test("warpBackward is the gradient of warpForward with respect to the warped tensor")
  func warp() {
    let shape = Shape(2, 2, 5, 6)
    var rng = SplitMix64(seed: 201)
    let affines = [sampleSpatialTransform(rng: &rng).affine, Affine2D(a: 1.3, b: 0.2, tx: 0.3, c: -0.4, d: 0.9, ty: -0.1)]
    let input = Self.tensor(shape, seed: 202)
    let dy = FiniteDifference.upstream(count: shape.count, seed: 203)
    let gradInput = warpBackward(gradOutput: Tensor(shape: shape, data: dy), affines: affines)
    Self.expectGradient("warp input", point: input.data, analytic: gradInput.data) {
      FiniteDifference.dot(warpForward(input: Tensor(shape: shape, data: $0), affines: affines).data, dy)
    }
  }

  @Test("warpBackward is the adjoint of warpForward: <warp(x), g> = <x, warpBackward(g)>")
  func warpAdjoint() {
    let shape = Shape(3, 1, 7, 4)
    var rng = SplitMix64(seed: 204)
    let affines = (0..<3).map { _ in sampleSpatialTransform(rng: &rng).affine }
    let x = Self.tensor(shape, seed: 205), g = Self.tensor(shape, seed: 206)
    let left = FiniteDifference.dot(warpForward(input: x, affines: affines).data, g.data)
    let right = FiniteDifference.dot(x.data, warpBackward(gradOutput: g, affines: affines).data)
    #expect(Tolerance.doubleRounding.accepts(left, right), "<warp x, g> \(left) vs <x, warp* g> \(right)")
  }

  // MARK: - Pixel gather and scatter

  @Test("scatterPixels is the adjoint of gatherPixels")
  func gatherScatterAdjoint() {
    let shape = Shape(2, 3, 4, 5)
    let positions = [3, 0, 39, 22, 17]
    let t = Self.tensor(shape, seed: 207), rows = Self.tensor(Shape(5, 3, 1, 1), seed: 208)
    let left = FiniteDifference.dot(gatherPixels(tensor: t, positions: positions).data, rows.data)
    let right = FiniteDifference.dot(t.data, scatterPixels(rows: rows, positions: positions, shape: shape).data)
    #expect(Tolerance.doubleRounding.accepts(left, right), "<gather t, r> \(left) vs <t, scatter r> \(right)")
  }

  // MARK: - L2 normalisation

  @Test("l2NormalizeBackward matches central differences")
  func l2Normalize() {
    let shape = Shape(5, 4, 1, 1)
    let input = Self.tensor(shape, seed: 209)
    let dy = FiniteDifference.upstream(count: shape.count, seed: 210)
    let gradInput = l2NormalizeBackward(input: input, gradOutput: Tensor(shape: shape, data: dy))
    Self.expectGradient("l2 normalise input", point: input.data, analytic: gradInput.data) {
      FiniteDifference.dot(l2NormalizeForward(input: Tensor(shape: shape, data: $0)).data, dy)
    }
  }

  @Test("l2NormalizeForward maps a zero row to zero and other rows to unit norm")
  func l2NormalizeZeroRow() {
    let input = Tensor<Double>(shape: Shape(2, 2, 1, 1), data: [0, 0, 3, -4])
    let output = l2NormalizeForward(input: input)
    #expect(output.data == [0, 0, 0.6, -0.8])
  }

  // MARK: - InfoNCE

  @Test("infoNCE gradients match central differences for both views", arguments: [(5, 3), (2, 4)])
  func infoNCEGradients(pairs: Int, dimension: Int) {
    let shape = Shape(pairs, dimension, 1, 1)
    let z = l2NormalizeForward(input: Self.tensor(shape, seed: 211))
    let zPrime = l2NormalizeForward(input: Self.tensor(shape, seed: 212))
    let result = infoNCE(z: z, zPrime: zPrime, temperature: 0.53)
    Self.expectGradient("infoNCE z", point: z.data, analytic: result.gradZ.data) {
      infoNCE(z: Tensor(shape: shape, data: $0), zPrime: zPrime, temperature: 0.53).loss
    }
    Self.expectGradient("infoNCE z'", point: zPrime.data, analytic: result.gradZPrime.data) {
      infoNCE(z: z, zPrime: Tensor(shape: shape, data: $0), temperature: 0.53).loss
    }
  }

  @Test("infoNCE after l2 normalisation: the chained gradient matches central differences")
  func infoNCEOfNormalizedRows() {
    let shape = Shape(4, 3, 1, 1)
    let rows = Self.tensor(shape, seed: 213), otherRows = Self.tensor(shape, seed: 214)
    let loss = { (a: [Double], b: [Double]) in
      infoNCE(
        z: l2NormalizeForward(input: Tensor(shape: shape, data: a)),
        zPrime: l2NormalizeForward(input: Tensor(shape: shape, data: b)), temperature: 0.2
      ).loss
    }
    let result = infoNCE(
      z: l2NormalizeForward(input: rows), zPrime: l2NormalizeForward(input: otherRows), temperature: 0.2)
    let gradRows = l2NormalizeBackward(input: rows, gradOutput: result.gradZ)
    let gradOtherRows = l2NormalizeBackward(input: otherRows, gradOutput: result.gradZPrime)
    Self.expectGradient("infoNCE∘l2 z", point: rows.data, analytic: gradRows.data) { loss($0, otherRows.data) }
    Self.expectGradient("infoNCE∘l2 z'", point: otherRows.data, analytic: gradOtherRows.data) { loss(rows.data, $0) }
  }

  // MARK: - Barlow Twins

  @Test("barlowTwins gradients match central differences for both views", arguments: [5e-3, 0.7])
  func barlowTwinsGradients(lambda: Double) {
    let shape = Shape(6, 3, 1, 1)
    let z = Self.tensor(shape, seed: 215), zPrime = Self.tensor(shape, seed: 216)
    let result = barlowTwins(z: z, zPrime: zPrime, lambda: lambda)
    Self.expectGradient("barlow z (lambda \(lambda))", point: z.data, analytic: result.gradZ.data) {
      barlowTwins(z: Tensor(shape: shape, data: $0), zPrime: zPrime, lambda: lambda).loss
    }
    Self.expectGradient("barlow z' (lambda \(lambda))", point: zPrime.data, analytic: result.gradZPrime.data) {
      barlowTwins(z: z, zPrime: Tensor(shape: shape, data: $0), lambda: lambda).loss
    }
  }
}
