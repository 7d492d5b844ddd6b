// MARK: - 3x3 convolution (the two convolutions of every DoubleConv)

/// 3x3 convolution, stride 1, zero padding 1, no bias.
///
/// input: (N, Cin, H, W), W fastest; weight: (Cout, Cin, 3, 3), PyTorch's layout, flat.
/// Returns (N, Cout, H, W):
/// `out[n, o, y, x] = sum over c, i, j of in[n, c, y + i - 1, x + j - 1] · weight[o, c, i, j]`,
/// where pixels outside the image read as 0.
public func conv3x3Forward(input: Tensor<Double>, weight: [Double], outputChannels: Int) -> Tensor<Double> {
  let s = input.shape
  precondition(outputChannels > 0, "conv3x3Forward: outputChannels \(outputChannels), expected > 0")
  precondition(
    weight.count == outputChannels * s.c * 9,
    "conv3x3Forward: weight has \(weight.count) values, expected (\(outputChannels), \(s.c), 3, 3)")
  var output = Tensor<Double>(zeros: Shape(s.n, outputChannels, s.h, s.w))
  for n in 0..<s.n {
    for o in 0..<outputChannels {
      for y in 0..<s.h {
        for x in 0..<s.w {
          var sum = 0.0
          for c in 0..<s.c {
            for i in 0..<3 {
              let inY = y + i - 1
              if inY < 0 || inY >= s.h { continue }
              for j in 0..<3 {
                let inX = x + j - 1
                if inX < 0 || inX >= s.w { continue }
                sum += input[n, c, inY, inX] * weight[((o * s.c + c) * 3 + i) * 3 + j]
              }
            }
          }
          output[n, o, y, x] = sum
        }
      }
    }
  }
  return output
}

/// Gradients of `conv3x3Forward`.
///
/// input: (N, Cin, H, W); weight: (Cout, Cin, 3, 3); gradOutput: (N, Cout, H, W).
/// Returns gradInput (N, Cin, H, W) and gradWeight (Cout, Cin, 3, 3), each entry a sum of its own:
/// `gradInput[n, c, y, x] = sum over o, i, j of gradOut[n, o, y - i + 1, x - j + 1] · weight[o, c, i, j]`,
/// `gradWeight[o, c, i, j] = sum over n, y, x of gradOut[n, o, y, x] · in[n, c, y + i - 1, x + j - 1]`.
public func conv3x3Backward(input: Tensor<Double>, weight: [Double], gradOutput: Tensor<Double>)
  -> (gradInput: Tensor<Double>, gradWeight: [Double])
{
  let s = input.shape
  let outputChannels = gradOutput.shape.c
  gradOutput.checkShape(Shape(s.n, outputChannels, s.h, s.w), "conv3x3Backward gradOutput")
  precondition(
    weight.count == outputChannels * s.c * 9,
    "conv3x3Backward: weight has \(weight.count) values, expected (\(outputChannels), \(s.c), 3, 3)")
  return (
    conv3x3GradInput(weight: weight, gradOutput: gradOutput, inputChannels: s.c),
    conv3x3GradWeight(input: input, gradOutput: gradOutput)
  )
}

/// gradInput (N, Cin, H, W): the 3x3 convolution of gradOutput with the weight flipped in space.
private func conv3x3GradInput(weight: [Double], gradOutput: Tensor<Double>, inputChannels: Int) -> Tensor<Double> {
  let g = gradOutput.shape
  var gradInput = Tensor<Double>(zeros: Shape(g.n, inputChannels, g.h, g.w))
  for n in 0..<g.n {
    for c in 0..<inputChannels {
      for y in 0..<g.h {
        for x in 0..<g.w {
          var sum = 0.0
          for o in 0..<g.c {
            for i in 0..<3 {
              let outY = y - i + 1
              if outY < 0 || outY >= g.h { continue }
              for j in 0..<3 {
                let outX = x - j + 1
                if outX < 0 || outX >= g.w { continue }
                sum += gradOutput[n, o, outY, outX] * weight[((o * inputChannels + c) * 3 + i) * 3 + j]
              }
            }
          }
          gradInput[n, c, y, x] = sum
        }
      }
    }
  }
  return gradInput
}

/// gradWeight (Cout, Cin, 3, 3): the correlation of gradOutput with the zero-padded input.
private func conv3x3GradWeight(input: Tensor<Double>, gradOutput: Tensor<Double>) -> [Double] {
  let s = input.shape
  let outputChannels = gradOutput.shape.c
  var gradWeight = [Double](repeating: 0, count: outputChannels * s.c * 9)
  for o in 0..<outputChannels {
    for c in 0..<s.c {
      for i in 0..<3 {
        for j in 0..<3 {
          var sum = 0.0
          for n in 0..<s.n {
            for y in 0..<s.h {
              let inY = y + i - 1
              if inY < 0 || inY >= s.h { continue }
              for x in 0..<s.w {
                let inX = x + j - 1
                if inX < 0 || inX >= s.w { continue }
                sum += gradOutput[n, o, y, x] * input[n, c, inY, inX]
              }
            }
          }
          gradWeight[((o * s.c + c) * 3 + i) * 3 + j] = sum
        }
      }
    }
  }
  return gradWeight
}
