// MARK: - ReLU

/// `out = max(in, 0)` elementwise; a NaN input stays NaN, as in PyTorch.
/// input: (N, C, H, W), W fastest. Returns the same shape.
public func reluForward(input: Tensor<Double>) -> Tensor<Double> {
  var output = Tensor<Double>(zeros: input.shape)
  for i in 0..<input.data.count {
    let v = input.data[i]
    output.data[i] = v > 0 || v.isNaN ? v : 0
  }
  return output
}

/// Gradient of `reluForward`, from its output: `gradIn = gradOut` where `out > 0`, else 0
/// (the derivative at 0 is taken as 0).
/// output, gradOutput: (N, C, H, W). Returns gradInput of the same shape.
public func reluBackward(output: Tensor<Double>, gradOutput: Tensor<Double>) -> Tensor<Double> {
  gradOutput.checkShape(output.shape, "reluBackward gradOutput")
  var gradInput = Tensor<Double>(zeros: output.shape)
  for i in 0..<output.data.count where output.data[i] > 0 {
    gradInput.data[i] = gradOutput.data[i]
  }
  return gradInput
}
