// Temporary placeholders for signatures still being written; each function moves to its own file
// when implemented, and this file is deleted when empty. Nothing here may land.

public func conv3x3Forward(input: Tensor<Double>, weight: [Double], outputChannels: Int) -> Tensor<Double> { fatalError("pending") }
public func conv3x3Backward(input: Tensor<Double>, weight: [Double], gradOutput: Tensor<Double>) -> (gradInput: Tensor<Double>, gradWeight: [Double]) { fatalError("pending") }
public func conv1x1Forward(input: Tensor<Double>, weight: [Double], bias: [Double]) -> Tensor<Double> { fatalError("pending") }
public func conv1x1Backward(input: Tensor<Double>, weight: [Double], gradOutput: Tensor<Double>) -> (gradInput: Tensor<Double>, gradWeight: [Double], gradBias: [Double]) { fatalError("pending") }
public func convTranspose2x2Forward(input: Tensor<Double>, weight: [Double], bias: [Double]) -> Tensor<Double> { fatalError("pending") }
public func convTranspose2x2Backward(input: Tensor<Double>, weight: [Double], gradOutput: Tensor<Double>) -> (gradInput: Tensor<Double>, gradWeight: [Double], gradBias: [Double]) { fatalError("pending") }
public func batchNormForward(input: Tensor<Double>, weight: [Double], bias: [Double], runningMean: inout [Double], runningVariance: inout [Double], training: Bool) -> (output: Tensor<Double>, saved: BatchNormSaved<Double>) { fatalError("pending") }
public func batchNormBackward(input: Tensor<Double>, weight: [Double], saved: BatchNormSaved<Double>, gradOutput: Tensor<Double>) -> (gradInput: Tensor<Double>, gradWeight: [Double], gradBias: [Double]) { fatalError("pending") }
public func reluForward(input: Tensor<Double>) -> Tensor<Double> { fatalError("pending") }
public func reluBackward(output: Tensor<Double>, gradOutput: Tensor<Double>) -> Tensor<Double> { fatalError("pending") }
public func maxPool2x2Forward(input: Tensor<Double>) -> Tensor<Double> { fatalError("pending") }
public func maxPool2x2Backward(input: Tensor<Double>, gradOutput: Tensor<Double>) -> Tensor<Double> { fatalError("pending") }
public func concatChannels(_ first: Tensor<Double>, _ second: Tensor<Double>) -> Tensor<Double> { fatalError("pending") }
public func splitChannels(_ tensor: Tensor<Double>, firstChannels: Int) -> (Tensor<Double>, Tensor<Double>) { fatalError("pending") }
public func softDiceLoss(logits: Tensor<Double>, labels: [UInt8]) -> (loss: Double, gradLogits: Tensor<Double>) { fatalError("pending") }
public func adamUpdate(values: inout [Double], gradients: [Double], firstMoment: inout [Double], secondMoment: inout [Double], range: Range<Int>, learningRate: Double, hyper: AdamHyperparameters, step: Int) { fatalError("pending") }
