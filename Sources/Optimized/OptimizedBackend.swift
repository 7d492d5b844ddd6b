import Foundation
import Reference

/// The optimized twin of `ReferenceBackend`: every kernel in Float32 with 8-lane SIMD and
/// `DispatchQueue.concurrentPerform`, one file per layer mirroring `Sources/Reference`.
///
/// Guarantees: each kernel matches its reference within the tolerances `RegressionTests` state, and
/// gives bit-identical results for every `workers` in 1 ... 16 (each parallel iteration owns its
/// output; reductions use fixed chunks combined in a fixed order).
public struct OptimizedBackend: Backend {
  public typealias Scalar = Float

  /// Threads a kernel may use, 1 ... 16.
  public let workers: Int
  /// The algorithms of the evaluation-mode network's 3x3 convolutions (`InferenceNetwork`), which
  /// prediction, validation and frozen features run; the taped network's own kernels ignore it.
  public let inferenceConvolutions: InferenceConvolutions

  /// - Parameters:
  ///   - workers: 1 ... 16; default every active processor (at most 16).
  ///   - inferenceConvolutions: an experiment's `inferenceConvolutions`; default F(2x2, 3x3), the
  ///     only choice before there was one.
  ///
  /// An executable should also call `retainFreedMemory()` once, so that large tensors do not pay
  /// page faults on every call.
  public init(workers: Int = defaultWorkerCount(), inferenceConvolutions: InferenceConvolutions = .winograd2x2) {
    checkWorkers(workers)
    self.workers = workers
    self.inferenceConvolutions = inferenceConvolutions
  }

  public func conv3x3Forward(input: Tensor<Float>, weight: [Float], outputChannels: Int) -> Tensor<Float> {
    Optimized.conv3x3Forward(input: input, weight: weight, outputChannels: outputChannels, workers: workers)
  }
  public func conv3x3Backward(input: Tensor<Float>, weight: [Float], gradOutput: Tensor<Float>)
    -> (gradInput: Tensor<Float>, gradWeight: [Float])
  {
    Optimized.conv3x3Backward(input: input, weight: weight, gradOutput: gradOutput, workers: workers)
  }

  public func conv1x1Forward(input: Tensor<Float>, weight: [Float], bias: [Float]) -> Tensor<Float> {
    Optimized.conv1x1Forward(input: input, weight: weight, bias: bias, workers: workers)
  }
  public func conv1x1Backward(input: Tensor<Float>, weight: [Float], gradOutput: Tensor<Float>)
    -> (gradInput: Tensor<Float>, gradWeight: [Float], gradBias: [Float])
  {
    Optimized.conv1x1Backward(input: input, weight: weight, gradOutput: gradOutput, workers: workers)
  }

  public func convTranspose2x2Forward(input: Tensor<Float>, weight: [Float], bias: [Float]) -> Tensor<Float> {
    Optimized.convTranspose2x2Forward(input: input, weight: weight, bias: bias, workers: workers)
  }
  public func convTranspose2x2Backward(input: Tensor<Float>, weight: [Float], gradOutput: Tensor<Float>)
    -> (gradInput: Tensor<Float>, gradWeight: [Float], gradBias: [Float])
  {
    Optimized.convTranspose2x2Backward(input: input, weight: weight, gradOutput: gradOutput, workers: workers)
  }

  public func batchNormForward(
    input: Tensor<Float>, weight: [Float], bias: [Float],
    runningMean: inout [Float], runningVariance: inout [Float], training: Bool
  ) -> (output: Tensor<Float>, saved: BatchNormSaved<Float>) {
    Optimized.batchNormForward(
      input: input, weight: weight, bias: bias, runningMean: &runningMean, runningVariance: &runningVariance,
      training: training, workers: workers)
  }
  public func batchNormBackward(
    input: Tensor<Float>, weight: [Float], saved: BatchNormSaved<Float>, gradOutput: Tensor<Float>
  ) -> (gradInput: Tensor<Float>, gradWeight: [Float], gradBias: [Float]) {
    Optimized.batchNormBackward(input: input, weight: weight, saved: saved, gradOutput: gradOutput, workers: workers)
  }

  public func reluForward(input: Tensor<Float>) -> Tensor<Float> {
    Optimized.reluForward(input: input, workers: workers)
  }
  public func reluBackward(output: Tensor<Float>, gradOutput: Tensor<Float>) -> Tensor<Float> {
    Optimized.reluBackward(output: output, gradOutput: gradOutput, workers: workers)
  }

  public func maxPool2x2Forward(input: Tensor<Float>) -> Tensor<Float> {
    Optimized.maxPool2x2Forward(input: input, workers: workers)
  }
  public func maxPool2x2Backward(input: Tensor<Float>, gradOutput: Tensor<Float>) -> Tensor<Float> {
    Optimized.maxPool2x2Backward(input: input, gradOutput: gradOutput, workers: workers)
  }

