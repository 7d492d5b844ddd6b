// MARK: - Nearest-neighbour search (in-context segmentation, docs/PROTOCOL.md section 9)
//
// In-context segmentation labels every query pixel with the label of its nearest support pixel by
// cosine similarity of the projected representations g(f(x)). With L2-normalised rows the cosine is
// the dot product, so the search is: for each query row, the support row of largest dot product.

/// For every query row, the support row of largest dot product and that dot product; on a tie the
/// lowest support index wins. A brute-force search over every pair, accumulated in Double.
///
/// queries: (Q, d, 1, 1); support: (S, d, 1, 1), S >= 1. Rows are L2-normalised by the caller
/// (`l2NormalizeForward`), so the dot product is the cosine similarity. Returns Q indices into the
/// support and Q similarities.
public func nearestNeighbours(queries: Tensor<Double>, support: Tensor<Double>) -> (index: [Int], similarity: [Double]) {
  let q = queries.shape, s = support.shape
  precondition(q.h == 1 && q.w == 1 && s.h == 1 && s.w == 1, "nearestNeighbours: queries \(q), support \(s), expected (M, d, 1, 1)")
  precondition(q.c == s.c, "nearestNeighbours: queries of dimension \(q.c), support of \(s.c)")
  precondition(s.n >= 1, "nearestNeighbours: empty support")
  var index = [Int](repeating: 0, count: q.n)
  var similarity = [Double](repeating: 0, count: q.n)
  for m in 0..<q.n {
    var best = -Double.infinity
    var bestIndex = 0
    for j in 0..<s.n {
      var dot = 0.0
      for c in 0..<q.c { dot += queries[m, c, 0, 0] * support[j, c, 0, 0] }
      // Strictly greater: the first (lowest) index keeps a tie.
      if dot > best {
        best = dot
        bestIndex = j
      }
    }
    index[m] = bestIndex
    similarity[m] = best
  }
  return (index, similarity)
}

extension Backend {
  /// The label of every query row's nearest support row (`nearestNeighbours` on this backend).
  ///
  /// queries: (Q, d, 1, 1) and support: (S, d, 1, 1), both L2-normalised; supportLabels: S labels.
  /// Returns Q labels.
  public func nearestNeighbourLabels(queries: Tensor<Scalar>, support: Tensor<Scalar>, supportLabels: [UInt8]) -> [UInt8] {
    precondition(supportLabels.count == support.shape.n, "nearestNeighbourLabels: \(supportLabels.count) labels for \(support.shape.n) support rows")
    return nearestNeighbours(queries: queries, support: support).index.map { supportLabels[$0] }
  }
}

/// Every pixel's feature vector as a row: `rows[n·H·W + y·W + x, c] = tensor[n, c, y, x]`.
///
/// tensor: (N, C, H, W). Returns (N·H·W, C, 1, 1), the pixels in the order of `gatherPixels`.
@inlinable
public func pixelRows<Scalar>(_ tensor: Tensor<Scalar>) -> Tensor<Scalar> {
  let s = tensor.shape
  var rows = Tensor<Scalar>(zeros: Shape(s.n * s.plane, s.c, 1, 1))
  for n in 0..<s.n {
    for c in 0..<s.c {
      for p in 0..<s.plane { rows.data[(n * s.plane + p) * s.c + c] = tensor.data[(n * s.c + c) * s.plane + p] }
    }
  }
  return rows
}
