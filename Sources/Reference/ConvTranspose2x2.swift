// MARK: - 2x2 transposed convolution, stride 2 (the upsampling of every Up block)

/// 2x2 transposed convolution, stride 2, with bias: each input pixel paints its own 2x2 block.
///
/// input: (N, Cin, H, W), W fastest; weight: (Cin, Cout, 2, 2), PyTorch's `ConvTranspose2d` layout,
/// flat; bias: (Cout). Returns (N, Cout, 2H, 2W):
/// `out[n, o, 2y + i, 2x + j] = bias[o] + sum over c of in[n, c, y, x] · weight[c, o, i, j]`.
public func convTranspose2x2Forward(input: Tensor<Double>, weight: [Double], bias: [Double]) -> Tensor<Double> {
  let s = input.shape
  let outputChannels = bias.count
  precondition(outputChannels > 0, "convTranspose2x2Forward: empty bias, expected (Cout) with Cout > 0")
  precondition(
    weight.count == s.c * outputChannels * 4,
    "convTranspose2x2Forward: weight has \(weight.count) values, expected (\(s.c), \(outputChannels), 2, 2)")
  var output = Tensor<Double>(zeros: Shape(s.n, outputChannels, 2 * s.h, 2 * s.w))
  for n in 0..<s.n {
    for o in 0..<outputChannels {
      for y in 0..<s.h {
        for x in 0..<s.w {
          for i in 0..<2 {
            for j in 0..<2 {
              var sum = bias[o]
              for c in 0..<s.c {
                sum += input[n, c, y, x] * weight[((c * outputChannels + o) * 2 + i) * 2 + j]
              }
              output[n, o, 2 * y + i, 2 * x + j] = sum
            }
          }
        }
      }
    }
  }
  return output
}

/// Gradients of `convTranspose2x2Forward`.
///
/// input: (N, Cin, H, W); weight: (Cin, Cout, 2, 2); gradOutput: (N, Cout, 2H, 2W).
/// Returns gradInput (N, Cin, H, W), gradWeight (Cin, Cout, 2, 2) and gradBias (Cout):
/// `gradInput[n, c, y, x] = sum over o, i, j of gradOut[n, o, 2y + i, 2x + j] · weight[c, o, i, j]`,
/// `gradWeight[c, o, i, j] = sum over n, y, x of in[n, c, y, x] · gradOut[n, o, 2y + i, 2x + j]`,
/// `gradBias[o] = sum over n and all output pixels of gradOut[n, o, ·, ·]`.
public func convTranspose2x2Backward(input: Tensor<Double>, weight: [Double], gradOutput: Tensor<Double>)
  -> (gradInput: Tensor<Double>, gradWeight: [Double], gradBias: [Double])
{
  let s = input.shape
  let outputChannels = gradOutput.shape.c
  gradOutput.checkShape(Shape(s.n, outputChannels, 2 * s.h, 2 * s.w), "convTranspose2x2Backward gradOutput")
  precondition(
    weight.count == s.c * outputChannels * 4,
    "convTranspose2x2Backward: weight has \(weight.count) values, expected (\(s.c), \(outputChannels), 2, 2)")
  var gradInput = Tensor<Double>(zeros: s)
  var gradWeight = [Double](repeating: 0, count: weight.count)
  for c in 0..<s.c {
    for o in 0..<outputChannels {
      for i in 0..<2 {
        for j in 0..<2 {
          var sum = 0.0
          for n in 0..<s.n {
            for y in 0..<s.h {
              for x in 0..<s.w { sum += input[n, c, y, x] * gradOutput[n, o, 2 * y + i, 2 * x + j] }
            }
          }
          gradWeight[((c * outputChannels + o) * 2 + i) * 2 + j] = sum
        }
      }
    }
  }
  for n in 0..<s.n {
    for c in 0..<s.c {
      for y in 0..<s.h {
        for x in 0..<s.w {
          var sum = 0.0
          for o in 0..<outputChannels {
            for i in 0..<2 {
              for j in 0..<2 {
                sum += gradOutput[n, o, 2 * y + i, 2 * x + j] * weight[((c * outputChannels + o) * 2 + i) * 2 + j]
              }
            }
          }
          gradInput[n, c, y, x] = sum
        }
      }
    }
  }
  var gradBias = [Double](repeating: 0, count: outputChannels)
  for o in 0..<outputChannels {
    var sum = 0.0
    for n in 0..<s.n {
      for y in 0..<(2 * s.h) {
        for x in 0..<(2 * s.w) { sum += gradOutput[n, o, y, x] }
      }
    }
    gradBias[o] = sum
  }
  return (gradInput, gradWeight, gradBias)
}
