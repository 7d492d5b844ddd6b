// The two matrix products every 1x1-style kernel reduces to, both over "pixel" columns that are
// contiguous in memory (the W-fastest planes of an NCHW tensor, or matrix rows):
//
// - `gemmPlanes`: out[n, r, p] = bias[r] + sum over k of A[r, k] · x[n, k, p] (a broadcast-FMA
//   micro-kernel of 4 rows x 24 columns over a packed copy of 24 columns of x);
// - `gemmReducePixels`: out[r, k] = sum over n, p of g[n, r, p] · x[n, k, p] (a lane-parallel
//   micro-kernel of 4 x 3 dot products, reduced over fixed pixel chunks in a fixed order).

// MARK: - Packing

/// Packs a row-major (rows x depth) matrix into blocks of 4 rows: `packed[block][k][m]`, zeros for
/// rows past the end. `transposed == true` reads the matrix as (depth x rows) instead.
func packRows(_ a: UnsafePointer<Float>, rows: Int, depth: Int, transposed: Bool) -> [Float] {
  let blocks = (rows + 3) / 4
  var packed = [Float](repeating: 0, count: blocks * depth * 4)
  packed.withUnsafeMutableBufferPointer { p in
    for r in 0..<rows {
      let base = (r / 4) * depth * 4 + r % 4
      for k in 0..<depth {
        p[base + k * 4] = transposed ? a[k * rows + r] : a[r * depth + k]
      }
    }
  }
  return packed
}

/// A Vec8 of `lanes` values from `p` and zeros after them.
@inline(__always)
func loadPartial(_ p: UnsafePointer<Float>, lanes: Int) -> Vec8 {
  if lanes >= 8 { return load8(p) }
  var v = Vec8()
  for l in 0..<lanes { v[l] = p[l] }
  return v
}

// MARK: - Broadcast GEMM

/// One 4 x 24 tile over `depth`: a packed [k][4], b a packed panel [k][24].
@inline(__always)
func gemmTile(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, depth: Int) -> Tile4x3 {
  var acc = Tile4x3()
  var pa = a, pb = b
  for _ in 0..<depth {
    acc.broadcastStep(pa, load8(pb), load8(pb + 8), load8(pb + 16))
    pa += 4
    pb += 24
  }
  return acc
}

/// out[n, r, p] = bias[r] + sum over k < depth of A[r, k] · x[n, k, p], for r < rows, p < pixels.
///
/// x: (batch, depth, pixels) planes; out: (batch, rows, pixels); packed: `packRows(A)`;
/// bias: (rows) or nil for zero. Items are (image, group of up to 8 column tiles); an item
/// packs its panels once, then runs every 4-row block over them, so each output row is written
/// as up to 192 contiguous pixels (whole cache lines). Each item owns its output columns for every row,
/// and every output is one reduction over k in order, so the result does not depend on `workers`.
func gemmPlanes(
  _ x: UnsafePointer<Float>, batch: Int, depth: Int, pixels: Int,
  packed: UnsafePointer<Float>, rows: Int, bias: UnsafePointer<Float>?,
  output: UnsafeMutablePointer<Float>, workers: Int
) {
  let tiles = (pixels + 23) / 24
  // As few groups of at most 8 tiles as possible, of even sizes (11 tiles: 6 + 5, not 8 + 3).
  let groups = (tiles + 7) / 8
  let tilesPerItem = (tiles + groups - 1) / max(groups, 1)
  let blocks = (rows + 3) / 4
  // Disjoint writes: item (n, group) writes out[n, ·, columns of its tiles] only.
  nonisolated(unsafe) let input = x
  nonisolated(unsafe) let weights = packed
  nonisolated(unsafe) let biasValues = bias
  nonisolated(unsafe) let out = output
  parallelFor(batch * groups, workers: workers) { item in
    let n = item / groups
    let firstTile = (item % groups) * tilesPerItem
    let tileCount = min(tiles, firstTile + tilesPerItem) - firstTile
    withScratch(tileCount * depth * 24) { panels in
      for t in 0..<tileCount {
        let p0 = (firstTile + t) * 24
        let width = min(24, pixels - p0)
        let source = input + n * depth * pixels + p0
        let panel = panels + t * depth * 24
        for k in 0..<depth {
          let row = source + k * pixels
          let dst = panel + k * 24
          if width == 24 {
            store8(load8(row), dst)
            store8(load8(row + 8), dst + 8)
            store8(load8(row + 16), dst + 16)
          } else {
            for l in 0..<24 { dst[l] = l < width ? row[l] : 0 }
          }
        }
      }
      for block in 0..<blocks {
        let a = weights + block * depth * 4
        let rowCount = min(4, rows - block * 4)
        for t in 0..<tileCount {
          let p0 = (firstTile + t) * 24
          let width = min(24, pixels - p0)
          let acc = gemmTile(a, panels + t * depth * 24, depth: depth)
          for m in 0..<rowCount {
            let r = block * 4 + m
            let b = Vec8(repeating: biasValues?[r] ?? 0)
            let dst = out + (n * rows + r) * pixels + p0
            for j in 0..<3 where 8 * j < width {
              store8(acc.get(m, j) + b, dst + 8 * j, lanes: min(8, width - 8 * j))
            }
          }
        }
      }
    }
  }
}

// MARK: - Pixel reductions

