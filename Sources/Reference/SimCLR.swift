// MARK: - SimCLR (Chen et al. 2020): the image-level contrastive baseline's head and loss
//
// SimCLR pools the encoder's output over space to one vector h per view, projects it with a small
// MLP g, and applies NT-Xent to the L2-normalised projections of the batch's 2B views. Pixel
// InfoNCE (`infoNCE`) over M paired rows already is NT-Xent over 2M rows, so NT-Xent here is that
// kernel applied to the pooled rows: global average pooling turns (B, C, H, W) into (B, C, 1, 1),
// the row layout the row losses take. Everything below is written against `Backend`, so it runs
// on both backends; the only new kernel it uses is `globalAveragePool`.

public enum SimCLRConstants {
  /// tau of NT-Xent: Chen et al. 2020 (ICML, arXiv 2002.05709), section 5.1 and Table 5, the best
  /// of 0.05, 0.1, 0.5 and 1 for ImageNet pretraining. (Their small-batch CIFAR-10 runs, appendix
  /// B.9, found 0.5 better at batch sizes of 256 and below.)
  public static let temperature = 0.1
  /// The projection's output width in Chen et al. 2020 (a 128-dimensional latent space).
  public static let projectionOutputLimit = 128

  /// The projection MLP's widths for a bottleneck of `bottleneck` channels: the hidden layer as
  /// wide as its input and the output `min(bottleneck, 128)`. Chen et al. 2020 project ResNet-50's
  /// 2048 pooled channels through a 2048-wide hidden layer to 128, so the paper preset's 2048-wide
  /// bottleneck gets exactly their head (2048 -> 2048 -> 128), and the smaller presets keep the
  /// same shape without projecting up (cpu: 128 -> 128 -> 128; smoke: 32 -> 32 -> 32).
  public static func projectionWidths(bottleneck: Int) -> (hidden: Int, output: Int) {
    precondition(bottleneck > 0, "projectionWidths: bottleneck width \(bottleneck) must be positive")
    return (bottleneck, min(bottleneck, projectionOutputLimit))
  }
}

/// The SimCLR projection g: Linear(C -> hidden), ReLU, Linear(hidden -> out), as in Chen et al.
/// 2020, `g(h) = W2 · ReLU(W1 · h + b1) + b2` (their equation, with PyTorch's biases; no BatchNorm).
/// The same type holds the weights and, from `simCLRProjectionBackward`, their gradients.
public struct SimCLRProjectionHead<Scalar: BinaryFloatingPoint & Sendable>: Sendable, Equatable {
  public let inputWidth: Int
  public let hidden: Int
  public let output: Int
  /// W1: (hidden, inputWidth), row-major (PyTorch's `Linear.weight`).
  public var weight1: [Scalar]
  /// b1: (hidden).
  public var bias1: [Scalar]
  /// W2: (output, hidden).
  public var weight2: [Scalar]
  /// b2: (output).
  public var bias2: [Scalar]

  public init(
    inputWidth: Int, hidden: Int, output: Int, weight1: [Scalar], bias1: [Scalar], weight2: [Scalar], bias2: [Scalar]
  ) {
    precondition(inputWidth > 0 && hidden > 0 && output > 0, "SimCLR head widths \(inputWidth), \(hidden), \(output)")
    precondition(
      weight1.count == hidden * inputWidth && bias1.count == hidden && weight2.count == output * hidden
        && bias2.count == output,
      "SimCLR head: weight1 \(weight1.count), bias1 \(bias1.count), weight2 \(weight2.count), bias2 \(bias2.count) "
        + "for widths \(inputWidth) -> \(hidden) -> \(output)")
    self.inputWidth = inputWidth
    self.hidden = hidden
    self.output = output
    self.weight1 = weight1
    self.bias1 = bias1
    self.weight2 = weight2
    self.bias2 = bias2
  }

  /// PyTorch's default `Linear` initialisation, weights and biases U(-1/sqrt(fanIn), 1/sqrt(fanIn)),
  /// drawn from `seed` in the order W1, b1, W2, b2. Widths default to
  /// `SimCLRConstants.projectionWidths(bottleneck: inputWidth)`.
  public init(inputWidth: Int, hidden: Int? = nil, output: Int? = nil, seed: UInt64) {
    let widths = SimCLRConstants.projectionWidths(bottleneck: inputWidth)
    let hidden = hidden ?? widths.hidden, output = output ?? widths.output
    var rng = SplitMix64(seed: seed, stream: 0x51C1)
    func draw(_ count: Int, fanIn: Int) -> [Scalar] {
      let bound = 1 / Double(fanIn).squareRoot()
      return (0..<count).map { _ in Scalar(rng.uniform(-bound, bound)) }
    }
    let weight1 = draw(hidden * inputWidth, fanIn: inputWidth), bias1 = draw(hidden, fanIn: inputWidth)
    let weight2 = draw(output * hidden, fanIn: hidden), bias2 = draw(output, fanIn: hidden)
    self.init(
      inputWidth: inputWidth, hidden: hidden, output: output, weight1: weight1, bias1: bias1, weight2: weight2,
      bias2: bias2)
  }

