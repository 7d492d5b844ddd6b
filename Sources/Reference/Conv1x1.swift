// MARK: - 1x1 convolution (projection head and segmentation head)

/// 1x1 convolution with bias: a per-pixel linear map of the channels.
///
/// input: (N, Cin, H, W), W fastest; weight: (Cout, Cin), PyTorch's (Cout, Cin, 1, 1) flat;
/// bias: (Cout). Returns (N, Cout, H, W):
/// `out[n, o, y, x] = bias[o] + sum over c of in[n, c, y, x] · weight[o, c]`.
public func conv1x1Forward(input: Tensor<Double>, weight: [Double], bias: [Double]) -> Tensor<Double> {
  let s = input.shape
  let outputChannels = bias.count
  precondition(outputChannels > 0, "conv1x1Forward: empty bias, expected (Cout) with Cout > 0")
  precondition(
    weight.count == outputChannels * s.c,
    "conv1x1Forward: weight has \(weight.count) values, expected (\(outputChannels), \(s.c))")
  var output = Tensor<Double>(zeros: Shape(s.n, outputChannels, s.h, s.w))
  for n in 0..<s.n {
    for o in 0..<outputChannels {
      for y in 0..<s.h {
        for x in 0..<s.w {
          var sum = bias[o]
          for c in 0..<s.c {
            sum += input[n, c, y, x] * weight[o * s.c + c]
          }
          output[n, o, y, x] = sum
        }
      }
    }
  }
  return output
}

/// Gradients of `conv1x1Forward`.
///
/// input: (N, Cin, H, W); weight: (Cout, Cin); gradOutput: (N, Cout, H, W).
/// Returns gradInput (N, Cin, H, W), gradWeight (Cout, Cin) and gradBias (Cout):
/// `gradInput[n, c, y, x] = sum over o of gradOut[n, o, y, x] · weight[o, c]`,
/// `gradWeight[o, c] = sum over n, y, x of gradOut[n, o, y, x] · in[n, c, y, x]`,
/// `gradBias[o] = sum over n, y, x of gradOut[n, o, y, x]`.
public func conv1x1Backward(input: Tensor<Double>, weight: [Double], gradOutput: Tensor<Double>)
  -> (gradInput: Tensor<Double>, gradWeight: [Double], gradBias: [Double])
{
  let s = input.shape
  let outputChannels = gradOutput.shape.c
  gradOutput.checkShape(Shape(s.n, outputChannels, s.h, s.w), "conv1x1Backward gradOutput")
  precondition(
    weight.count == outputChannels * s.c,
    "conv1x1Backward: weight has \(weight.count) values, expected (\(outputChannels), \(s.c))")
  var gradInput = Tensor<Double>(zeros: s)
  for n in 0..<s.n {
    for c in 0..<s.c {
      for y in 0..<s.h {
        for x in 0..<s.w {
          var sum = 0.0
          for o in 0..<outputChannels {
            sum += gradOutput[n, o, y, x] * weight[o * s.c + c]
          }
          gradInput[n, c, y, x] = sum
        }
      }
    }
  }
  var gradWeight = [Double](repeating: 0, count: outputChannels * s.c)
  var gradBias = [Double](repeating: 0, count: outputChannels)
  for o in 0..<outputChannels {
    var biasSum = 0.0
    for n in 0..<s.n {
      for y in 0..<s.h {
        for x in 0..<s.w { biasSum += gradOutput[n, o, y, x] }
      }
    }
    gradBias[o] = biasSum
    for c in 0..<s.c {
      var sum = 0.0
      for n in 0..<s.n {
        for y in 0..<s.h {
          for x in 0..<s.w { sum += gradOutput[n, o, y, x] * input[n, c, y, x] }
        }
      }
      gradWeight[o * s.c + c] = sum
    }
  }
  return (gradInput, gradWeight, gradBias)
}
