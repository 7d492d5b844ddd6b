/// The set of kernels the network, the losses and the training loops are written against.
///
/// `ReferenceBackend` (this module) computes in `Double` with plain loops and is the definition;
/// `OptimizedBackend` (module Optimized) computes in `Float` with SIMD and threads and must match it
/// within the tolerances its tests state. The model and training code call only these, so the same
/// step runs, and can be timed, on either.
///
/// Layout conventions: activations are `Tensor` NCHW, W fastest. Weights and biases are flat arrays in
/// PyTorch's layout, as stored in the parameter buffer. Matrices (pixel feature vectors) are tensors
/// of shape (rows, columns, 1, 1). Label maps are `[UInt8]` of shape (N, H, W). Losses are `Double`.
public protocol Backend: Sendable {
  associatedtype Scalar: BinaryFloatingPoint & Sendable

  // MARK: - Convolutions

  /// 3x3 convolution, stride 1, zero padding 1, no bias.
  /// input: (N, Cin, H, W); weight: (Cout, Cin, 3, 3). Returns (N, Cout, H, W).
  func conv3x3Forward(input: Tensor<Scalar>, weight: [Scalar], outputChannels: Int) -> Tensor<Scalar>
  /// Gradients of the 3x3 convolution. gradOutput: (N, Cout, H, W).
  func conv3x3Backward(input: Tensor<Scalar>, weight: [Scalar], gradOutput: Tensor<Scalar>)
    -> (gradInput: Tensor<Scalar>, gradWeight: [Scalar])

  /// 1x1 convolution with bias. input: (N, Cin, H, W); weight: (Cout, Cin); bias: (Cout).
  func conv1x1Forward(input: Tensor<Scalar>, weight: [Scalar], bias: [Scalar]) -> Tensor<Scalar>
  func conv1x1Backward(input: Tensor<Scalar>, weight: [Scalar], gradOutput: Tensor<Scalar>)
    -> (gradInput: Tensor<Scalar>, gradWeight: [Scalar], gradBias: [Scalar])

  /// 2x2 transposed convolution, stride 2, with bias. input: (N, Cin, H, W);
  /// weight: (Cin, Cout, 2, 2); bias: (Cout). Returns (N, Cout, 2H, 2W):
  /// out[n, o, 2y + i, 2x + j] = bias[o] + sum_c in[n, c, y, x] · weight[c, o, i, j].
  func convTranspose2x2Forward(input: Tensor<Scalar>, weight: [Scalar], bias: [Scalar]) -> Tensor<Scalar>
  func convTranspose2x2Backward(input: Tensor<Scalar>, weight: [Scalar], gradOutput: Tensor<Scalar>)
    -> (gradInput: Tensor<Scalar>, gradWeight: [Scalar], gradBias: [Scalar])

  // MARK: - Normalisation and pointwise

  /// BatchNorm2d, eps 1e-5, momentum 0.1. In training mode it normalises with the batch mean and
  /// biased variance over (N, H, W) and updates the running mean and the *unbiased* running variance
  /// in place, as PyTorch does; in evaluation mode it uses the running statistics and leaves them.
  func batchNormForward(
    input: Tensor<Scalar>, weight: [Scalar], bias: [Scalar],
    runningMean: inout [Scalar], runningVariance: inout [Scalar], training: Bool
  ) -> (output: Tensor<Scalar>, saved: BatchNormSaved<Scalar>)
  /// Gradients of BatchNorm; in evaluation mode the statistics are constants.
  func batchNormBackward(
    input: Tensor<Scalar>, weight: [Scalar], saved: BatchNormSaved<Scalar>, gradOutput: Tensor<Scalar>
  ) -> (gradInput: Tensor<Scalar>, gradWeight: [Scalar], gradBias: [Scalar])

  func reluForward(input: Tensor<Scalar>) -> Tensor<Scalar>
  /// Passes the gradient where the forward *output* is positive (the derivative at 0 is 0).
  func reluBackward(output: Tensor<Scalar>, gradOutput: Tensor<Scalar>) -> Tensor<Scalar>

