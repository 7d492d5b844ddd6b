// MARK: - Pixel Barlow Twins (docs/PROTOCOL.md section 3, "Pix2Rep-v2")

public enum BarlowTwinsConstants {
  /// Weight of the off-diagonal (redundancy) term, from the Pix2Rep-v2 paper (docs/PROTOCOL.md
  /// section 3).
  public static let lambda = 5e-3
  /// Added to each component's variance inside the square root of the standardisation, as in the
  /// `BatchNorm1d(affine=False)` (eps 1e-5) of the Barlow Twins reference code; the paper gives
  /// none (docs/PROTOCOL.md section 7). It keeps a constant component finite (it standardises to 0)
  /// and makes standardised inputs come out scaled by 1 / sqrt(1 + eps), so identical standardised
  /// decorrelated views give `d · (eps / (1 + eps))²`, not exactly 0.
  public static let epsilon = 1e-5
}

/// Pixel Barlow Twins on paired rows, with its gradients.
///
/// z, zPrime: (N, d, 1, 1), row p of each describing the same pixel. Each of the d components is
/// standardised over the N pairs, `u_i(p) = (z_i(p) - mean_i) / sqrt(var_i + eps)` with the biased
/// variance (divided by N, as BatchNorm does in training), likewise u'; then
/// `C[i, j] = (1 / N) · sum over p of u_i(p) · u'_j(p)` and
/// `loss = sum over i of (C[i, i] - 1)² + lambda · sum over i != j of C[i, j]²`.
/// Returns the loss and its gradients with respect to z and zPrime, both (N, d, 1, 1).
public func barlowTwins(z: Tensor<Double>, zPrime: Tensor<Double>, lambda: Double = BarlowTwinsConstants.lambda)
  -> (loss: Double, gradZ: Tensor<Double>, gradZPrime: Tensor<Double>)
{
  let s = z.shape
  precondition(s.n >= 1 && s.h == 1 && s.w == 1, "barlowTwins: z \(s), expected (N, d, 1, 1) with N >= 1")
  zPrime.checkShape(s, "barlowTwins zPrime")
  let u = standardizeColumnsForward(z)
  let uPrime = standardizeColumnsForward(zPrime)
  let d = s.c, pairs = Double(s.n)
  var loss = 0.0
  // G = dL/dC: 2 (C_ii - 1) on the diagonal, 2 lambda C_ij off it.
  var gradC = [Double](repeating: 0, count: d * d)
  for i in 0..<d {
    for j in 0..<d {
      var sum = 0.0
      for p in 0..<s.n { sum += u.output[p, i, 0, 0] * uPrime.output[p, j, 0, 0] }
      let c = sum / pairs
      loss += i == j ? (c - 1) * (c - 1) : lambda * c * c
      gradC[i * d + j] = i == j ? 2 * (c - 1) : 2 * lambda * c
    }
  }
  // dL/du_i(p) = (1/N) sum_j G_ij u'_j(p); dL/du'_j(p) = (1/N) sum_i G_ij u_i(p).
  var gradU = Tensor<Double>(zeros: s)
  var gradUPrime = Tensor<Double>(zeros: s)
  for p in 0..<s.n {
    for k in 0..<d {
      var sum = 0.0, sumPrime = 0.0
      for j in 0..<d {
        sum += gradC[k * d + j] * uPrime.output[p, j, 0, 0]
        sumPrime += gradC[j * d + k] * u.output[p, j, 0, 0]
      }
      gradU[p, k, 0, 0] = sum / pairs
      gradUPrime[p, k, 0, 0] = sumPrime / pairs
    }
  }
  let gradZ = standardizeColumnsBackward(u, gradOutput: gradU)
  let gradZPrime = standardizeColumnsBackward(uPrime, gradOutput: gradUPrime)
  return (loss, gradZ, gradZPrime)
}

/// Columns standardised over the rows, and the per-column 1 / sqrt(var + eps) the backward needs.
struct StandardizedColumns {
  /// (N, d, 1, 1): `(z - mean) · inverseStd` per column.
  var output: Tensor<Double>
  /// (d): 1 / sqrt(biased variance + eps).
  var inverseStd: [Double]
}

/// Standardises each column of x: (N, d, 1, 1) to zero mean and unit (biased) variance over its N
/// rows, with `BarlowTwinsConstants.epsilon` inside the square root.
func standardizeColumnsForward(_ x: Tensor<Double>) -> StandardizedColumns {
  let s = x.shape
  var output = Tensor<Double>(zeros: s)
  var inverseStd = [Double](repeating: 0, count: s.c)
  for c in 0..<s.c {
    var sum = 0.0
    for p in 0..<s.n { sum += x[p, c, 0, 0] }
    let mean = sum / Double(s.n)
    var squares = 0.0
    for p in 0..<s.n { squares += (x[p, c, 0, 0] - mean) * (x[p, c, 0, 0] - mean) }
    let variance = squares / Double(s.n)
    inverseStd[c] = 1 / (variance + BarlowTwinsConstants.epsilon).squareRoot()
    for p in 0..<s.n { output[p, c, 0, 0] = (x[p, c, 0, 0] - mean) * inverseStd[c] }
  }
  return StandardizedColumns(output: output, inverseStd: inverseStd)
}

/// Gradient of `standardizeColumnsForward` (BatchNorm's, without affine parameters): per column,
/// `gradIn = inverseStd · (gradOut - mean(gradOut) - u · mean(gradOut · u))`, u the standardised
/// output, means over the N rows.
func standardizeColumnsBackward(_ forward: StandardizedColumns, gradOutput: Tensor<Double>) -> Tensor<Double> {
  let u = forward.output
  let s = u.shape
  var gradInput = Tensor<Double>(zeros: s)
  for c in 0..<s.c {
    var sumGrad = 0.0, sumGradU = 0.0
    for p in 0..<s.n {
      sumGrad += gradOutput[p, c, 0, 0]
      sumGradU += gradOutput[p, c, 0, 0] * u[p, c, 0, 0]
    }
    let meanGrad = sumGrad / Double(s.n), meanGradU = sumGradU / Double(s.n)
    for p in 0..<s.n {
      let g = gradOutput[p, c, 0, 0] - meanGrad - u[p, c, 0, 0] * meanGradU
      gradInput[p, c, 0, 0] = forward.inverseStd[c] * g
    }
  }
  return gradInput
}