  public func concatChannels(_ first: Tensor<Float>, _ second: Tensor<Float>) -> Tensor<Float> {
    Optimized.concatChannels(first, second, workers: workers)
  }
  public func splitChannels(_ tensor: Tensor<Float>, firstChannels: Int) -> (Tensor<Float>, Tensor<Float>) {
    Optimized.splitChannels(tensor, firstChannels: firstChannels, workers: workers)
  }

  public func globalAveragePoolForward(input: Tensor<Float>) -> Tensor<Float> {
    Optimized.globalAveragePoolForward(input: input, workers: workers)
  }
  public func globalAveragePoolBackward(gradOutput: Tensor<Float>, height: Int, width: Int) -> Tensor<Float> {
    Optimized.globalAveragePoolBackward(gradOutput: gradOutput, height: height, width: width, workers: workers)
  }

  public func warpForward(input: Tensor<Float>, affines: [Affine2D]) -> Tensor<Float> {
    Optimized.warpForward(input: input, affines: affines, workers: workers)
  }
  public func warpBackward(gradOutput: Tensor<Float>, affines: [Affine2D]) -> Tensor<Float> {
    Optimized.warpBackward(gradOutput: gradOutput, affines: affines, workers: workers)
  }
  public func warpGather(input: Tensor<Float>, affines: [Affine2D], positions: [Int]) -> Tensor<Float> {
    Optimized.warpGather(input: input, affines: affines, positions: positions, workers: workers)
  }
  public func warpGatherBackward(gradRows: Tensor<Float>, affines: [Affine2D], positions: [Int], shape: Shape)
    -> Tensor<Float>
  {
    Optimized.warpGatherBackward(gradRows: gradRows, affines: affines, positions: positions, shape: shape, workers: workers)
  }

  public func augmentIntensity(batch: Tensor<Float>, parameters: [IntensityParameters]) -> Tensor<Float> {
    Optimized.augmentIntensity(batch: batch, parameters: parameters, workers: workers)
  }

  public func l2NormalizeForward(input: Tensor<Float>) -> Tensor<Float> {
    Optimized.l2NormalizeForward(input: input, workers: workers)
  }
  public func l2NormalizeBackward(input: Tensor<Float>, gradOutput: Tensor<Float>) -> Tensor<Float> {
    Optimized.l2NormalizeBackward(input: input, gradOutput: gradOutput, workers: workers)
  }

  public func infoNCE(z: Tensor<Float>, zPrime: Tensor<Float>, temperature: Double)
    -> (loss: Double, gradZ: Tensor<Float>, gradZPrime: Tensor<Float>)
  {
    Optimized.infoNCE(z: z, zPrime: zPrime, temperature: temperature, workers: workers)
  }
  public func barlowTwins(z: Tensor<Float>, zPrime: Tensor<Float>, lambda: Double)
    -> (loss: Double, gradZ: Tensor<Float>, gradZPrime: Tensor<Float>)
  {
    Optimized.barlowTwins(z: z, zPrime: zPrime, lambda: lambda, workers: workers)
  }

  public func softDiceLoss(logits: Tensor<Float>, labels: [UInt8]) -> (loss: Double, gradLogits: Tensor<Float>) {
    Optimized.softDiceLoss(logits: logits, labels: labels, workers: workers)
  }

  public func consistencyLoss(studentLogits: Tensor<Float>, teacherLogits: Tensor<Float>)
    -> (loss: Double, gradStudentLogits: Tensor<Float>)
  {
    Optimized.consistencyLoss(studentLogits: studentLogits, teacherLogits: teacherLogits, workers: workers)
  }

  public func adamUpdate(
    values: inout [Float], gradients: [Float], firstMoment: inout [Float], secondMoment: inout [Float],
    range: Range<Int>, learningRate: Double, hyper: AdamHyperparameters, step: Int
  ) {
    Optimized.adamUpdate(
      values: &values, gradients: gradients, firstMoment: &firstMoment, secondMoment: &secondMoment, range: range,
      learningRate: learningRate, hyper: hyper, step: step, workers: workers)
  }

  public func emaUpdate(teacher: inout [Float], student: [Float], range: Range<Int>, decay: Double) {
    Optimized.emaUpdate(teacher: &teacher, student: student, range: range, decay: decay, workers: workers)
  }

  public func nearestNeighbours(queries: Tensor<Float>, support: Tensor<Float>) -> (index: [Int], similarity: [Float]) {
    Optimized.nearestNeighbours(queries: queries, support: support, workers: workers)
  }
}