  /// 2x2 max-pool, stride 2 (H and W even). In a tie the first maximum in row-major order within
  /// the window wins, as in PyTorch's CPU kernel.
  func maxPool2x2Forward(input: Tensor<Scalar>) -> Tensor<Scalar>
  /// Routes each gradient to its window's winner, recomputed from `input`.
  func maxPool2x2Backward(input: Tensor<Scalar>, gradOutput: Tensor<Scalar>) -> Tensor<Scalar>

  /// Channel concatenation [first, second] (first's channels first) and its inverse.
  func concatChannels(_ first: Tensor<Scalar>, _ second: Tensor<Scalar>) -> Tensor<Scalar>
  func splitChannels(_ tensor: Tensor<Scalar>, firstChannels: Int) -> (Tensor<Scalar>, Tensor<Scalar>)

  /// Global average pooling over space, `out[n, c] = (1 / HW) · sum over y, x of in[n, c, y, x]`.
  /// input: (N, C, H, W); returns (N, C, 1, 1), one row per sample.
  func globalAveragePoolForward(input: Tensor<Scalar>) -> Tensor<Scalar>
  /// Spreads each pooled gradient evenly over its plane: gradOutput (N, C, 1, 1) -> (N, C, height, width).
  func globalAveragePoolBackward(gradOutput: Tensor<Scalar>, height: Int, width: Int) -> Tensor<Scalar>

  // MARK: - Spatial warp

  /// Bilinear warp with `align_corners = true` and zero padding: output pixel p of sample n takes
  /// input sample n at affines[n]·p. input: (N, C, H, W); returns (N, C, H, W).
  func warpForward(input: Tensor<Scalar>, affines: [Affine2D]) -> Tensor<Scalar>
  /// Gradient with respect to the warped tensor (the adjoint of the warp).
  func warpBackward(gradOutput: Tensor<Scalar>, affines: [Affine2D]) -> Tensor<Scalar>
  /// The warped tensor's rows at `positions` only: `gatherPixels(warpForward(input, affines),
  /// positions)`, which the extension below computes as written. input: (N, C, H, W); positions: M
  /// flat positions n·H·W + y·W + x; returns (M, C, 1, 1).
  func warpGather(input: Tensor<Scalar>, affines: [Affine2D], positions: [Int]) -> Tensor<Scalar>
  /// Its adjoint: `warpBackward(scatterPixels(gradRows, positions, shape), affines)`, (N, C, H, W).
  func warpGatherBackward(gradRows: Tensor<Scalar>, affines: [Affine2D], positions: [Int], shape: Shape)
    -> Tensor<Scalar>

  // MARK: - Intensity augmentation

  /// The protocol's intensity augmentation with one parameter set per sample
  /// (`augmentIntensity(batch:parameters:)`, docs/PROTOCOL.md section 3). batch: (N, C, H, W);
  /// parameters: N entries. Returns the same shape. The default is that reference definition.
  func augmentIntensity(batch: Tensor<Scalar>, parameters: [IntensityParameters]) -> Tensor<Scalar>

  // MARK: - Losses

  /// Rows divided by their L2 norm. input: (M, d, 1, 1).
  func l2NormalizeForward(input: Tensor<Scalar>) -> Tensor<Scalar>
  func l2NormalizeBackward(input: Tensor<Scalar>, gradOutput: Tensor<Scalar>) -> Tensor<Scalar>

  /// Pixel InfoNCE on L2-normalised rows z, zPrime: (M, d, 1, 1); row i of z and row i of zPrime
  /// are positives. Returns the loss and its gradients with respect to both inputs.
  func infoNCE(z: Tensor<Scalar>, zPrime: Tensor<Scalar>, temperature: Double)
    -> (loss: Double, gradZ: Tensor<Scalar>, gradZPrime: Tensor<Scalar>)

