import Optimized
import Reference
import Testing
import TestSupport

/// `warpGather` and `warpGatherBackward` (the pretraining loss's warp at the sampled positions)
/// against their definitions, warp-then-gather and scatter-then-warp-back, composed from the
/// optimized kernels: the same bits, for 1 and 2 workers.
@Suite struct WarpGatherTests {
  /// Three 9 x 7 images of 5 channels, one transform each (identity, a rotation with scaling and a
  /// shift that moves some sources outside the image, so corners are skipped), and positions with
  /// repeats in no particular order.
  static func problem() -> (input: Tensor<Float>, affines: [Affine2D], positions: [Int]) {
    var rng = SplitMix64(seed: 41, stream: 3)
    let shape = Shape(3, 5, 9, 7)
    let input = Tensor(shape: shape, data: (0..<shape.count).map { _ in Float(rng.normal()) })
    let affines = [
      Affine2D.identity,
      Affine2D(a: 0.9, b: -0.35, tx: 0.1, c: 0.35, d: 0.9, ty: -0.05),
      Affine2D(a: 1.2, b: 0.1, tx: 0.4, c: -0.2, d: 0.8, ty: 0.3),
    ]
    var positions = (0..<40).map { _ in rng.int(below: shape.n * shape.plane) }
    positions += [positions[3], positions[17], positions[3]]
    return (input, affines, positions)
  }

  @Test("the rows of the warp at the positions are warp-then-gather's, bit for bit", arguments: [1, 2])
  func forwardMatchesDefinition(workers: Int) {
    let (input, affines, positions) = Self.problem()
    let expected = gatherPixels(
      tensor: Optimized.warpForward(input: input, affines: affines, workers: workers), positions: positions)
    let actual = Optimized.warpGather(input: input, affines: affines, positions: positions, workers: workers)
    #expect(actual.shape == expected.shape)
    #expect(actual.data.map(\.bitPattern) == expected.data.map(\.bitPattern))
  }

  @Test("the gradient is scatter-then-warp-back's, bit for bit, with repeated positions and zero rows",
    arguments: [1, 2])
  func backwardMatchesDefinition(workers: Int) {
    let (input, affines, positions) = Self.problem()
    var rng = SplitMix64(seed: 42, stream: 3)
    let c = input.shape.c
    var rows = Tensor(shape: Shape(positions.count, c, 1, 1), data: (0..<(positions.count * c)).map { _ in Float(rng.normal()) })
    // A zero row, and two rows on one pixel that cancel in one channel: both scatter nothing there.
    for k in 0..<c { rows.data[5 * c + k] = 0 }
    let repeated = positions.count - 2  // the second copy of positions[17]
    rows.data[repeated * c] = -rows.data[17 * c]
    let expected = Optimized.warpBackward(
      gradOutput: scatterPixels(rows: rows, positions: positions, shape: input.shape), affines: affines,
      workers: workers)
    let actual = Optimized.warpGatherBackward(
      gradRows: rows, affines: affines, positions: positions, shape: input.shape, workers: workers)
    #expect(actual.shape == expected.shape)
    #expect(actual.data.map(\.bitPattern) == expected.data.map(\.bitPattern))
  }

  @Test("the check can fail: a row one ulp off is a different gradient")
  func perturbedRowIsCaught() {
    let (input, affines, positions) = Self.problem()
    let c = input.shape.c
    let rows = Tensor(shape: Shape(positions.count, c, 1, 1), data: [Float](repeating: 0.5, count: positions.count * c))
    var moved = rows
    moved.data[2 * c] = moved.data[2 * c].nextUp
    let expected = Optimized.warpGatherBackward(
      gradRows: rows, affines: affines, positions: positions, shape: input.shape, workers: 1)
    let actual = Optimized.warpGatherBackward(
      gradRows: moved, affines: affines, positions: positions, shape: input.shape, workers: 1)
    #expect(actual.data.map(\.bitPattern) != expected.data.map(\.bitPattern))
  }
}
