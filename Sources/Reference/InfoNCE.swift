import Foundation

// MARK: - Pixel InfoNCE (docs/PROTOCOL.md section 3)

public enum InfoNCEConstants {
  /// tau (code).
  public static let temperature = 0.53
  /// M, the positions sampled per batch (code).
  public static let sampledPositions = 1000
}

/// Pixel InfoNCE on paired rows, with its gradients.
///
/// z, zPrime: (M, d, 1, 1), M >= 1, normally L2-normalised (`l2NormalizeForward`) so that dot
/// products are cosine similarities; row i of z and row i of zPrime are positives. With the 2M rows
/// r = [z; zPrime] (z first) and `S[i, j] = <r_i, r_j> / temperature`:
/// `loss = (1 / 2M) · sum over i of ( -S[i, t(i)] + log sum over j != i of exp S[i, j] )`,
/// t(i) = i + M mod 2M, the partner in the other view: a cross-entropy over each row of the
/// similarity matrix without its diagonal. Returns the loss and its gradients, both (M, d, 1, 1).
public func infoNCE(z: Tensor<Double>, zPrime: Tensor<Double>, temperature: Double = InfoNCEConstants.temperature)
  -> (loss: Double, gradZ: Tensor<Double>, gradZPrime: Tensor<Double>)
{
  let s = z.shape
  precondition(s.n >= 1 && s.h == 1 && s.w == 1, "infoNCE: z \(s), expected (M, d, 1, 1) with M >= 1")
  zPrime.checkShape(s, "infoNCE zPrime")
  precondition(temperature > 0, "infoNCE: temperature \(temperature) must be positive")
  let rows = Tensor(shape: Shape(2 * s.n, s.c, 1, 1), data: z.data + zPrime.data)
  let logits = infoNCELogits(rows: rows, temperature: temperature)
  let (loss, gradLogits) = infoNCECrossEntropy(logits: logits, pairs: s.n)
  let gradRows = infoNCERowGradients(rows: rows, gradLogits: gradLogits, temperature: temperature)
  let half = s.count
  let gradZ = Tensor(shape: s, data: Array(gradRows.data[0..<half]))
  let gradZPrime = Tensor(shape: s, data: Array(gradRows.data[half..<(2 * half)]))
  return (loss, gradZ, gradZPrime)
}

/// The 2M x 2M matrix `S[i, j] = <r_i, r_j> / temperature`, row-major (the diagonal is computed
/// but never used). S is symmetric: each pair's dot product is computed once and stored twice.
/// rows: (2M, d, 1, 1).
func infoNCELogits(rows: Tensor<Double>, temperature: Double) -> [Double] {
  let count = rows.shape.n, d = rows.shape.c
  var logits = [Double](repeating: 0, count: count * count)
  for i in 0..<count {
    for j in i..<count {
      var dot = 0.0
      for c in 0..<d { dot += rows[i, c, 0, 0] * rows[j, c, 0, 0] }
      logits[i * count + j] = dot / temperature
      logits[j * count + i] = dot / temperature
    }
  }
  return logits
}

/// The mean over the 2M rows of the cross-entropy of row i (diagonal dropped) with target
/// t(i) = i + M mod 2M, and its gradient with respect to the logits:
/// `dL/dS[i, j] = (softmax_i(S)[j] - [j = t(i)]) / 2M` for j != i, 0 on the diagonal.
/// Each row's log-sum-exp subtracts the row maximum first.
func infoNCECrossEntropy(logits: [Double], pairs: Int) -> (loss: Double, gradLogits: [Double]) {
  let count = 2 * pairs
  var gradLogits = [Double](repeating: 0, count: count * count)
  var loss = 0.0
  for i in 0..<count {
    let target = (i + pairs) % count
    var rowMax = -Double.infinity
    for j in 0..<count where j != i { rowMax = max(rowMax, logits[i * count + j]) }
    var sumExp = 0.0
    for j in 0..<count where j != i { sumExp += exp(logits[i * count + j] - rowMax) }
    let logSumExp = rowMax + log(sumExp)
    loss += logSumExp - logits[i * count + target]
    for j in 0..<count where j != i {
      let probability = exp(logits[i * count + j] - logSumExp)
      gradLogits[i * count + j] = (probability - (j == target ? 1 : 0)) / Double(count)
    }
  }
  return (loss / Double(count), gradLogits)
}

/// Back through `S[i, j] = <r_i, r_j> / temperature`: row k receives
/// `(1 / temperature) · sum over j of (G[k, j] + G[j, k]) · r_j`, G = dL/dS.
/// rows: (2M, d, 1, 1); gradLogits: 2M x 2M row-major. Returns (2M, d, 1, 1).
func infoNCERowGradients(rows: Tensor<Double>, gradLogits: [Double], temperature: Double) -> Tensor<Double> {
  let count = rows.shape.n, d = rows.shape.c
  var gradRows = Tensor<Double>(zeros: rows.shape)
  for k in 0..<count {
    for j in 0..<count {
      let weight = (gradLogits[k * count + j] + gradLogits[j * count + k]) / temperature
      for c in 0..<d { gradRows[k, c, 0, 0] += weight * rows[j, c, 0, 0] }
    }
  }
  return gradRows
}
