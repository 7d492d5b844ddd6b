// MARK: - 2x2 max-pool, stride 2 (the downsampling of every Down block)

/// 2x2 max-pool, stride 2: `out[n, c, y, x]` is the largest of `in[n, c, 2y + i, 2x + j]`, i, j in {0, 1}.
/// input: (N, C, H, W) with H and W even, W fastest. Returns (N, C, H/2, W/2).
/// Ties: the first maximum in row-major order within the window wins, (0, 0), (0, 1), (1, 0),
/// (1, 1), as in PyTorch's CPU kernel; a NaN in the window wins over any number.
public func maxPool2x2Forward(input: Tensor<Double>) -> Tensor<Double> {
  let s = input.shape
  precondition(s.h % 2 == 0 && s.w % 2 == 0, "maxPool2x2Forward: input \(s), expected even H and W")
  var output = Tensor<Double>(zeros: Shape(s.n, s.c, s.h / 2, s.w / 2))
  for n in 0..<s.n {
    for c in 0..<s.c {
      for y in 0..<(s.h / 2) {
        for x in 0..<(s.w / 2) {
          let (i, j) = maxPoolWinner(input, n, c, y, x)
          output[n, c, y, x] = input[n, c, 2 * y + i, 2 * x + j]
        }
      }
    }
  }
  return output
}

/// Gradient of `maxPool2x2Forward`: each `gradOut[n, c, y, x]` goes to its window's winner (the same
/// tie rule, recomputed from `input`); the other three entries get 0.
/// input: (N, C, H, W); gradOutput: (N, C, H/2, W/2). Returns gradInput (N, C, H, W).
public func maxPool2x2Backward(input: Tensor<Double>, gradOutput: Tensor<Double>) -> Tensor<Double> {
  let s = input.shape
  precondition(s.h % 2 == 0 && s.w % 2 == 0, "maxPool2x2Backward: input \(s), expected even H and W")
  gradOutput.checkShape(Shape(s.n, s.c, s.h / 2, s.w / 2), "maxPool2x2Backward gradOutput")
  var gradInput = Tensor<Double>(zeros: s)
  for n in 0..<s.n {
    for c in 0..<s.c {
      for y in 0..<(s.h / 2) {
        for x in 0..<(s.w / 2) {
          let (i, j) = maxPoolWinner(input, n, c, y, x)
          gradInput[n, c, 2 * y + i, 2 * x + j] = gradOutput[n, c, y, x]
        }
      }
    }
  }
  return gradInput
}

/// The offset (i, j) of the winner of window (y, x): visited in row-major order, a later entry
/// replaces the current winner only when strictly larger (or when it is the first NaN).
private func maxPoolWinner(_ input: Tensor<Double>, _ n: Int, _ c: Int, _ y: Int, _ x: Int) -> (Int, Int) {
  var best = (0, 0)
  var bestValue = input[n, c, 2 * y, 2 * x]
  for i in 0..<2 {
    for j in 0..<2 {
      let v = input[n, c, 2 * y + i, 2 * x + j]
      if v > bestValue || (v.isNaN && !bestValue.isNaN) {
        best = (i, j)
        bestValue = v
      }
    }
  }
  return best
}
