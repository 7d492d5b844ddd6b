// The 3x3 convolution (stride 1, zero padding 1, no bias) by Winograd's minimal filtering
// F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): each
// 2x2 output tile is A^T [(G g G^T) ⊙ (B^T d B)] A, with d the tile's 4x4 input window and g the
// 3x3 filter. Summed over input channels this is 16 independent matrix products (one per point
// ξ of the 4x4 transformed tile), 16 multiply-adds per tile and channel pair where the direct
// convolution spends 36: 2.25x fewer.
//
//   B^T = | 1  0 -1  0 |     G = | 1    0    0   |     A^T = | 1  1  1  0 |
//         | 0  1  1  0 |         | 1/2  1/2  1/2 |           | 0  1 -1 -1 |
//         | 0 -1  1  0 |         | 1/2 -1/2  1/2 |
//         | 0  1  0 -1 |         | 0    0    1   |
//
// Layout: the tiles of the whole batch are numbered image by image, row by row, and cut into
// panels of 24 (the column width of `gemmTile`, which runs the products unchanged). A work item
// is one panel: it transforms its tiles' input windows for every channel (8 tiles per vector),
// runs the 16 products for every block of 4 output rows, and transforms the results back into
// its own output tiles. The input gradient is the same convolution of the output gradient with
// transposed, flipped filters; the weight gradient (last section) reduces over tiles instead.
//
// Rounding: the filters are transformed in Double and rounded once; the input transform only adds
// and subtracts 4 values at a time, the output transform 9. Against the reference at the cpu
// preset's layers the worst forward and input-gradient errors were 1-2% of the "float32 kernel"
// limit (the direct kernel's: 1-3%), so that tolerance stands.

// MARK: - Tiling

/// The 2x2 output tiles of a batch of (H, W) planes, in panels of 24.
struct WinogradTiling {
  let batch: Int
  let height: Int
  let width: Int
  let tilesY: Int
  let tilesX: Int
  /// The input planes, zero-padded with one extra bottom row so that the last tile row's 4x4
  /// windows stay inside the plane when H is odd (columns already reach W + 2).
  let geometry: PaddedGeometry

  /// Zero rows below an image of `height` rows that the 4x4 windows of its last tile row reach.
  static func bottomRows(height: Int) -> Int { 1 + height % 2 }

  /// `geometry`: the input planes' padding, by default the least these tiles need; a larger one
  /// (more zero rows below, `PaddedGeometry.convolutionInput`) reads the same values.
  init(batch: Int, height: Int, width: Int, geometry: PaddedGeometry? = nil) {
    self.batch = batch
    self.height = height
    self.width = width
    tilesY = (height + 1) / 2
    tilesX = (width + 1) / 2
    let least = Self.bottomRows(height: height)
    let g = geometry ?? PaddedGeometry(height: height, width: width, bottomRows: least)
    precondition(
      g.height == height && g.width == width && g.bottomRows >= least,
      "WinogradTiling: geometry \(g) for \(height) x \(width)")
    self.geometry = g
  }

  var tilesPerImage: Int { tilesY * tilesX }
  var tiles: Int { batch * tilesPerImage }
  var panels: Int { (tiles + 23) / 24 }
  /// 8 or 4 when every run of that many consecutive tiles starting at a multiple of it lies in one
  /// tile row and every tile holds 2x2 outputs: the vector paths (strided loads, interleaved
  /// stores) apply to such runs. 0 otherwise (tiles gathered and scattered lane by lane).
  var run: Int {
    guard height % 2 == 0 && width % 2 == 0 else { return 0 }
    return tilesX % 8 == 0 ? 8 : tilesX % 4 == 0 ? 4 : 0
  }

  /// Tile t's image and its top-left output pixel (2ty, 2tx).
  @inline(__always)
  func outputCorner(_ t: Int) -> (n: Int, y: Int, x: Int) {
    let r = t % tilesPerImage
    return (t / tilesPerImage, 2 * (r / tilesX), 2 * (r % tilesX))
  }

