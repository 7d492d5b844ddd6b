// MARK: - Global average pooling (the image-level baselines' pooled features)

/// The mean of each channel over space: `out[n, c, 0, 0] = (1 / HW) · sum over y, x of in[n, c, y, x]`.
///
/// input: (N, C, H, W), W fastest, H·W > 0. Returns (N, C, 1, 1): one row per sample, the layout
/// the row losses (`l2NormalizeForward`, `infoNCE`) take.
public func globalAveragePoolForward(input: Tensor<Double>) -> Tensor<Double> {
  let s = input.shape
  precondition(s.h * s.w > 0, "globalAveragePoolForward: input \(s) has no pixels")
  let pixels = Double(s.h * s.w)
  var output = Tensor<Double>(zeros: Shape(s.n, s.c, 1, 1))
  for n in 0..<s.n {
    for c in 0..<s.c {
      var sum = 0.0
      for y in 0..<s.h {
        for x in 0..<s.w { sum += input[n, c, y, x] }
      }
      output[n, c, 0, 0] = sum / pixels
    }
  }
  return output
}

/// Gradient of `globalAveragePoolForward`: every pixel of a plane receives its pooled value's
/// gradient divided by the plane's size, `gradIn[n, c, y, x] = gradOut[n, c, 0, 0] / HW`.
///
/// gradOutput: (N, C, 1, 1); height, width: the forward input's H and W. Returns (N, C, H, W).
public func globalAveragePoolBackward(gradOutput: Tensor<Double>, height: Int, width: Int) -> Tensor<Double> {
  let s = gradOutput.shape
  precondition(s.h == 1 && s.w == 1, "globalAveragePoolBackward: gradOutput \(s), expected (N, C, 1, 1)")
  precondition(height > 0 && width > 0, "globalAveragePoolBackward: input size \(height) x \(width) has no pixels")
  let pixels = Double(height * width)
  var gradInput = Tensor<Double>(zeros: Shape(s.n, s.c, height, width))
  for n in 0..<s.n {
    for c in 0..<s.c {
      let share = gradOutput[n, c, 0, 0] / pixels
      for y in 0..<height {
        for x in 0..<width { gradInput[n, c, y, x] = share }
      }
    }
  }
  return gradInput
}
