// The 3x3 convolution's forward by Winograd's minimal filtering F(4x4, 3x3): each 4x4 output tile
// is A^T [(G g G^T) ⊙ (B^T d B)] A, with d the tile's 6x6 input window and g the 3x3 filter. Summed
// over input channels this is 36 matrix products (one per point ξ of the 6x6 transformed tile):
// 36 multiply-adds per 16 outputs and channel pair where the direct convolution spends 144 (4x
// fewer) and F(2x2, 3x3) 64 (Winograd.swift). Only the evaluation-mode network uses it
// (`InferenceConvolutions`); training's convolutions stay as they are.
//
// The matrices come from Toom-Cook at the points (0, 1, -1, 1/2, -2, ∞): the 1D correlation
// y_i = sum_k g_k d_{i+k} (4 outputs, 3 taps, 6 inputs) is the transpose of the product of a
// degree-2 and a degree-3 polynomial. With E_k the 6 x k evaluation matrix (row j: the powers
// a_j^0 ... a_j^{k-1} of point a_j; the row of ∞ picks the leading coefficient) and V = E_6, the
// product is c = V^-1 [(E_3 g) ⊙ (E_4 h)], so the correlation is y = E_4^T [(E_3 g) ⊙ (V^-T d)]:
// A^T = E_4^T, G = E_3 and B^T = V^-T, after moving a factor per point from B^T into G (exact
// rationals, checked: A^T diag(G e_k) B^T has ones on the diagonal y + k and zeros elsewhere):
//
//   B^T = | 2 -3 -4  3  2  0 |   G = | 1/2    0     0    |   A^T = | 1  1  1  1    1  0 |
//         | 0 -2  1  5  2  0 |       | 1/6   1/6   1/6   |         | 0  1 -1  1/2 -2  0 |
//         | 0 -2  5 -1 -2  0 |       | 1/6  -1/6   1/6   |         | 0  1  1  1/4  4  0 |
//         | 0  2  1 -2 -1  0 |       | 16/15  8/15  4/15 |         | 0  1 -1  1/8 -8  1 |
//         | 0  1 -2 -1  2  0 |       | 1/30 -1/15  2/15  |
//         | 0  2 -3 -4  3  2 |       | 0     0     1/2   |
//
// Why these points: the transforms' coefficients grow with the points' spread, and so does the
// rounding. In a float32 simulation of one 64-channel 4x4 tile (seeded normal inputs, weights of
// variance 1/(9 · 64), 400 tiles, worst error against Double) the points (0, ±1, ±2) gave 1.8e-5,
// (0, ±1, ±1/2) 1.7e-5, (0, 1, -1, 2, -1/2) 9.9e-6 and (0, 1, -1, 1/2, -2) 7.3e-6 (F(2x2, 3x3) in
// the same simulation: 1.5e-6). Against the reference at the cpu preset's layers the kernel's worst
// error was 13.4% of the "float32 kernel" limit (F(2x2, 3x3): 1.8%; WinogradTests).
//
// Layout as in Winograd.swift: the tiles of the whole batch are numbered image by image, row by
// row, and cut into panels of 24 (`gemmTile`'s column width); a work item is one panel: it
// transforms its tiles' input windows for every channel (8 tiles per vector), runs the 36 products
// for every block of 4 output rows, and transforms the results back into its own output tiles.

// MARK: - Tiling

/// The 4x4 output tiles of a batch of (H, W) planes, in panels of 24.
///
/// `WinogradTiling` with 4 where it has 2. One type with the tile's side stored (2 or 4) was tried
/// and measured slower: `verify profile --preset cpu --steps-only`'s prediction rows, alternated
/// with the two-type build in one sitting under load, ran at 99-120 GFLOP/s against 114-180
/// (2026-12-01), the index arithmetic no longer folding the literal sizes. So the two stay apart.
struct Winograd4Tiling {
  let batch: Int
  let height: Int
  let width: Int
  let tilesY: Int
  let tilesX: Int
  /// The input planes; their bottom zero rows must reach the last tile row's 6x6 windows
  /// (`bottomRows(height:)`).
  let geometry: PaddedGeometry

