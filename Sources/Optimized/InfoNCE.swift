import Foundation
import Reference

// MARK: - Pixel InfoNCE

/// Optimized twin of `Reference.infoNCE`: pixel InfoNCE on paired rows z, zPrime: (M, d, 1, 1).
/// With r = [z; zPrime] and `S = r rᵀ / temperature` (2M x 2M), the mean over rows of the
/// cross-entropy of row i without its diagonal, target t(i) = i + M mod 2M. Returns the loss and its
/// gradients, both (M, d, 1, 1).
///
/// S and the row gradient `(G + Gᵀ) r / temperature` are GEMMs (`gemmPlanes`); each row's
/// log-sum-exp runs in Double over Float exponentials, rows owned by one iteration each, and the
/// loss adds the rows in order. Differs from the reference only in precision and summation order;
/// bitwise deterministic for any `workers`.
public func infoNCE(z: Tensor<Float>, zPrime: Tensor<Float>, temperature: Double, workers: Int)
  -> (loss: Double, gradZ: Tensor<Float>, gradZPrime: Tensor<Float>)
{
  checkWorkers(workers)
  let s = z.shape
  precondition(s.n >= 1 && s.h == 1 && s.w == 1, "infoNCE: z \(s), expected (M, d, 1, 1) with M >= 1")
  zPrime.checkShape(s, "infoNCE zPrime")
  precondition(temperature > 0, "infoNCE: temperature \(temperature) must be positive")
  let pairs = s.n, count = 2 * s.n, d = s.c
  let rows = z.data + zPrime.data
  let inverseTemperature = Float(1 / temperature)
  var rowLoss = [Double](repeating: 0, count: count)
  let gradRows = rows.withUnsafeBufferPointer { rBuffer -> [Float] in
    let r = rBuffer.baseAddress!
    return withScratch(count * count) { logits in
      // S[i, j] = <r_i, r_j>: rows i of r against the columns of rᵀ.
      withScratch(d * count) { transposed in
        transpose(r, rows: count, columns: d, into: transposed, workers: workers)
        let packed = packRows(r, rows: count, depth: d, transposed: false)
        packed.withUnsafeBufferPointer {
          gemmPlanes(
            transposed, batch: 1, depth: d, pixels: count, packed: $0.baseAddress!, rows: count, bias: nil,
            output: logits, workers: workers)
        }
      }
      // Row i: softmax over j != i of S[i, j] / temperature; logits[i, ·] becomes dL/dS[i, ·].
      rowLoss.withUnsafeMutableBufferPointer { lossBuffer in
        // Disjoint writes: row group k writes rows [64k, 64k + 64) of logits and rowLoss.
        nonisolated(unsafe) let l = logits
        nonisolated(unsafe) let losses = lossBuffer.baseAddress!
        parallelFor((count + rowsPerItem - 1) / rowsPerItem, workers: workers) { k in
          for i in (k * rowsPerItem)..<min(count, (k + 1) * rowsPerItem) {
            infoNCERow(l + i * count, count: count, diagonal: i, target: (i + pairs) % count,
              inverseTemperature: inverseTemperature, loss: losses + i)
          }
        }
      }
      // dL/dr = (G + Gᵀ) r / temperature: transpose G (cache-blocked), then pack the symmetric
      // (G + Gᵀ) / temperature by blocks of 4 rows, reading only whole rows.
      let blocks = (count + 3) / 4
      var packed = [Float](repeating: 0, count: blocks * count * 4)
      withScratch(count * count) { transposedG in
        transpose(logits, rows: count, columns: count, into: transposedG, workers: workers)
        packed.withUnsafeMutableBufferPointer { pBuffer in
          // Disjoint writes: block b writes packed[b * count * 4 ..< (b + 1) * count * 4] only.
          nonisolated(unsafe) let p = pBuffer.baseAddress!
          nonisolated(unsafe) let g = UnsafePointer(logits), t = UnsafePointer(transposedG)
          parallelFor(blocks, workers: workers) { b in
            for m in 0..<min(4, count - 4 * b) {
              let row = (4 * b + m) * count
              for j in 0..<count {
                p[(b * count + j) * 4 + m] = (g[row + j] + t[row + j]) * inverseTemperature
              }
            }
          }
        }
      }
      return makeArray(count * d) { out in
        packed.withUnsafeBufferPointer {
          gemmPlanes(r, batch: 1, depth: count, pixels: d, packed: $0.baseAddress!, rows: count, bias: nil, output: out, workers: workers)
        }
      }
    }
  }
  var loss = 0.0
  for value in rowLoss { loss += value }
  let half = s.count
  return (
    loss / Double(count),
    Tensor(shape: s, data: Array(gradRows[0..<half])),
    Tensor(shape: s, data: Array(gradRows[half..<(2 * half)]))
  )
}