/// out[r, k] = sum over n < batch, p < pixels of g[n, r, p] · x[n, k, p].
///
/// g: (batch, rows, pixels); x: (batch, depth, pixels); out: (rows, depth), row-major.
/// Pixels are cut into fixed chunks (whole images split at multiples of 4096 pixels, fixed by the
/// shape). Items are (chunk, group of up to 12 rows); an item writes its own rows of its chunk's
/// partial. Within a chunk, pieces of 1024 pixels are reduced in order: for each 3 columns of x
/// (read once), 3 x 3 lane tiles run for every 3 rows of the group, each 8-lane accumulator summed
/// in a fixed lane order and added to the item's partial in Double. The chunks are added in chunk
/// order. Nothing depends on `workers`.
func gemmReducePixels(
  _ g: UnsafePointer<Float>, rows: Int, _ x: UnsafePointer<Float>, depth: Int, batch: Int, pixels: Int,
  output: UnsafeMutablePointer<Float>, workers: Int
) {
  if batch == 0 || pixels == 0 {
    output.update(repeating: 0, count: rows * depth)
    return
  }
  let chunkPixels = 4096
  let chunksPerImage = max(1, (pixels + chunkPixels - 1) / chunkPixels)
  let chunks = batch * chunksPerImage
  let blocks = (rows + 2) / 3
  let blocksPerGroup = 4
  let groups = (blocks + blocksPerGroup - 1) / blocksPerGroup
  let count = rows * depth
  withDoubleScratch(chunks * count) { partial in
    // Disjoint writes: item (chunk, group) writes partial[chunk][rows of its group][·] only.
    nonisolated(unsafe) let part = partial
    nonisolated(unsafe) let gradient = g
    nonisolated(unsafe) let values = x
    parallelFor(chunks * groups, workers: workers) { item in
      let chunk = item / groups
      let firstBlock = (item % groups) * blocksPerGroup
      let lastBlock = min(blocks, firstBlock + blocksPerGroup)
      let n = chunk / chunksPerImage
      let start = (chunk % chunksPerImage) * chunkPixels
      let end = min(pixels, start + chunkPixels)
      let gBase = gradient + n * rows * pixels
      let xBase = values + n * depth * pixels
      let out = part + chunk * count
      var first = true
      var s0 = start
      while s0 < end {
        let s1 = min(s0 + 1024, end)
        let full = (s1 - s0) / 8
        let tail = (s1 - s0) % 8
        var k0 = 0
        while k0 < depth {
          let kCount = min(3, depth - k0)
          let x0 = xBase + k0 * pixels + s0
          let x1 = xBase + min(k0 + 1, depth - 1) * pixels + s0
          let x2 = xBase + min(k0 + 2, depth - 1) * pixels + s0
          for block in firstBlock..<lastBlock {
            let r0 = block * 3
            let g0 = gBase + r0 * pixels + s0
            let g1 = gBase + min(r0 + 1, rows - 1) * pixels + s0
            let g2 = gBase + min(r0 + 2, rows - 1) * pixels + s0
            var acc = LaneTile3x3()
            laneDots(&acc, steps: full, g0, g1, g2, x0, x1, x2)
            if tail > 0 {
              let p = 8 * full
              acc.step(
                loadPartial(g0 + p, lanes: tail), loadPartial(g1 + p, lanes: tail), loadPartial(g2 + p, lanes: tail),
                loadPartial(x0 + p, lanes: tail), loadPartial(x1 + p, lanes: tail), loadPartial(x2 + p, lanes: tail))
            }
            for m in 0..<min(3, rows - r0) {
              let (v0, v1, v2) = acc.sums(m)
              let destination = out + (r0 + m) * depth + k0
              destination[0] = first ? Double(v0) : destination[0] + Double(v0)
              if kCount > 1 { destination[1] = first ? Double(v1) : destination[1] + Double(v1) }
              if kCount > 2 { destination[2] = first ? Double(v2) : destination[2] + Double(v2) }
            }
          }
          k0 += 3
        }
        first = false
        s0 = s1
      }
    }
    reduceChunks(part: UnsafePointer(partial), chunks: chunks, count: count, into: output, workers: workers)
  }
}

/// out[r] = sum over n, p of g[n, r, p]: lane-parallel within blocks of each plane, blocks and
/// planes added in Double in order.
/// Parallel over rows, each row owned by one iteration.
func sumPlanes(
  _ g: UnsafePointer<Float>, rows: Int, batch: Int, pixels: Int, output: UnsafeMutablePointer<Float>, workers: Int
) {
  nonisolated(unsafe) let gradient = g
  nonisolated(unsafe) let out = output
  // Disjoint writes: iteration r writes out[r] only.
  parallelFor(rows, workers: workers) { r in
    var total = 0.0
    for n in 0..<batch {
      total += planeSum(gradient + (n * rows + r) * pixels, count: pixels)
    }
    out[r] = Float(total)
  }
}

/// Sum of `count` values: blocks of `reductionBlock` in four 8-lane Float accumulators (combined
/// in a fixed order), blocks added in Double.
@inline(__always)
func planeSum(_ p: UnsafePointer<Float>, count: Int) -> Double {
  var total = 0.0
  var start = 0
  while start < count {
    let end = min(count, start + reductionBlock)
    var a0 = Vec8(), a1 = Vec8(), a2 = Vec8(), a3 = Vec8()
    var i = start
    while i + 32 <= end {
      a0 += load8(p + i)
      a1 += load8(p + i + 8)
      a2 += load8(p + i + 16)
      a3 += load8(p + i + 24)
      i += 32
    }
    while i + 8 <= end {
      a0 += load8(p + i)
      i += 8
    }
    if i < end { a1 += loadPartial(p + i, lanes: end - i) }
    total += Double(laneSum((a0 + a1) + (a2 + a3)))
    start = end
  }
  return total
}