  /// Zero rows below an image of `height` rows that the 6x6 windows of its last tile row reach:
  /// 1 when the height is a multiple of 4, up to 4 otherwise. (Columns always reach: rowStride =
  /// roundUp(W, 8) + 2 >= 4 · tilesX + 2.)
  static func bottomRows(height: Int) -> Int { 1 + 4 * ((height + 3) / 4) - height }

  init(batch: Int, height: Int, width: Int, geometry: PaddedGeometry) {
    precondition(
      geometry.height == height && geometry.width == width && geometry.bottomRows >= Self.bottomRows(height: height),
      "Winograd4Tiling: geometry \(geometry) for \(height) x \(width)")
    self.batch = batch
    self.height = height
    self.width = width
    tilesY = (height + 3) / 4
    tilesX = (width + 3) / 4
    self.geometry = geometry
  }

  var tilesPerImage: Int { tilesY * tilesX }
  var tiles: Int { batch * tilesPerImage }
  var panels: Int { (tiles + 23) / 24 }
  /// 8 or 4 when every run of that many consecutive tiles starting at a multiple of it lies in one
  /// tile row and every tile holds 4x4 outputs: the vector paths (shuffled loads, interleaved
  /// stores) apply to such runs. 0 otherwise (tiles gathered and scattered lane by lane).
  var run: Int {
    guard height % 4 == 0 && width % 4 == 0 else { return 0 }
    return tilesX % 8 == 0 ? 8 : tilesX % 4 == 0 ? 4 : 0
  }

  /// Tile t's image and its top-left output pixel (4ty, 4tx).
  @inline(__always)
  func outputCorner(_ t: Int) -> (n: Int, y: Int, x: Int) {
    let r = t % tilesPerImage
    return (t / tilesPerImage, 4 * (r / tilesX), 4 * (r % tilesX))
  }

  /// Offset of tile t's window (top-left corner) in the padded planes of channel 0 of its image.
  @inline(__always)
  func window(_ t: Int, depth: Int) -> Int {
    let n = t / tilesPerImage
    let r = t % tilesPerImage
    return n * depth * geometry.planeStride + 4 * (r / tilesX) * geometry.rowStride + 4 * (r % tilesX)
  }
}

// MARK: - Filter transform

/// The 36 transformed filters U = G g G^T of every (output channel, input channel) pair, packed for
/// `gemmTile`: `packed[ξ][block][k][m]` (ξ = 6 · i + j the point of the 6x6 tile, output channels
/// in blocks of 4, zeros past the end), g = weight[o, k]; computed in Double and rounded once.
/// weight: (Cout, Cin, 3, 3). Parallel over output channels; channel o writes only lane o % 4 of
/// its block.
func winograd4Filters(_ weight: UnsafePointer<Float>, outputChannels: Int, inputChannels: Int, workers: Int)
  -> [Float]
{
  let blocks = (outputChannels + 3) / 4
  let depth = inputChannels
  let gRows: [(Double, Double, Double)] = [
    (1.0 / 2, 0, 0), (1.0 / 6, 1.0 / 6, 1.0 / 6), (1.0 / 6, -1.0 / 6, 1.0 / 6), (16.0 / 15, 8.0 / 15, 4.0 / 15),
    (1.0 / 30, -1.0 / 15, 2.0 / 15), (0, 0, 1.0 / 2),
  ]
  var packed = [Float](repeating: 0, count: 36 * blocks * depth * 4)
  packed.withUnsafeMutableBufferPointer { buffer in
    // Disjoint writes: output channel o writes packed[... * 4 + o % 4] of block o / 4 only.
    nonisolated(unsafe) let p = buffer.baseAddress!
    nonisolated(unsafe) let weights = weight
    parallelFor(outputChannels, workers: workers) { o in
      for k in 0..<depth {
        let source = weights + (o * inputChannels + k) * 9
        func g(_ ky: Int, _ kx: Int) -> Double { Double(source[3 * ky + kx]) }
        for i in 0..<6 {
          let a = gRows[i]
          // Row i of G g (over the filter's columns x).
          func gg(_ x: Int) -> Double { (a.0 * g(0, x) + a.1 * g(1, x)) + a.2 * g(2, x) }
          let r0 = gg(0), r1 = gg(1), r2 = gg(2)
          for j in 0..<6 {
            let b = gRows[j]
            let u = (b.0 * r0 + b.1 * r1) + b.2 * r2
            p[((6 * i + j) * blocks + o / 4) * depth * 4 + k * 4 + o % 4] = Float(u)
          }
        }
      }
    }
  }
  return packed
}