/// out (columns x rows) = the transpose of a row-major (rows x columns) matrix. Parallel over
/// fixed blocks of 32 source rows; each block writes its own columns of `out`.
func transpose(
  _ a: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>, workers: Int
) {
  let block = 32
  // Disjoint writes: block k writes out[·, 32k ..< 32k + 32] only.
  nonisolated(unsafe) let src = a
  nonisolated(unsafe) let dst = out
  parallelFor((rows + block - 1) / block, workers: workers) { k in
    let r1 = min(rows, (k + 1) * block)
    var c0 = 0
    while c0 < columns {
      let c1 = min(columns, c0 + block)
      // Column-major over the 32 x 32 block: contiguous writes, reads from 32 L1-resident rows.
      for c in c0..<c1 {
        let column = dst + c * rows
        for r in (k * block)..<r1 { column[r] = src[r &* columns &+ c] }
      }
      c0 = c1
    }
  }
}

/// One row of the InfoNCE cross-entropy, in place: `row` holds the dot products <r_i, r_j> and
/// becomes dL/dS[i, ·] = (softmax_j(S[i, ·]) - [j = target]) / count with 0 on the diagonal;
/// `loss` receives logsumexp_{j != i} S[i, j] - S[i, target] (in Double). Vectorised with
/// `exp8`; the exponential sum runs in 8 Float lanes combined in a fixed order.
@inline(__always)
func infoNCERow(
  _ row: UnsafeMutablePointer<Float>, count: Int, diagonal: Int, target: Int, inverseTemperature: Float,
  loss: UnsafeMutablePointer<Double>
) {
  let scale = Vec8(repeating: inverseTemperature)
  let targetLogit = Double(row[target] * inverseTemperature)
  row[diagonal] = -.infinity
  // Logits in place, and their maximum (the diagonal excluded by -inf).
  var largest = Vec8(repeating: -.infinity)
  var j = 0
  while j + 8 <= count {
    let v = load8(row + j) * scale
    store8(v, row + j)
    largest = lanewiseMax(largest, v)
    j += 8
  }
  var rowMax = max(max(max(largest[0], largest[1]), max(largest[2], largest[3])), max(max(largest[4], largest[5]), max(largest[6], largest[7])))
  while j < count {
    row[j] *= inverseTemperature
    rowMax = max(rowMax, row[j])
    j += 1
  }
  // Exponentials e_j = exp(S_ij - max) in place, and their sum (e_i = exp(-inf) = 0).
  let shift = Vec8(repeating: rowMax)
  var sum0 = Vec8(), sum1 = Vec8()
  j = 0
  while j + 16 <= count {
    let e0 = exp8(load8(row + j) - shift), e1 = exp8(load8(row + j + 8) - shift)
    store8(e0, row + j)
    store8(e1, row + j + 8)
    sum0 += e0
    sum1 += e1
    j += 16
  }
  var total = Double(laneSum(sum0 + sum1))
  while j < count {
    let lanes = min(8, count - j)
    let e = exp8(loadPartial(row + j, lanes: lanes) - shift)
    store8(e, row + j, lanes: lanes)
    for l in 0..<lanes { total += Double(e[l]) }
    j += lanes
  }
  row[diagonal] = 0
  let logSumExp = Double(rowMax) + log(total)
  loss.pointee = logSumExp - targetLogit
  let normalizer = Float(1 / (total * Double(count)))
  let probability = Vec8(repeating: normalizer)
  j = 0
  while j + 8 <= count {
    store8(load8(row + j) * probability, row + j)
    j += 8
  }
  while j < count {
    row[j] *= normalizer
    j += 1
  }
  row[target] -= 1 / Float(count)
}