  /// Offset of output pixel (2ty, 2tx) of tile t in its (H, W) plane, and the image.
  @inline(__always)
  func outputPixel(_ t: Int) -> (n: Int, offset: Int) {
    let r = t % tilesPerImage
    return (t / tilesPerImage, 2 * (r / tilesX) * width + 2 * (r % tilesX))
  }

  /// Offset of tile t's window (top-left corner) in the padded planes of channel 0 of its image,
  /// and the image.
  @inline(__always)
  func window(_ t: Int, depth: Int) -> (n: Int, offset: Int) {
    let n = t / tilesPerImage
    let r = t % tilesPerImage
    return (n, n * depth * geometry.planeStride + 2 * (r / tilesX) * geometry.rowStride + 2 * (r % tilesX))
  }
}

// MARK: - Filter transform

/// The 16 transformed filters U = G g G^T of every (row, reduction channel) pair, packed for
/// `gemmTile`: `packed[ξ][block][k][m]` (ξ = 4 · i + j the point of the 4x4 tile, rows in blocks
/// of 4, zeros past the end), computed in Double and rounded once.
///
/// - `flipTranspose == false`: rows are output channels o, g = weight[o, k] (forward).
/// - `flipTranspose == true`: rows are input channels c, k runs over output channels o and
///   g[ky][kx] = weight[o, c, 2 - ky, 2 - kx] (the input gradient is this convolution of the output
///   gradient).
///
/// Parallel over rows; row r writes only lane r % 4 of its block.
func winogradFilters(
  _ weight: UnsafePointer<Float>, outputChannels: Int, inputChannels: Int, flipTranspose: Bool, workers: Int
) -> [Float] {
  let rows = flipTranspose ? inputChannels : outputChannels
  let depth = flipTranspose ? outputChannels : inputChannels
  let blocks = (rows + 3) / 4
  var packed = [Float](repeating: 0, count: 16 * blocks * depth * 4)
  packed.withUnsafeMutableBufferPointer { buffer in
    // Disjoint writes: row r writes packed[... * 4 + r % 4] of block r / 4 only.
    nonisolated(unsafe) let p = buffer.baseAddress!
    nonisolated(unsafe) let weights = weight
    parallelFor(rows, workers: workers) { row in
      for k in 0..<depth {
        let source = flipTranspose ? weights + (k * inputChannels + row) * 9 : weights + (row * inputChannels + k) * 9
        func g(_ ky: Int, _ kx: Int) -> Double {
          Double(flipTranspose ? source[8 - (3 * ky + kx)] : source[3 * ky + kx])
        }
        // G g (4 x 3): row i of the result, column x.
        func gg(_ i: Int, _ x: Int) -> Double {
          switch i {
          case 0: g(0, x)
          case 1: 0.5 * (g(0, x) + g(1, x) + g(2, x))
          case 2: 0.5 * (g(0, x) - g(1, x) + g(2, x))
          default: g(2, x)
          }
        }
        // (G g) G^T (4 x 4).
        for i in 0..<4 {
          let r0 = gg(i, 0), r1 = gg(i, 1), r2 = gg(i, 2)
          let u = (r0, 0.5 * (r0 + r1 + r2), 0.5 * (r0 - r1 + r2), r2)
          let base = ((4 * i * blocks + row / 4) * depth + k) * 4 + row % 4
          let pointStride = blocks * depth * 4
          p[base] = Float(u.0)
          p[base + pointStride] = Float(u.1)
          p[base + 2 * pointStride] = Float(u.2)
          p[base + 3 * pointStride] = Float(u.3)
        }
      }
    }
  }
  return packed
}

// MARK: - Input transform

/// Four vectors: one row of a 4x4 window for 8 tiles (lane l = tile l), or one row of its transform.
typealias WindowRow = (Vec8, Vec8, Vec8, Vec8)