// MARK: - Input transform

// Both transforms run in two passes through a small scratch of the worker's own (rows, then
// columns), which keeps the 36 vectors of a tile group out of the 16 registers.

/// Six vectors: one row of a 6x6 window for 8 tiles (lane l = tile l), or one row of its transform.
typealias WindowRow6 = (Vec8, Vec8, Vec8, Vec8, Vec8, Vec8)

/// B^T d for six values d0 ... d5 (a window row, giving d B, or a column of those, giving B^T d B).
@inline(__always)
func winograd4Input(_ d: WindowRow6) -> WindowRow6 {
  let (d0, d1, d2, d3, d4, d5) = d
  return (
    (2 * (d0 + d4) + 3 * (d3 - d1)) - 4 * d2,
    (2 * (d4 - d1) + d2) + 5 * d3,
    (5 * d2 - d3) - 2 * (d1 + d4),
    (2 * (d1 - d3) + d2) - d4,
    (2 * (d4 - d2) + d1) - d3,
    (2 * (d1 + d5) + 3 * (d4 - d2)) - 4 * d3
  )
}

/// Six vectors at `p`, `p + stride`, ...
@inline(__always)
func load6(_ p: UnsafePointer<Float>, stride: Int) -> WindowRow6 {
  (load8(p), load8(p + stride), load8(p + 2 * stride), load8(p + 3 * stride), load8(p + 4 * stride), load8(p + 5 * stride))
}

/// Stores six vectors at `p`, `p + stride`, ...
@inline(__always)
func store6(_ r: WindowRow6, _ p: UnsafeMutablePointer<Float>, stride: Int) {
  store8(r.0, p)
  store8(r.1, p + stride)
  store8(r.2, p + 2 * stride)
  store8(r.3, p + 3 * stride)
  store8(r.4, p + 4 * stride)
  store8(r.5, p + 5 * stride)
}

/// Window row of 8 tiles whose windows start at columns 4l of 36 consecutive values at `p`.
@inline(__always)
func contiguousWindowRow6(_ p: UnsafePointer<Float>) -> WindowRow6 {
  let a = load16(p), b = load16(p + 16), c = load16(p + 4), d = load16(p + 20)
  let even = SIMD16(lowHalf: a.evenHalf, highHalf: b.evenHalf), odd = SIMD16(lowHalf: a.oddHalf, highHalf: b.oddHalf)
  let shiftedEven = SIMD16(lowHalf: c.evenHalf, highHalf: d.evenHalf)
  let shiftedOdd = SIMD16(lowHalf: c.oddHalf, highHalf: d.oddHalf)
  return (even.evenHalf, odd.evenHalf, even.oddHalf, odd.oddHalf, shiftedEven.evenHalf, shiftedOdd.evenHalf)
}

/// Window row of two runs of 4 tiles, each run's windows starting at columns 4l of 20 consecutive
/// values (at `p` and at `q`).
@inline(__always)
func contiguousWindowRow6(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>) -> WindowRow6 {
  let a = load16(p), b = load16(p + 4), c = load16(q), d = load16(q + 4)
  func join(_ x: SIMD4<Float>, _ y: SIMD4<Float>) -> Vec8 { Vec8(lowHalf: x, highHalf: y) }
  return (
    join(a.evenHalf.evenHalf, c.evenHalf.evenHalf), join(a.oddHalf.evenHalf, c.oddHalf.evenHalf),
    join(a.evenHalf.oddHalf, c.evenHalf.oddHalf), join(a.oddHalf.oddHalf, c.oddHalf.oddHalf),
    join(b.evenHalf.evenHalf, d.evenHalf.evenHalf), join(b.oddHalf.evenHalf, d.oddHalf.evenHalf)
  )
}

