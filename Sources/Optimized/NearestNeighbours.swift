import Reference

// MARK: - Nearest-neighbour search by blocked GEMM

/// Queries per parallel item: 8 column tiles of `gemmPlanes` (one packed panel group per call).
let nearestNeighbourQueryBlock = 192
/// Support rows per GEMM call: the (rows x queries) similarity block stays in the L2 cache.
let nearestNeighbourSupportBlock = 256

/// Optimized twin of `Reference.nearestNeighbours`: for every query row, the support row of largest
/// dot product and that dot product, the lowest support index winning a tie.
///
/// queries: (Q, d, 1, 1); support: (S, d, 1, 1), S >= 1; both L2-normalised by the caller.
/// The support is packed once (`packRows`). Items are fixed blocks of 192 queries: an item
/// transposes its queries into planes (d x 192), then for each block of 256 support rows, in
/// order, computes the similarities with `gemmPlanes` (one FMA reduction over k in order per pair,
/// so a pair's similarity does not depend on the blocking) and updates each query's running best
/// with a strict `>` in support order, which keeps the lowest index on a tie. Differs from the
/// reference only in precision and summation order (Float FMA over k instead of Double), so a
/// near-tie within Float rounding may pick another row. Each item owns its queries' outputs and
/// the blocks are fixed by the shapes: bit-identical for any `workers`.
public func nearestNeighbours(queries: Tensor<Float>, support: Tensor<Float>, workers: Int) -> (index: [Int], similarity: [Float]) {
  checkWorkers(workers)
  let q = queries.shape, s = support.shape
  precondition(q.h == 1 && q.w == 1 && s.h == 1 && s.w == 1, "nearestNeighbours: queries \(q), support \(s), expected (M, d, 1, 1)")
  precondition(q.c == s.c, "nearestNeighbours: queries of dimension \(q.c), support of \(s.c)")
  precondition(s.n >= 1, "nearestNeighbours: empty support")
  let depth = q.c, queryCount = q.n, supportCount = s.n
  let packed = support.data.withUnsafeBufferPointer { packRows($0.baseAddress!, rows: supportCount, depth: depth, transposed: false) }
  var index = [Int](repeating: 0, count: queryCount)
  var similarity = [Float](repeating: 0, count: queryCount)
  let items = (queryCount + nearestNeighbourQueryBlock - 1) / nearestNeighbourQueryBlock
  queries.data.withUnsafeBufferPointer { queryBuffer in
    packed.withUnsafeBufferPointer { packedBuffer in
      index.withUnsafeMutableBufferPointer { indexBuffer in
        similarity.withUnsafeMutableBufferPointer { similarityBuffer in
          // Disjoint writes: item i writes index and similarity of queries [192 i, 192 i + 192) only.
          nonisolated(unsafe) let rows = queryBuffer.baseAddress!
          nonisolated(unsafe) let packedSupport = packedBuffer.baseAddress!
          nonisolated(unsafe) let bestIndex = indexBuffer.baseAddress!
          nonisolated(unsafe) let bestSimilarity = similarityBuffer.baseAddress!
          parallelFor(items, workers: workers) { item in
            let first = item * nearestNeighbourQueryBlock
            let count = min(nearestNeighbourQueryBlock, queryCount - first)
            nearestNeighbourBlock(
              rows + first * depth, count: count, depth: depth, packedSupport: packedSupport, supportCount: supportCount,
              index: bestIndex + first, similarity: bestSimilarity + first)
          }
        }
      }
    }
  }
  return (index, similarity)
}

/// One item of `nearestNeighbours`: `count` (<= 192) query rows against the whole packed support.
@inline(__always)
func nearestNeighbourBlock(
  _ queryRows: UnsafePointer<Float>, count: Int, depth: Int, packedSupport: UnsafePointer<Float>, supportCount: Int,
  index: UnsafeMutablePointer<Int>, similarity: UnsafeMutablePointer<Float>
) {
  let lanes = roundUp(count, 8)
  withScratch(depth * count + nearestNeighbourSupportBlock * count + 8) { scratch in
    // The queries as planes (depth x count), the layout `gemmPlanes` multiplies.
    let planes = scratch
    for m in 0..<count {
      for k in 0..<depth { planes[k * count + m] = queryRows[m * depth + k] }
    }
    // Similarities (rows x count) of one support block; 8 spare values so the last 8-lane read of
    // the last row stays inside the buffer (lanes past `count` are never kept).
    let block = scratch + depth * count
    var best = [Vec8](repeating: Vec8(repeating: -.infinity), count: lanes / 8)
    var bestRow = [SIMD8<Int32>](repeating: SIMD8<Int32>(repeating: 0), count: lanes / 8)
    var start = 0
    while start < supportCount {
      let rowCount = min(nearestNeighbourSupportBlock, supportCount - start)
      // packRows stores blocks of 4 rows one after another, and `start` is a multiple of 4.
      gemmPlanes(
        UnsafePointer(planes), batch: 1, depth: depth, pixels: count, packed: packedSupport + start * depth, rows: rowCount,
        bias: nil, output: block, workers: 1)
      for chunk in 0..<(lanes / 8) {
        var b = best[chunk], r = bestRow[chunk]
        var p = UnsafePointer(block) + 8 * chunk
        for row in 0..<rowCount {
          let v = load8(p)
          // Strictly greater: an earlier (lower) support row keeps a tie.
          let better = v .> b
          b.replace(with: v, where: better)
          r.replace(with: SIMD8<Int32>(repeating: Int32(start + row)), where: better)
          p += count
        }
        best[chunk] = b
        bestRow[chunk] = r
      }
      start += rowCount
    }
    for m in 0..<count {
      index[m] = Int(bestRow[m / 8][m % 8])
      similarity[m] = best[m / 8][m % 8]
    }
  }
}
