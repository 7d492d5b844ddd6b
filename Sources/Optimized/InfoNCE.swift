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
            let row = l + i * count
            let target = (i + pairs) % count
            var rowMax = -Float.infinity
            for j in 0..<count where j != i { rowMax = max(rowMax, row[j] * inverseTemperature) }
            var sumExp = 0.0
            for j in 0..<count where j != i { sumExp += Double(exp(row[j] * inverseTemperature - rowMax)) }
            let logSumExp = Double(rowMax) + log(sumExp)
            losses[i] = logSumExp - Double(row[target] * inverseTemperature)
            let lse = Float(logSumExp)
            let scale = 1 / Float(count)
            for j in 0..<count {
              let p = j == i ? 0 : exp(row[j] * inverseTemperature - lse)
              row[j] = (p - (j == target ? 1 : 0)) * scale
            }
            row[i] = 0
          }
        }
      }
      // dL/dr = (G + Gᵀ) r / temperature: pack the symmetric (G + Gᵀ) / temperature by row blocks.
      let blocks = (count + 3) / 4
      var packed = [Float](repeating: 0, count: blocks * count * 4)
      packed.withUnsafeMutableBufferPointer { pBuffer in
        // Disjoint writes: block b writes packed[b * count * 4 ..< (b + 1) * count * 4] only.
        nonisolated(unsafe) let p = pBuffer.baseAddress!
        nonisolated(unsafe) let g = UnsafePointer(logits)
        parallelFor(blocks, workers: workers) { b in
          for m in 0..<min(4, count - 4 * b) {
            let k = 4 * b + m
            for j in 0..<count {
              p[(b * count + j) * 4 + m] = (g[k * count + j] + g[j * count + k]) * inverseTemperature
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
      for r in (k * block)..<r1 {
        for c in c0..<c1 { dst[c * rows + r] = src[r * columns + c] }
      }
      c0 = c1
    }
  }
}