/// d B for one window row: (d0 - d2, d1 + d2, d2 - d1, d1 - d3).
@inline(__always)
func winogradAcross(_ d: WindowRow) -> WindowRow {
  (d.0 - d.2, d.1 + d.2, d.2 - d.1, d.1 - d.3)
}

/// The 16 transformed values V = B^T d B of 8 tiles at once, from the rows d B of their windows
/// (`winogradAcross`). Stores V[ξ] at `destination + ξ * stride`.
@inline(__always)
func winogradStoreInput(
  _ r0: WindowRow, _ r1: WindowRow, _ r2: WindowRow, _ r3: WindowRow, _ destination: UnsafeMutablePointer<Float>,
  stride: Int
) {
  store8(r0.0 - r2.0, destination)
  store8(r0.1 - r2.1, destination + stride)
  store8(r0.2 - r2.2, destination + 2 * stride)
  store8(r0.3 - r2.3, destination + 3 * stride)
  store8(r1.0 + r2.0, destination + 4 * stride)
  store8(r1.1 + r2.1, destination + 5 * stride)
  store8(r1.2 + r2.2, destination + 6 * stride)
  store8(r1.3 + r2.3, destination + 7 * stride)
  store8(r2.0 - r1.0, destination + 8 * stride)
  store8(r2.1 - r1.1, destination + 9 * stride)
  store8(r2.2 - r1.2, destination + 10 * stride)
  store8(r2.3 - r1.3, destination + 11 * stride)
  store8(r1.0 - r3.0, destination + 12 * stride)
  store8(r1.1 - r3.1, destination + 13 * stride)
  store8(r1.2 - r3.2, destination + 14 * stride)
  store8(r1.3 - r3.3, destination + 15 * stride)
}

/// Row i of 8 windows that start at even columns 2l of 18 consecutive values.
@inline(__always)
func contiguousWindowRow(_ p: UnsafePointer<Float>) -> WindowRow {
  let a = load16(p), b = load16(p + 2)
  return (a.evenHalf, a.oddHalf, b.evenHalf, b.oddHalf)
}

/// Row i of two runs of 4 windows, each starting at even columns 2l of 10 consecutive values.
@inline(__always)
func contiguousWindowRow(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>) -> WindowRow {
  let a = load8(p), b = load8(p + 2), c = load8(q), d = load8(q + 2)
  return (
    Vec8(lowHalf: a.evenHalf, highHalf: c.evenHalf), Vec8(lowHalf: a.oddHalf, highHalf: c.oddHalf),
    Vec8(lowHalf: b.evenHalf, highHalf: d.evenHalf), Vec8(lowHalf: b.oddHalf, highHalf: d.oddHalf)
  )
}

/// Row i of 8 windows at arbitrary offsets (-1: a tile past the end, zeros).
@inline(__always)
func gatheredWindowRow(_ p: UnsafePointer<Float>, _ offsets: SIMD8<Int>) -> WindowRow {
  var d0 = Vec8(), d1 = Vec8(), d2 = Vec8(), d3 = Vec8()
  for l in 0..<8 where offsets[l] >= 0 {
    let q = p + offsets[l]
    d0[l] = q[0]
    d1[l] = q[1]
    d2[l] = q[2]
    d3[l] = q[3]
  }
  return (d0, d1, d2, d3)
}

@inline(__always)
func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
  UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

