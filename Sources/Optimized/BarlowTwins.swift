import Reference

// MARK: - Pixel Barlow Twins

/// Optimized twin of `Reference.barlowTwins`: pixel Barlow Twins on paired rows z, zPrime:
/// (N, d, 1, 1). Components standardised over the N pairs (biased variance, eps 1e-5 inside the
/// root), `C = uᵀ u' / N`, `loss = sum (C_ii - 1)² + lambda sum_{i != j} C_ij²`. Returns the loss
/// and its gradients, both (N, d, 1, 1).
///
/// Works on transposed (d x N) copies so every component is a contiguous row: C is a fixed-chunk
/// pixel reduction (`gemmReducePixels`), the gradients through C are GEMMs (`gemmPlanes`). Differs
/// from the reference only in precision and summation order; bitwise deterministic for any `workers`.
public func barlowTwins(z: Tensor<Float>, zPrime: Tensor<Float>, lambda: Double, workers: Int)
  -> (loss: Double, gradZ: Tensor<Float>, gradZPrime: Tensor<Float>)
{
  checkWorkers(workers)
  let s = z.shape
  precondition(s.n >= 1 && s.h == 1 && s.w == 1, "barlowTwins: z \(s), expected (N, d, 1, 1) with N >= 1")
  zPrime.checkShape(s, "barlowTwins zPrime")
  let n = s.n, d = s.c
  let u = standardizeRows(transposed(z.data, rows: n, columns: d, workers: workers), rows: d, columns: n, workers: workers)
  let uPrime = standardizeRows(
    transposed(zPrime.data, rows: n, columns: d, workers: workers), rows: d, columns: n, workers: workers)
  // C[i, j] = (1 / N) sum_p u_i(p) u'_j(p).
  var correlation = [Float](repeating: 0, count: d * d)
  u.output.withUnsafeBufferPointer { a in
    uPrime.output.withUnsafeBufferPointer { b in
      correlation.withUnsafeMutableBufferPointer { c in
        gemmReducePixels(
          a.baseAddress!, rows: d, b.baseAddress!, depth: d, batch: 1, pixels: n, output: c.baseAddress!, workers: workers)
      }
    }
  }
  var loss = 0.0
  // G = dL/dC divided by N (the 1 / N of C's definition folded in).
  var gradC = [Float](repeating: 0, count: d * d)
  for i in 0..<d {
    for j in 0..<d {
      let c = Double(correlation[i * d + j]) / Double(n)
      loss += i == j ? (c - 1) * (c - 1) : lambda * c * c
      gradC[i * d + j] = Float((i == j ? 2 * (c - 1) : 2 * lambda * c) / Double(n))
    }
  }
  // dL/du_k(p) = sum_j G[k, j] u'_j(p); dL/du'_k(p) = sum_i G[i, k] u_i(p).
  func through(_ other: [Float], transposedG: Bool) -> [Float] {
    let packed = gradC.withUnsafeBufferPointer { packRows($0.baseAddress!, rows: d, depth: d, transposed: transposedG) }
    return makeArray(d * n) { out in
      other.withUnsafeBufferPointer { x in
        packed.withUnsafeBufferPointer {
          gemmPlanes(x.baseAddress!, batch: 1, depth: d, pixels: n, packed: $0.baseAddress!, rows: d, bias: nil, output: out, workers: workers)
        }
      }
    }
  }
  let gradU = through(uPrime.output, transposedG: false)
  let gradUPrime = through(u.output, transposedG: true)
  let gradZ = standardizeRowsBackward(u, gradOutput: gradU, rows: d, columns: n, workers: workers)
  let gradZPrime = standardizeRowsBackward(uPrime, gradOutput: gradUPrime, rows: d, columns: n, workers: workers)
  return (
    loss,
    Tensor(shape: s, data: transposed(gradZ, rows: d, columns: n, workers: workers)),
    Tensor(shape: s, data: transposed(gradZPrime, rows: d, columns: n, workers: workers))
  )
}

/// The transpose of a row-major (rows x columns) array.
func transposed(_ a: [Float], rows: Int, columns: Int, workers: Int) -> [Float] {
  makeArray(rows * columns) { out in
    a.withUnsafeBufferPointer { transpose($0.baseAddress!, rows: rows, columns: columns, into: out, workers: workers) }
  }
}

/// Rows standardised over their columns, and the per-row 1 / sqrt(var + eps).
struct StandardizedRows {
  var output: [Float]
  var inverseStd: [Float]
}

/// Each row of a (rows x columns) array to zero mean and unit biased variance, eps
/// `BarlowTwinsConstants.epsilon` inside the root. Parallel over rows.
func standardizeRows(_ x: [Float], rows: Int, columns: Int, workers: Int) -> StandardizedRows {
  var inverseStd = [Float](repeating: 0, count: rows)
  let output = makeArray(rows * columns) { out in
    x.withUnsafeBufferPointer { xBuffer in
      inverseStd.withUnsafeMutableBufferPointer { sBuffer in
        // Disjoint writes: iteration r writes row r and inverseStd[r].
        nonisolated(unsafe) let src = xBuffer.baseAddress!, std = sBuffer.baseAddress!
        nonisolated(unsafe) let dst = out
        parallelFor(rows, workers: workers) { r in
          let row = src + r * columns
          let mean = planeSum(row, count: columns) / Double(columns)
          let variance = planeSquaredDeviations(row, count: columns, mean: Float(mean)) / Double(columns)
          let inv = 1 / (variance + BarlowTwinsConstants.epsilon).squareRoot()
          std[r] = Float(inv)
          let scale = Vec8(repeating: Float(inv)), shift = Vec8(repeating: Float(-mean * inv))
          mapPlane(row, dst + r * columns, count: columns) { $0 * scale + shift }
        }
      }
    }
  }
  return StandardizedRows(output: output, inverseStd: inverseStd)
}

/// Gradient of `standardizeRows`: `gradIn = inverseStd · (g - mean(g) - u · mean(g · u))` per row.
func standardizeRowsBackward(_ forward: StandardizedRows, gradOutput: [Float], rows: Int, columns: Int, workers: Int)
  -> [Float]
{
  makeArray(rows * columns) { out in
    forward.output.withUnsafeBufferPointer { uBuffer in
      gradOutput.withUnsafeBufferPointer { gBuffer in
        forward.inverseStd.withUnsafeBufferPointer { sBuffer in
          // Disjoint writes: iteration r writes row r only.
          nonisolated(unsafe) let u = uBuffer.baseAddress!, g = gBuffer.baseAddress!, std = sBuffer.baseAddress!
          nonisolated(unsafe) let dst = out
          parallelFor(rows, workers: workers) { r in
            let uRow = u + r * columns, gRow = g + r * columns
            let meanGrad = Vec8(repeating: Float(planeSum(gRow, count: columns) / Double(columns)))
            let meanGradU = Vec8(repeating: dotProduct(gRow, uRow, count: columns) / Float(columns))
            let k = Vec8(repeating: std[r])
            mapPlanes(uRow, gRow, dst + r * columns, count: columns) { uv, gv in k * (gv - meanGrad - uv * meanGradU) }
          }
        }
      }
    }
  }
}