/// Window row of 8 tiles at arbitrary offsets (-1: a tile past the end, zeros).
@inline(__always)
func gatheredWindowRow6(_ p: UnsafePointer<Float>, _ offsets: SIMD8<Int>) -> WindowRow6 {
  var d0 = Vec8(), d1 = Vec8(), d2 = Vec8(), d3 = Vec8(), d4 = Vec8(), d5 = Vec8()
  for l in 0..<8 where offsets[l] >= 0 {
    let q = p + offsets[l]
    d0[l] = q[0]
    d1[l] = q[1]
    d2[l] = q[2]
    d3[l] = q[3]
    d4[l] = q[4]
    d5[l] = q[5]
  }
  return (d0, d1, d2, d3, d4, d5)
}

/// The second pass of V = B^T d B for 8 tiles: `rows` holds d B (row i, column j at
/// `rows + 48 i + 8 j`, written by the first pass); V[6i + j], B^T applied to column j, goes to
/// `destination + (6i + j) * stride`.
@inline(__always)
func winograd4FinishInput(_ rows: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>, stride: Int) {
  for j in 0..<6 {
    store6(winograd4Input(load6(rows + 8 * j, stride: 48)), destination + j * stride, stride: 6 * stride)
  }
}

/// Transforms the 6x6 input windows of tiles `firstTile ..< firstTile + 24` for every channel of
/// planes with `depth` channels per image: V[ξ] of channel k and tile firstTile + i goes to
/// `v[ξ · pointStride + k · 24 + i]`; tiles past the end are zero. `work`: 288 floats of scratch.
func winograd4TransformInputs(
  _ padded: UnsafePointer<Float>, tiling: Winograd4Tiling, depth: Int, firstTile: Int,
  into v: UnsafeMutablePointer<Float>, pointStride: Int, work rows: UnsafeMutablePointer<Float>
) {
  let g = tiling.geometry
  let rs = g.rowStride
  for group in 0..<3 {
    let t0 = firstTile + 8 * group
    let destination = v + 8 * group
    if tiling.run == 8 && t0 + 8 <= tiling.tiles {
      // 8 tiles of one tile row: their windows start at columns 4l of 36 consecutive ones.
      let base = padded + tiling.window(t0, depth: depth)
      for k in 0..<depth {
        let p = base + k * g.planeStride
        for i in 0..<6 { store6(winograd4Input(contiguousWindowRow6(p + i * rs)), rows + 48 * i, stride: 8) }
        winograd4FinishInput(rows, destination + k * 24, stride: pointStride)
      }
    } else if tiling.run == 4 && t0 + 8 <= tiling.tiles {
      // Two runs of 4 tiles, each in one tile row (16 x 16 planes: a tile row each).
      let first = padded + tiling.window(t0, depth: depth)
      let second = padded + tiling.window(t0 + 4, depth: depth)
      for k in 0..<depth {
        let p = first + k * g.planeStride, q = second + k * g.planeStride
        for i in 0..<6 {
          store6(winograd4Input(contiguousWindowRow6(p + i * rs, q + i * rs)), rows + 48 * i, stride: 8)
        }
        winograd4FinishInput(rows, destination + k * 24, stride: pointStride)
      }
    } else {
      // Tiles on different rows or images, or past the end: gathered lane by lane.
      var offsets = SIMD8<Int>(repeating: -1)
      for l in 0..<8 where t0 + l < tiling.tiles { offsets[l] = tiling.window(t0 + l, depth: depth) }
      for k in 0..<depth {
        let p = padded + k * g.planeStride
        for i in 0..<6 { store6(winograd4Input(gatheredWindowRow6(p + i * rs, offsets)), rows + 48 * i, stride: 8) }
        winograd4FinishInput(rows, destination + k * 24, stride: pointStride)
      }
    }
  }
}

// MARK: - Output transform

/// Four vectors: one row of a 4x4 output tile for 8 tiles.
typealias OutputRow4 = (Vec8, Vec8, Vec8, Vec8)