/// Transforms the 4x4 input windows of tiles `firstTile ..< firstTile + 8 · groups` for channels
/// `channels` of planes with `depth` channels per image: V[ξ] of channel k and tile firstTile + i
/// goes to `v[ξ · pointStride + k · channelStride + i]`; tiles past the end are zero.
func winogradTransformInputs(
  _ padded: UnsafePointer<Float>, tiling: WinogradTiling, depth: Int, channels: Range<Int>, firstTile: Int,
  groups: Int, into v: UnsafeMutablePointer<Float>, channelStride: Int, pointStride: Int
) {
  let g = tiling.geometry
  let rs = g.rowStride
  if tiling.run == 8 && firstTile + 8 * groups <= tiling.tiles {
    // Every group is 8 tiles of one tile row. Channel-outer: a channel's window rows are read for
    // all groups while they are in L1 (the same values go to the same places in either order).
    for k in channels {
      for group in 0..<groups {
        let p = padded + tiling.window(firstTile + 8 * group, depth: depth).offset + k * g.planeStride
        winogradStoreInput(
          winogradAcross(contiguousWindowRow(p)), winogradAcross(contiguousWindowRow(p + rs)),
          winogradAcross(contiguousWindowRow(p + 2 * rs)), winogradAcross(contiguousWindowRow(p + 3 * rs)),
          v + 8 * group + k * channelStride, stride: pointStride)
      }
    }
    return
  }
  for group in 0..<groups {
    let t0 = firstTile + 8 * group
    let destination = v + 8 * group
    if tiling.run == 8 && t0 + 8 <= tiling.tiles {
      // 8 tiles of one tile row: their windows start at even columns 2l of 18 consecutive ones.
      let base = padded + tiling.window(t0, depth: depth).offset
      for k in channels {
        let p = base + k * g.planeStride
        winogradStoreInput(
          winogradAcross(contiguousWindowRow(p)), winogradAcross(contiguousWindowRow(p + rs)),
          winogradAcross(contiguousWindowRow(p + 2 * rs)), winogradAcross(contiguousWindowRow(p + 3 * rs)),
          destination + k * channelStride, stride: pointStride)
      }
    } else if tiling.run == 4 && t0 + 8 <= tiling.tiles {
      // Two runs of 4 tiles, each in one tile row (8 x 8 planes: the two halves of an image).
      let first = padded + tiling.window(t0, depth: depth).offset
      let second = padded + tiling.window(t0 + 4, depth: depth).offset
      for k in channels {
        let p = first + k * g.planeStride, q = second + k * g.planeStride
        winogradStoreInput(
          winogradAcross(contiguousWindowRow(p, q)), winogradAcross(contiguousWindowRow(p + rs, q + rs)),
          winogradAcross(contiguousWindowRow(p + 2 * rs, q + 2 * rs)),
          winogradAcross(contiguousWindowRow(p + 3 * rs, q + 3 * rs)), destination + k * channelStride,
          stride: pointStride)
      }
    } else {
      // Tiles on different rows or images, or past the end: gathered lane by lane.
      var offsets = SIMD8<Int>(repeating: -1)
      for l in 0..<8 where t0 + l < tiling.tiles { offsets[l] = tiling.window(t0 + l, depth: depth).offset }
      for k in channels {
        let p = padded + k * g.planeStride
        winogradStoreInput(
          winogradAcross(gatheredWindowRow(p, offsets)), winogradAcross(gatheredWindowRow(p + rs, offsets)),
          winogradAcross(gatheredWindowRow(p + 2 * rs, offsets)),
          winogradAcross(gatheredWindowRow(p + 3 * rs, offsets)), destination + k * channelStride,
          stride: pointStride)
      }
    }
  }
}

// MARK: - Output transform

/// Interleaves two vectors: (a0, b0, a1, b1, ...).
@inline(__always)
func interleave(_ a: Vec8, _ b: Vec8) -> SIMD16<Float> {
  SIMD16(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7])
}

@inline(__always)
func interleave(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> Vec8 {
  Vec8(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3])
}

@inline(__always)
func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
  UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// M A for one row of M (8 tiles at once): (m0 + m1 + m2, m1 - m2 - m3), row at `q`, its points
/// `stride` apart.
@inline(__always)
func winogradOutputAcross(_ q: UnsafePointer<Float>, stride: Int) -> (Vec8, Vec8) {
  let m0 = load8(q), m1 = load8(q + stride), m2 = load8(q + 2 * stride), m3 = load8(q + 3 * stride)
  return ((m0 + m1) + m2, (m1 - m2) - m3)
}