  /// The same values in another scalar type.
  public func converted<Other: BinaryFloatingPoint & Sendable>(to _: Other.Type = Other.self) -> SimCLRProjectionHead<Other> {
    SimCLRProjectionHead<Other>(
      inputWidth: inputWidth, hidden: hidden, output: output, weight1: weight1.map { Other($0) },
      bias1: bias1.map { Other($0) }, weight2: weight2.map { Other($0) }, bias2: bias2.map { Other($0) })
  }
}

/// Activations the projection's backward needs. The M rows are laid out as one image of M pixels
/// (`rowsAsPixels`), so each Linear layer is one 1x1 convolution: one matrix product.
public struct SimCLRProjectionTape<Scalar: BinaryFloatingPoint & Sendable>: Sendable {
  /// The input rows as pixels: (1, inputWidth, 1, M).
  public var input: Tensor<Scalar>
  /// ReLU(W1 · h + b1) as pixels: (1, hidden, 1, M).
  public var hidden: Tensor<Scalar>
  /// g(h) as rows: (M, output, 1, 1).
  public var output: Tensor<Scalar>
}

/// The SimCLR loss of one batch and its gradients.
public struct SimCLRLossResult<Scalar: BinaryFloatingPoint & Sendable>: Sendable {
  public var loss: Double
  /// dL/d(first view's encoder output): (B, C, H, W).
  public var gradFeatures: Tensor<Scalar>
  /// dL/d(second view's encoder output): (B, C, H, W).
  public var gradOtherFeatures: Tensor<Scalar>
  /// dL/d(projection weights), in the head's own layout.
  public var gradHead: SimCLRProjectionHead<Scalar>
}

extension Backend {
  // MARK: - Projection MLP

  /// g on rows: (M, inputWidth, 1, 1) -> (M, output, 1, 1); 1x1 convolution, ReLU, 1x1 convolution
  /// (a 1x1 convolution over pixels is a Linear layer over rows).
  public func simCLRProjectionForward(rows: Tensor<Scalar>, head: SimCLRProjectionHead<Scalar>) -> SimCLRProjectionTape<Scalar> {
    rows.checkShape(Shape(rows.shape.n, head.inputWidth, 1, 1), "simCLRProjectionForward rows")
    let input = rowsAsPixels(rows)
    let hidden = reluForward(input: conv1x1Forward(input: input, weight: head.weight1, bias: head.bias1))
    let output = conv1x1Forward(input: hidden, weight: head.weight2, bias: head.bias2)
    return SimCLRProjectionTape(input: input, hidden: hidden, output: pixelsAsRows(output))
  }

  /// Backward of `simCLRProjectionForward` from dL/dg (M, output, 1, 1): dL/drows (M, inputWidth,
  /// 1, 1) and the weights' gradients.
  public func simCLRProjectionBackward(
    tape: SimCLRProjectionTape<Scalar>, head: SimCLRProjectionHead<Scalar>, gradOutput: Tensor<Scalar>
  ) -> (gradRows: Tensor<Scalar>, gradHead: SimCLRProjectionHead<Scalar>) {
    gradOutput.checkShape(tape.output.shape, "simCLRProjectionBackward gradOutput")
    let last = conv1x1Backward(input: tape.hidden, weight: head.weight2, gradOutput: rowsAsPixels(gradOutput))
    let gradBeforeReLU = reluBackward(output: tape.hidden, gradOutput: last.gradInput)
    let first = conv1x1Backward(input: tape.input, weight: head.weight1, gradOutput: gradBeforeReLU)
    let gradHead = SimCLRProjectionHead(
      inputWidth: head.inputWidth, hidden: head.hidden, output: head.output, weight1: first.gradWeight,
      bias1: first.gradBias, weight2: last.gradWeight, bias2: last.gradBias)
    return (pixelsAsRows(first.gradInput), gradHead)
  }

  // MARK: - NT-Xent