/// A^T m for six values (a row of M, giving M A, or a column of those, giving A^T M A).
@inline(__always)
func winograd4Output(_ m: WindowRow6) -> OutputRow4 {
  let (m0, m1, m2, m3, m4, m5) = m
  let s = m1 + m2, t = m1 - m2
  return (
    (m0 + s) + (m3 + m4),
    (t + 0.5 * m3) - 2 * m4,
    (s + 0.25 * m3) + 4 * m4,
    ((t + 0.125 * m3) - 8 * m4) + m5
  )
}

/// Y = A^T M A for 8 tiles at once, M[ξ] at `m + ξ * stride`, each value through `value`: y_ij
/// goes to `y + 8 (4i + j)`. `work`: 192 floats of scratch (M A, row a at `work + 32 a`).
@inline(__always)
func winograd4OutputTransform(
  _ m: UnsafePointer<Float>, stride: Int, work: UnsafeMutablePointer<Float>, into y: UnsafeMutablePointer<Float>,
  _ value: (Vec8) -> Vec8
) {
  for a in 0..<6 {
    let r = winograd4Output(load6(m + 6 * a * stride, stride: stride))
    store8(r.0, work + 32 * a)
    store8(r.1, work + 32 * a + 8)
    store8(r.2, work + 32 * a + 16)
    store8(r.3, work + 32 * a + 24)
  }
  for j in 0..<4 {
    let c = winograd4Output(load6(work + 8 * j, stride: 32))
    store8(value(c.0), y + 8 * j)
    store8(value(c.1), y + 8 * (4 + j))
    store8(value(c.2), y + 8 * (8 + j))
    store8(value(c.3), y + 8 * (12 + j))
  }
}

/// Interleaves four vectors: (a0, b0, c0, d0, a1, ...), as two 16-lane halves.
@inline(__always)
func interleave4(_ a: Vec8, _ b: Vec8, _ c: Vec8, _ d: Vec8) -> (SIMD16<Float>, SIMD16<Float>) {
  let ac = interleave(a, c), bd = interleave(b, d)
  return (interleave(ac.lowHalf, bd.lowHalf), interleave(ac.highHalf, bd.highHalf))
}

/// Interleaves four 4-lane vectors: (a0, b0, c0, d0, a1, ...).
@inline(__always)
func interleave4(_ a: SIMD4<Float>, _ b: SIMD4<Float>, _ c: SIMD4<Float>, _ d: SIMD4<Float>) -> SIMD16<Float> {
  let ac = interleave(a, c), bd = interleave(b, d)
  return interleave(ac, bd)
}

/// The output transform of a panel's tiles `firstTile ..< firstTile + 24` (the products M of row r
/// and tile firstTile + i at `m + r * 24 + i`, point ξ at `ξ * stride`): each tile's 4x4 outputs
/// of every row go through `store`. `work`: 320 floats of scratch.
func winograd4StoreOutputs(
  _ m: UnsafePointer<Float>, stride mStride: Int, tiling: Winograd4Tiling, rows: Int, firstTile: Int, store: ConvStore,
  work: UnsafeMutablePointer<Float>
) {
  let layout = store.layout
  let y = work + 192
  // Row-outer: a row's three groups read the same cache lines of M.
  for row in 0..<rows {
    for group in 0..<3 {
      let t0 = firstTile + 8 * group
      if t0 >= tiling.tiles { break }
      winograd4OutputTransform(m + row * 24 + 8 * group, stride: mStride, work: work, into: y) {
        store.value($0, row: row)
      }
      // y_ij of the 8 tiles.
      @inline(__always) func value(_ i: Int, _ j: Int) -> Vec8 { load8(y + 8 * (4 * i + j)) }
      if tiling.run == 8 {
        // 8 tiles of one tile row: output rows 4ty ..< 4ty + 4, 32 contiguous columns each.
        let (n, y0, x0) = tiling.outputCorner(t0)
        let destination = layout.at(n, row, y0, x0)
        for i in 0..<4 {
          let (low, high) = interleave4(value(i, 0), value(i, 1), value(i, 2), value(i, 3))
          store16(low, destination + i * layout.rowStride)
          store16(high, destination + i * layout.rowStride + 16)
        }
      } else if tiling.run == 4 && t0 + 8 <= tiling.tiles {
        // Two runs of 4 tiles: 16 contiguous columns on each of four rows per run.
        let (n0, y0, x0) = tiling.outputCorner(t0)
        let (n1, y1, x1) = tiling.outputCorner(t0 + 4)
        let first = layout.at(n0, row, y0, x0), second = layout.at(n1, row, y1, x1)
        for i in 0..<4 {
          let v0 = value(i, 0), v1 = value(i, 1), v2 = value(i, 2), v3 = value(i, 3)
          store16(interleave4(v0.lowHalf, v1.lowHalf, v2.lowHalf, v3.lowHalf), first + i * layout.rowStride)
          store16(interleave4(v0.highHalf, v1.highHalf, v2.highHalf, v3.highHalf), second + i * layout.rowStride)
        }
      } else {
        for l in 0..<min(8, tiling.tiles - t0) {
          let (n, y0, x0) = tiling.outputCorner(t0 + l)
          let destination = layout.at(n, row, y0, x0)
          for i in 0..<min(4, tiling.height - y0) {
            for j in 0..<min(4, tiling.width - x0) { destination[i * layout.rowStride + j] = y[8 * (4 * i + j) + l] }
          }
        }
      }
    }
  }
}