/// Y = A^T M A for 8 tiles at once, M[ξ] at `m + ξ * stride`: returns (y00, y01, y10, y11).
@inline(__always)
func winogradOutputTransform(_ m: UnsafePointer<Float>, stride: Int) -> (Vec8, Vec8, Vec8, Vec8) {
  let s0 = winogradOutputAcross(m, stride: stride), s1 = winogradOutputAcross(m + 4 * stride, stride: stride)
  let s2 = winogradOutputAcross(m + 8 * stride, stride: stride), s3 = winogradOutputAcross(m + 12 * stride, stride: stride)
  return ((s0.0 + s1.0) + s2.0, (s0.1 + s1.1) + s2.1, (s1.0 - s2.0) - s3.0, (s1.1 - s2.1) - s3.1)
}

// MARK: - The convolution

/// out[n, r, y, x] = sum over k < depth, taps t of g(r, k, t) · padded[n, k, y + ky, x + kx], by
/// F(2x2, 3x3) with the filters `transformed` (`winogradFilters`), stored by `store`.
///
/// padded: the (batch, depth) input planes in `tiling.geometry`; out: (batch, rows, H, W) in
/// `store.layout`. Items are panels of 24 tiles; each owns its tiles' outputs for every row, and
/// each output is the same computation (its 16 products each summed over k in order by `gemmTile`,
/// then the fixed output transform, then the store's bias and ReLU if any) whatever the worker
/// count, so the result does not depend on `workers`.
func winogradConv3x3(
  padded: UnsafePointer<Float>, tiling: WinogradTiling, depth: Int,
  transformed: UnsafePointer<Float>, rows: Int, store: ConvStore, workers: Int
) {
  let blocks = (rows + 3) / 4
  let vCount = 16 * depth * 24
  let mStride = blocks * 4 * 24
  // Disjoint writes: item `panel` writes the output pixels of its own tiles only.
  nonisolated(unsafe) let input = padded
  nonisolated(unsafe) let filters = transformed
  nonisolated(unsafe) let out = store
  parallelFor(tiling.panels, workers: workers) { panel in
    let firstTile = panel * 24
    withScratch(vCount + 16 * mStride) { scratch in
      let v = scratch, m = scratch + vCount
      winogradTransformInputs(
        input, tiling: tiling, depth: depth, channels: 0..<depth, firstTile: firstTile, groups: 3, into: v,
        channelStride: 24, pointStride: depth * 24)
      // Point-outer, block-inner: the point's transformed inputs (depth x 24) stay in L1 while
      // the blocks' filters stream from L2.
      for xi in 0..<16 {
        let b = UnsafePointer(v + xi * depth * 24)
        for block in 0..<blocks {
          let acc = gemmTile(filters + (xi * blocks + block) * depth * 4, b, depth: depth)
          let destination = m + xi * mStride + block * 96
          for r in 0..<4 {
            for j in 0..<3 { store8(acc.get(r, j), destination + r * 24 + 8 * j) }
          }
        }
      }
      winogradStoreOutputs(m, stride: mStride, tiling: tiling, rows: rows, firstTile: firstTile, store: out)
    }
  }
}