  /// Pixel Barlow Twins on paired rows z, zPrime: (M, d, 1, 1).
  func barlowTwins(z: Tensor<Scalar>, zPrime: Tensor<Scalar>, lambda: Double)
    -> (loss: Double, gradZ: Tensor<Scalar>, gradZPrime: Tensor<Scalar>)

  /// Soft Dice loss with softmax over channels, background included (docs/PROTOCOL.md section 4).
  /// logits: (N, K, H, W); labels: (N, H, W) with values in 0 ..< K.
  func softDiceLoss(logits: Tensor<Scalar>, labels: [UInt8]) -> (loss: Double, gradLogits: Tensor<Scalar>)

  /// Mean Teacher's consistency loss: the mean over every element of (softmax(student) -
  /// softmax(teacher))², softmax over channels; the teacher is a constant.
  /// studentLogits, teacherLogits: (N, K, H, W). Returns the loss and dLoss/dstudentLogits.
  func consistencyLoss(studentLogits: Tensor<Scalar>, teacherLogits: Tensor<Scalar>)
    -> (loss: Double, gradStudentLogits: Tensor<Scalar>)

  // MARK: - Nearest neighbours

  /// For every query row, the support row of largest dot product (the cosine similarity of
  /// L2-normalised rows) and that dot product; on a tie the lowest support index wins
  /// (`nearestNeighbours(queries:support:)`). queries: (Q, d, 1, 1); support: (S, d, 1, 1), S >= 1.
  func nearestNeighbours(queries: Tensor<Scalar>, support: Tensor<Scalar>) -> (index: [Int], similarity: [Scalar])

  // MARK: - Optimiser

  /// One Adam step with PyTorch semantics on `values[range]` (bias-corrected, no weight decay).
  /// `step` counts from 1.
  func adamUpdate(
    values: inout [Scalar], gradients: [Scalar], firstMoment: inout [Scalar], secondMoment: inout [Scalar],
    range: Range<Int>, learningRate: Double, hyper: AdamHyperparameters, step: Int)

  /// Mean Teacher's average on `teacher[range]`: `teacher = decay · teacher + (1 - decay) · student`
  /// (computed so that a teacher equal to the student stays equal bit for bit).
  func emaUpdate(teacher: inout [Scalar], student: [Scalar], range: Range<Int>, decay: Double)
}

/// Statistics BatchNorm's forward hands to its backward.
public struct BatchNormSaved<Scalar: BinaryFloatingPoint & Sendable>: Sendable {
  /// Per-channel mean used to normalise (batch mean in training, running mean in evaluation).
  public var mean: [Scalar]
  /// Per-channel 1 / sqrt(variance + eps).
  public var inverseStd: [Scalar]
  public var training: Bool

  public init(mean: [Scalar], inverseStd: [Scalar], training: Bool) {
    self.mean = mean
    self.inverseStd = inverseStd
    self.training = training
  }
}

public struct AdamHyperparameters: Hashable, Sendable, Codable {
  public var beta1 = 0.9
  public var beta2 = 0.999
  public var epsilon = 1e-8
  public init() {}
}

/// BatchNorm constants shared by both backends (PyTorch's defaults).
public enum BatchNormConstants {
  public static let epsilon = 1e-5
  public static let momentum = 0.1
}

extension Backend {
  /// The definition: warp every pixel, then keep the rows at `positions`. A backend may compute the
  /// M rows alone (`OptimizedBackend` does, bit for bit the same).
  public func warpGather(input: Tensor<Scalar>, affines: [Affine2D], positions: [Int]) -> Tensor<Scalar> {
    gatherPixels(tensor: warpForward(input: input, affines: affines), positions: positions)
  }

  /// The definition: put the rows back at `positions` in a zero tensor of `shape`, then warp back.
  public func warpGatherBackward(gradRows: Tensor<Scalar>, affines: [Affine2D], positions: [Int], shape: Shape)
    -> Tensor<Scalar>
  {
    warpBackward(gradOutput: scatterPixels(rows: gradRows, positions: positions, shape: shape), affines: affines)
  }
}
