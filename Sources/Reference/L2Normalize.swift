// MARK: - L2 normalisation of pixel feature vectors

public enum L2NormalizeConstants {
  /// Norms below this are replaced by it, as in PyTorch's `F.normalize` (eps 1e-12), so a zero row
  /// maps to zero instead of NaN.
  public static let epsilon = 1e-12
}

/// Each row divided by its L2 norm: `out[m, :] = in[m, :] / max(||in[m, :]||, eps)`.
///
/// input: (M, d, 1, 1). Returns (M, d, 1, 1) whose rows have norm 1 (or are zero, for zero rows).
public func l2NormalizeForward(input: Tensor<Double>) -> Tensor<Double> {
  let s = input.shape
  precondition(s.h == 1 && s.w == 1, "l2NormalizeForward: input \(s), expected (M, d, 1, 1)")
  var output = Tensor<Double>(zeros: s)
  for m in 0..<s.n {
    var squares = 0.0
    for c in 0..<s.c { squares += input[m, c, 0, 0] * input[m, c, 0, 0] }
    let norm = max(squares.squareRoot(), L2NormalizeConstants.epsilon)
    for c in 0..<s.c { output[m, c, 0, 0] = input[m, c, 0, 0] / norm }
  }
  return output
}

/// Gradient of `l2NormalizeForward`. With `r = ||x||` and `y = x / r`:
/// `gradIn = (gradOut - y · <y, gradOut>) / r` (the projection orthogonal to y, scaled by 1/r);
/// below eps the map is `x / eps`, linear, and `gradIn = gradOut / eps`.
///
/// input, gradOutput: (M, d, 1, 1). Returns gradInput (M, d, 1, 1).
public func l2NormalizeBackward(input: Tensor<Double>, gradOutput: Tensor<Double>) -> Tensor<Double> {
  let s = input.shape
  gradOutput.checkShape(s, "l2NormalizeBackward gradOutput")
  precondition(s.h == 1 && s.w == 1, "l2NormalizeBackward: input \(s), expected (M, d, 1, 1)")
  var gradInput = Tensor<Double>(zeros: s)
  for m in 0..<s.n {
    var squares = 0.0
    for c in 0..<s.c { squares += input[m, c, 0, 0] * input[m, c, 0, 0] }
    let norm = squares.squareRoot()
    if norm <= L2NormalizeConstants.epsilon {
      for c in 0..<s.c { gradInput[m, c, 0, 0] = gradOutput[m, c, 0, 0] / L2NormalizeConstants.epsilon }
      continue
    }
    var projection = 0.0
    for c in 0..<s.c { projection += input[m, c, 0, 0] / norm * gradOutput[m, c, 0, 0] }
    for c in 0..<s.c {
      let y = input[m, c, 0, 0] / norm
      gradInput[m, c, 0, 0] = (gradOutput[m, c, 0, 0] - y * projection) / norm
    }
  }
  return gradInput
}