/// The output transform of a panel's tiles `firstTile ..< firstTile + 24` (the products M of row r
/// and tile firstTile + i at `m + r * 24 + i`, point ξ at `ξ * stride`): each tile's 2x2 outputs
/// of every row go through `store`.
@inline(__always)
func winogradStoreOutputs(
  _ m: UnsafePointer<Float>, stride mStride: Int, tiling: WinogradTiling, rows: Int, firstTile: Int, store: ConvStore
) {
  let layout = store.layout
  for group in 0..<3 {
    let t0 = firstTile + 8 * group
    if t0 >= tiling.tiles { break }
    if tiling.run == 8 {
      // 8 tiles of one tile row: rows 2ty and 2ty + 1, 16 contiguous columns each.
      let (n, y, x) = tiling.outputCorner(t0)
      for row in 0..<rows {
        let y4 = winogradOutputTransform(m + row * 24 + 8 * group, stride: mStride)
        let y00 = store.value(y4.0, row: row), y01 = store.value(y4.1, row: row)
        let y10 = store.value(y4.2, row: row), y11 = store.value(y4.3, row: row)
        let destination = layout.at(n, row, y, x)
        store16(interleave(y00, y01), destination)
        store16(interleave(y10, y11), destination + layout.rowStride)
      }
    } else if tiling.run == 4 && t0 + 8 <= tiling.tiles {
      // Two runs of 4 tiles: 8 contiguous columns on each of two rows per run.
      let (n0, y0, x0) = tiling.outputCorner(t0)
      let (n1, y1, x1) = tiling.outputCorner(t0 + 4)
      for row in 0..<rows {
        let y4 = winogradOutputTransform(m + row * 24 + 8 * group, stride: mStride)
        let y00 = store.value(y4.0, row: row), y01 = store.value(y4.1, row: row)
        let y10 = store.value(y4.2, row: row), y11 = store.value(y4.3, row: row)
        let first = layout.at(n0, row, y0, x0)
        let second = layout.at(n1, row, y1, x1)
        store8(interleave(y00.lowHalf, y01.lowHalf), first)
        store8(interleave(y10.lowHalf, y11.lowHalf), first + layout.rowStride)
        store8(interleave(y00.highHalf, y01.highHalf), second)
        store8(interleave(y10.highHalf, y11.highHalf), second + layout.rowStride)
      }
    } else {
      for row in 0..<rows {
        let y4 = winogradOutputTransform(m + row * 24 + 8 * group, stride: mStride)
        let y00 = store.value(y4.0, row: row), y01 = store.value(y4.1, row: row)
        let y10 = store.value(y4.2, row: row), y11 = store.value(y4.3, row: row)
        for l in 0..<min(8, tiling.tiles - t0) {
          let (n, y, x) = tiling.outputCorner(t0 + l)
          let destination = layout.at(n, row, y, x)
          destination[0] = y00[l]
          if x + 1 < tiling.width { destination[1] = y01[l] }
          if y + 1 < tiling.height {
            destination[layout.rowStride] = y10[l]
            if x + 1 < tiling.width { destination[layout.rowStride + 1] = y11[l] }
          }
        }
      }
    }
  }
}

// MARK: - The weight gradient

// With Y = A^T [U ⊙ V] A per tile and U = G g G^T, the gradient of a loss L with respect to U[ξ]
// of the pair (o, c) is the sum over tiles of dM[ξ] · V[ξ], where dM = A dY A^T is the output
// gradient's 2x2 tile spread to 4x4 (the adjoint of the output transform); and dL/dg = G^T dU G.
// The sums over tiles are 16 pixel-reduction GEMMs (`gemmReducePixels`) with tiles as pixels.

/// dM = A dY A^T of 8 tiles at once from their 2x2 output-gradient tiles (rows (dy00, dy01) and
/// (dy10, dy11)); stores dM[ξ] at `destination + ξ * stride`.
@inline(__always)
func winogradStoreGradient(
  _ dy00: Vec8, _ dy01: Vec8, _ dy10: Vec8, _ dy11: Vec8, _ destination: UnsafeMutablePointer<Float>, stride: Int
) {
  // dY A^T along each row: (d0, d0 + d1, d0 - d1, -d1); then A along the columns.
  let e0 = (dy00, dy00 + dy01, dy00 - dy01, -dy01)
  let e1 = (dy10, dy10 + dy11, dy10 - dy11, -dy11)
  store8(e0.0, destination)
  store8(e0.1, destination + stride)
  store8(e0.2, destination + 2 * stride)
  store8(e0.3, destination + 3 * stride)
  store8(e0.0 + e1.0, destination + 4 * stride)
  store8(e0.1 + e1.1, destination + 5 * stride)
  store8(e0.2 + e1.2, destination + 6 * stride)
  store8(e0.3 + e1.3, destination + 7 * stride)
  store8(e0.0 - e1.0, destination + 8 * stride)
  store8(e0.1 - e1.1, destination + 9 * stride)
  store8(e0.2 - e1.2, destination + 10 * stride)
  store8(e0.3 - e1.3, destination + 11 * stride)
  store8(-e1.0, destination + 12 * stride)
  store8(-e1.1, destination + 13 * stride)
  store8(-e1.2, destination + 14 * stride)
  store8(-e1.3, destination + 15 * stride)
}