// MARK: - The convolution

/// out[n, r, y, x] = sum over k < depth, taps t of g(r, k, t) · padded[n, k, y + ky, x + kx], by
/// F(4x4, 3x3) with the filters `transformed` (`winograd4Filters`), stored by `store`.
///
/// padded: the (batch, depth) input planes in `tiling.geometry`; out: (batch, rows, H, W) in
/// `store.layout`. Items are panels of 24 tiles; each owns its tiles' outputs for every row, and
/// each output is the same computation (its 36 products each summed over k in order by `gemmTile`,
/// then the fixed output transform, then the store's bias and ReLU if any) whatever the worker
/// count, so the result does not depend on `workers`.
func winograd4Conv3x3(
  padded: UnsafePointer<Float>, tiling: Winograd4Tiling, depth: Int,
  transformed: UnsafePointer<Float>, rows: Int, store: ConvStore, workers: Int
) {
  let blocks = (rows + 3) / 4
  // The 36 points' slices of V and of M, one cache line more apart than their size: at 64
  // channels or rows a slice is 6 KB, and 36 slices exactly 6 KB apart fall in 2 of L1's 64 sets,
  // which made every transform's 36 scattered loads and stores miss.
  let vStride = depth * 24 + 16
  let vCount = 36 * vStride
  let mStride = blocks * 4 * 24 + 16
  // Disjoint writes: item `panel` writes the output pixels of its own tiles only.
  nonisolated(unsafe) let input = padded
  nonisolated(unsafe) let filters = transformed
  nonisolated(unsafe) let out = store
  parallelFor(tiling.panels, workers: workers) { panel in
    let firstTile = panel * 24
    withScratch(vCount + 36 * mStride + 320) { scratch in
      let v = scratch, m = scratch + vCount, work = m + 36 * mStride
      winograd4TransformInputs(
        input, tiling: tiling, depth: depth, firstTile: firstTile, into: v, pointStride: vStride, work: work)
      // Point-outer, block-inner: the point's transformed inputs (depth x 24) stay in L1 while
      // the blocks' filters stream from L2.
      for xi in 0..<36 {
        let b = UnsafePointer(v + xi * vStride)
        for block in 0..<blocks {
          let acc = gemmTile(filters + (xi * blocks + block) * depth * 4, b, depth: depth)
          let destination = m + xi * mStride + block * 96
          for r in 0..<4 {
            for j in 0..<3 { store8(acc.get(r, j), destination + r * 24 + 8 * j) }
          }
        }
      }
      winograd4StoreOutputs(
        m, stride: mStride, tiling: tiling, rows: rows, firstTile: firstTile, store: out, work: work)
    }
  }
}