  /// NT-Xent (Chen et al. 2020, equation 1) over the 2B views of a batch: row k of z and row k of
  /// zPrime, (B, d, 1, 1) each and L2-normalised, are the two views of sample k. With the 2B rows
  /// and sim(u, v) = <u, v> (the cosine of normalised rows),
  /// `l(i, j) = -log( exp(sim(z_i, z_j) / tau) / sum over k != i of exp(sim(z_i, z_k) / tau) )` and
  /// the loss is the mean of l over the 2B ordered positive pairs.
  ///
  /// That is pixel InfoNCE (`infoNCE`) with the views as its two row sets: the same kernel, no second
  /// copy. (SimCLR interleaves the views, 2k - 1 and 2k; the loss is a mean over all anchors, so the
  /// order of the rows does not change it.)
  public func ntXent(z: Tensor<Scalar>, zPrime: Tensor<Scalar>, temperature: Double = SimCLRConstants.temperature)
    -> (loss: Double, gradZ: Tensor<Scalar>, gradZPrime: Tensor<Scalar>)
  {
    infoNCE(z: z, zPrime: zPrime, temperature: temperature)
  }

  // MARK: - The SimCLR objective on encoder outputs

  /// The SimCLR loss of one batch from the encoder outputs of its two views, and its gradients:
  /// `h = GAP(features)`, `h' = GAP(otherFeatures)` (B, C, 1, 1); the 2B rows [h; h'] through the
  /// projection g together (it has no BatchNorm, so together or apart is the same function); each
  /// row L2-normalised; NT-Xent at `temperature` over the first B rows against the last B.
  ///
  /// features, otherFeatures: (B, C, H, W), sample k of each the two views of one slice, with
  /// C = head.inputWidth. Returns the loss, dL/dfeatures, dL/dotherFeatures and dL/dhead.
  public func simCLRLoss(
    features: Tensor<Scalar>, otherFeatures: Tensor<Scalar>, head: SimCLRProjectionHead<Scalar>,
    temperature: Double = SimCLRConstants.temperature
  ) -> SimCLRLossResult<Scalar> {
    let s = features.shape
    otherFeatures.checkShape(s, "simCLRLoss otherFeatures")
    precondition(s.n >= 1 && s.c == head.inputWidth, "simCLRLoss: features \(s) for a head of input width \(head.inputWidth)")
    let rows = stackRows(globalAveragePoolForward(input: features), globalAveragePoolForward(input: otherFeatures))
    let tape = simCLRProjectionForward(rows: rows, head: head)
    let normalized = l2NormalizeForward(input: tape.output)
    let (z, zPrime) = splitRows(normalized, first: s.n)
    let result = ntXent(z: z, zPrime: zPrime, temperature: temperature)
    let gradProjected = l2NormalizeBackward(input: tape.output, gradOutput: stackRows(result.gradZ, result.gradZPrime))
    let (gradRows, gradHead) = simCLRProjectionBackward(tape: tape, head: head, gradOutput: gradProjected)
    let (gradPooled, gradOtherPooled) = splitRows(gradRows, first: s.n)
    return SimCLRLossResult(
      loss: result.loss,
      gradFeatures: globalAveragePoolBackward(gradOutput: gradPooled, height: s.h, width: s.w),
      gradOtherFeatures: globalAveragePoolBackward(gradOutput: gradOtherPooled, height: s.h, width: s.w),
      gradHead: gradHead)
  }
}

/// Rows (M, d, 1, 1) and (M', d, 1, 1) stacked into (M + M', d, 1, 1), first's rows first.
public func stackRows<Scalar>(_ first: Tensor<Scalar>, _ second: Tensor<Scalar>) -> Tensor<Scalar> {
  let d = first.shape.c
  first.checkShape(Shape(first.shape.n, d, 1, 1), "stackRows first")
  second.checkShape(Shape(second.shape.n, d, 1, 1), "stackRows second")
  return Tensor(shape: Shape(first.shape.n + second.shape.n, d, 1, 1), data: first.data + second.data)
}

/// The inverse of `stackRows`: rows (M, d, 1, 1) split after the first `first` rows.
public func splitRows<Scalar>(_ rows: Tensor<Scalar>, first: Int) -> (Tensor<Scalar>, Tensor<Scalar>) {
  let s = rows.shape
  rows.checkShape(Shape(s.n, s.c, 1, 1), "splitRows")
  precondition((0...s.n).contains(first), "splitRows: \(first) of \(s.n) rows")
  let cut = first * s.c
  return (
    Tensor(shape: Shape(first, s.c, 1, 1), data: Array(rows.data[0..<cut])),
    Tensor(shape: Shape(s.n - first, s.c, 1, 1), data: Array(rows.data[cut...]))
  )
}
