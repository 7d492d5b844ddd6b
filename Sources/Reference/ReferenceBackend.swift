/// The definition: every kernel as a plain scalar loop in Double (one file per layer, forward and
/// backward side by side). This type only forwards to those free functions.
public struct ReferenceBackend: Backend {
  public typealias Scalar = Double
  public init() {}

  public func conv3x3Forward(input: Tensor<Double>, weight: [Double], outputChannels: Int) -> Tensor<Double> {
    Reference.conv3x3Forward(input: input, weight: weight, outputChannels: outputChannels)
  }
  public func conv3x3Backward(input: Tensor<Double>, weight: [Double], gradOutput: Tensor<Double>)
    -> (gradInput: Tensor<Double>, gradWeight: [Double])
  {
    Reference.conv3x3Backward(input: input, weight: weight, gradOutput: gradOutput)
  }

  public func conv1x1Forward(input: Tensor<Double>, weight: [Double], bias: [Double]) -> Tensor<Double> {
    Reference.conv1x1Forward(input: input, weight: weight, bias: bias)
  }
  public func conv1x1Backward(input: Tensor<Double>, weight: [Double], gradOutput: Tensor<Double>)
    -> (gradInput: Tensor<Double>, gradWeight: [Double], gradBias: [Double])
  {
    Reference.conv1x1Backward(input: input, weight: weight, gradOutput: gradOutput)
  }

  public func convTranspose2x2Forward(input: Tensor<Double>, weight: [Double], bias: [Double]) -> Tensor<Double> {
    Reference.convTranspose2x2Forward(input: input, weight: weight, bias: bias)
  }
  public func convTranspose2x2Backward(input: Tensor<Double>, weight: [Double], gradOutput: Tensor<Double>)
    -> (gradInput: Tensor<Double>, gradWeight: [Double], gradBias: [Double])
  {
    Reference.convTranspose2x2Backward(input: input, weight: weight, gradOutput: gradOutput)
  }

  public func batchNormForward(
    input: Tensor<Double>, weight: [Double], bias: [Double],
    runningMean: inout [Double], runningVariance: inout [Double], training: Bool
  ) -> (output: Tensor<Double>, saved: BatchNormSaved<Double>) {
    Reference.batchNormForward(
      input: input, weight: weight, bias: bias, runningMean: &runningMean,
      runningVariance: &runningVariance, training: training)
  }
  public func batchNormBackward(
    input: Tensor<Double>, weight: [Double], saved: BatchNormSaved<Double>, gradOutput: Tensor<Double>
  ) -> (gradInput: Tensor<Double>, gradWeight: [Double], gradBias: [Double]) {
    Reference.batchNormBackward(input: input, weight: weight, saved: saved, gradOutput: gradOutput)
  }

  public func reluForward(input: Tensor<Double>) -> Tensor<Double> { Reference.reluForward(input: input) }
  public func reluBackward(output: Tensor<Double>, gradOutput: Tensor<Double>) -> Tensor<Double> {
    Reference.reluBackward(output: output, gradOutput: gradOutput)
  }

  public func maxPool2x2Forward(input: Tensor<Double>) -> Tensor<Double> { Reference.maxPool2x2Forward(input: input) }
  public func maxPool2x2Backward(input: Tensor<Double>, gradOutput: Tensor<Double>) -> Tensor<Double> {
    Reference.maxPool2x2Backward(input: input, gradOutput: gradOutput)
  }

  public func concatChannels(_ first: Tensor<Double>, _ second: Tensor<Double>) -> Tensor<Double> {
    Reference.concatChannels(first, second)
  }
  public func splitChannels(_ tensor: Tensor<Double>, firstChannels: Int) -> (Tensor<Double>, Tensor<Double>) {
    Reference.splitChannels(tensor, firstChannels: firstChannels)
  }

  public func globalAveragePoolForward(input: Tensor<Double>) -> Tensor<Double> {
    Reference.globalAveragePoolForward(input: input)
  }
  public func globalAveragePoolBackward(gradOutput: Tensor<Double>, height: Int, width: Int) -> Tensor<Double> {
    Reference.globalAveragePoolBackward(gradOutput: gradOutput, height: height, width: width)
  }

  public func warpForward(input: Tensor<Double>, affines: [Affine2D]) -> Tensor<Double> {
    Reference.warpForward(input: input, affines: affines)
  }
  public func warpBackward(gradOutput: Tensor<Double>, affines: [Affine2D]) -> Tensor<Double> {
    Reference.warpBackward(gradOutput: gradOutput, affines: affines)
  }

  public func l2NormalizeForward(input: Tensor<Double>) -> Tensor<Double> { Reference.l2NormalizeForward(input: input) }
  public func l2NormalizeBackward(input: Tensor<Double>, gradOutput: Tensor<Double>) -> Tensor<Double> {
    Reference.l2NormalizeBackward(input: input, gradOutput: gradOutput)
  }

  public func infoNCE(z: Tensor<Double>, zPrime: Tensor<Double>, temperature: Double)
    -> (loss: Double, gradZ: Tensor<Double>, gradZPrime: Tensor<Double>)
  {
    Reference.infoNCE(z: z, zPrime: zPrime, temperature: temperature)
  }
  public func barlowTwins(z: Tensor<Double>, zPrime: Tensor<Double>, lambda: Double)
    -> (loss: Double, gradZ: Tensor<Double>, gradZPrime: Tensor<Double>)
  {
    Reference.barlowTwins(z: z, zPrime: zPrime, lambda: lambda)
  }

  public func softDiceLoss(logits: Tensor<Double>, labels: [UInt8]) -> (loss: Double, gradLogits: Tensor<Double>) {
    Reference.softDiceLoss(logits: logits, labels: labels)
  }

  public func consistencyLoss(studentLogits: Tensor<Double>, teacherLogits: Tensor<Double>)
    -> (loss: Double, gradStudentLogits: Tensor<Double>)
  {
    Reference.consistencyLoss(studentLogits: studentLogits, teacherLogits: teacherLogits)
  }

  public func adamUpdate(
    values: inout [Double], gradients: [Double], firstMoment: inout [Double], secondMoment: inout [Double],
    range: Range<Int>, learningRate: Double, hyper: AdamHyperparameters, step: Int
  ) {
    Reference.adamUpdate(
      values: &values, gradients: gradients, firstMoment: &firstMoment, secondMoment: &secondMoment,
      range: range, learningRate: learningRate, hyper: hyper, step: step)
  }

  public func emaUpdate(teacher: inout [Double], student: [Double], range: Range<Int>, decay: Double) {
    Reference.emaUpdate(teacher: &teacher, student: student, range: range, decay: decay)
  }

  public func nearestNeighbours(queries: Tensor<Double>, support: Tensor<Double>) -> (index: [Int], similarity: [Double]) {
    Reference.nearestNeighbours(queries: queries, support: support)
  }
}