/// Spreads the 2x2 output-gradient tiles `firstTile ..< firstTile + 8 · groups` of channel `o`
/// (grad: (N, rows, H, W)) into `dm[ξ · pointStride + o · channelStride + i]`; tiles past the
/// end, and pixels past the border of a cut tile, are zero.
func winogradTransformGradients(
  _ grad: UnsafePointer<Float>, tiling: WinogradTiling, rows: Int, channel o: Int, firstTile: Int, groups: Int,
  into dm: UnsafeMutablePointer<Float>, channelStride: Int, pointStride: Int
) {
  let plane = tiling.height * tiling.width
  let w = tiling.width
  for group in 0..<groups {
    let t0 = firstTile + 8 * group
    let destination = dm + o * channelStride + 8 * group
    if tiling.run == 8 && t0 + 8 <= tiling.tiles {
      let (n, pixel) = tiling.outputPixel(t0)
      let p = grad + (n * rows + o) * plane + pixel
      let top = load16(p), bottom = load16(p + w)
      winogradStoreGradient(
        top.evenHalf, top.oddHalf, bottom.evenHalf, bottom.oddHalf, destination, stride: pointStride)
    } else if tiling.run == 4 && t0 + 8 <= tiling.tiles {
      let (n0, pixel0) = tiling.outputPixel(t0)
      let (n1, pixel1) = tiling.outputPixel(t0 + 4)
      let p = grad + (n0 * rows + o) * plane + pixel0, q = grad + (n1 * rows + o) * plane + pixel1
      let a = load8(p), b = load8(p + w), c = load8(q), d = load8(q + w)
      winogradStoreGradient(
        Vec8(lowHalf: a.evenHalf, highHalf: c.evenHalf), Vec8(lowHalf: a.oddHalf, highHalf: c.oddHalf),
        Vec8(lowHalf: b.evenHalf, highHalf: d.evenHalf), Vec8(lowHalf: b.oddHalf, highHalf: d.oddHalf),
        destination, stride: pointStride)
    } else {
      var dy00 = Vec8(), dy01 = Vec8(), dy10 = Vec8(), dy11 = Vec8()
      for l in 0..<8 where t0 + l < tiling.tiles {
        let t = t0 + l
        let r = t % tiling.tilesPerImage
        let y = 2 * (r / tiling.tilesX), x = 2 * (r % tiling.tilesX)
        let p = grad + ((t / tiling.tilesPerImage) * rows + o) * plane + y * w + x
        dy00[l] = p[0]
        if x + 1 < w { dy01[l] = p[1] }
        if y + 1 < tiling.height {
          dy10[l] = p[w]
          if x + 1 < w { dy11[l] = p[w + 1] }
        }
      }
      winogradStoreGradient(dy00, dy01, dy10, dy11, destination, stride: pointStride)
    }
  }
}

/// gw[o, c, ky, kx] = sum over n, y, x of grad[n, o, y, x] · input[n, c, y + ky - 1, x + kx - 1]
/// by F(2x2, 3x3): the transformed inputs V (every tile, every input channel) and the spread
/// output gradients dM (every tile, every output channel) are written out in full, tiles as
/// pixels; then dU[ξ] = dM[ξ] V[ξ]^T by `gemmReducePixels` (its fixed chunks, combined in chunk
/// order, in Double), and gw = G^T dU G in Double, rounded once. The transforms are parallel over
/// (channel, run of 256 tiles), each item owning its slice; nothing depends on `workers`.
///
/// paddedInput: (batch, cin) planes in `tiling.geometry`; grad: (batch, cout, H, W).
func winogradWeightGradient(
  paddedInput: UnsafePointer<Float>, grad: UnsafePointer<Float>, tiling: WinogradTiling, inputChannels cin: Int,
  outputChannels cout: Int, workers: Int
) -> [Float] {
  let columns = roundUp(tiling.tiles, 8)
  let groups = columns / 8
  let groupsPerItem = 32
  let runs = (groups + groupsPerItem - 1) / groupsPerItem
  return withScratch(16 * (cin + cout) * columns + 16 * cout * cin) { scratch in
    let v = scratch, dm = scratch + 16 * cin * columns, du = dm + 16 * cout * columns
    // Disjoint writes: item (channel, run) writes the columns of its run in its channel's rows.
    nonisolated(unsafe) let transformedInputs = v
    nonisolated(unsafe) let spreadGradients = dm
    nonisolated(unsafe) let input = paddedInput
    nonisolated(unsafe) let gradient = grad
    parallelFor((cin + cout) * runs, workers: workers) { item in
      let channel = item / runs, run = item % runs
      let firstGroup = run * groupsPerItem
      let count = min(groupsPerItem, groups - firstGroup)
      if channel < cin {
        winogradTransformInputs(
          input, tiling: tiling, depth: cin, channels: channel..<(channel + 1), firstTile: 8 * firstGroup,
          groups: count, into: transformedInputs + 8 * firstGroup, channelStride: columns, pointStride: cin * columns)
      } else {
        winogradTransformGradients(
          gradient, tiling: tiling, rows: cout, channel: channel - cin, firstTile: 8 * firstGroup, groups: count,
          into: spreadGradients + 8 * firstGroup, channelStride: columns, pointStride: cout * columns)
      }
    }
    for xi in 0..<16 {
      gemmReducePixels(
        dm + xi * cout * columns, rows: cout, v + xi * cin * columns, depth: cin, batch: 1, pixels: columns,
        output: du + xi * cout * cin, workers: workers)
    }
    // gw = G^T dU G: G's columns are (1, 1/2, 1/2, 0), (0, 1/2, -1/2, 0), (0, 1/2, 1/2, 1).
    let gColumns: [(Double, Double, Double, Double)] = [(1, 0.5, 0.5, 0), (0, 0.5, -0.5, 0), (0, 0.5, 0.5, 1)]

    let pairs = cout * cin
    let pieces = max(1, min(64, pairs / 256))
    nonisolated(unsafe) let transformed = UnsafePointer(du)
    return makeArray(pairs * 9) { result in
      // Disjoint writes: piece q writes gw[9 · pair ..< 9 · pair + 9] for the pairs of its range only.
      nonisolated(unsafe) let out = result
      parallelFor(pieces, workers: workers) { piece in
        for pair in chunkRange(piece, of: pieces, count: pairs) {
          func dU(_ i: Int, _ j: Int) -> Double { Double(transformed[(4 * i + j) * pairs + pair]) }
          for ky in 0..<3 {
            let a = gColumns[ky]
            // Row ky of G^T dU (over j), then times G's column kx.
            func r(_ j: Int) -> Double { ((a.0 * dU(0, j) + a.1 * dU(1, j)) + a.2 * dU(2, j)) + a.3 * dU(3, j) }
            let r0 = r(0), r1 = r(1), r2 = r(2), r3 = r(3)
            for kx in 0..<3 {
              let b = gColumns[kx]
              out[pair * 9 + ky * 3 + kx] = Float(((b.0 * r0 + b.1 * r1) + b.2 * r2) + b.3 * r3)
            }
          }
        }
      }
    }
  }
}
