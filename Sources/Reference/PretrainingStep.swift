/// The pixel-level objective of pretraining (docs/PROTOCOL.md section 3).
/// The protocol's batch sizes (code; docs/PROTOCOL.md sections 3 and 4), the one place they are written.
public enum BatchSizes {
  /// Pretraining: slices per batch, each giving two views.
  public static let pretraining = 8
  /// Downstream segmentation (linear probing, fine-tuning, the baseline).
  public static let downstream = 16
}

public enum PretrainingObjective: String, Codable, Hashable, Sendable, CaseIterable {
  /// Pix2Rep: InfoNCE on L2-normalised pixel vectors.
  case infoNCE
  /// Pix2Rep-v2: Barlow Twins on the projected pixel vectors.
  case barlowTwins
}

/// The loss's settings: objective, InfoNCE temperature, Barlow Twins lambda.
public struct PretrainingLoss: Codable, Hashable, Sendable {
  public var objective: PretrainingObjective
  public var temperature: Double
  public var lambda: Double

  public init(
    objective: PretrainingObjective, temperature: Double = InfoNCEConstants.temperature,
    lambda: Double = BarlowTwinsConstants.lambda
  ) {
    self.objective = objective
    self.temperature = temperature
    self.lambda = lambda
  }
}

/// One batch of pretraining input: two intensity-augmented views of the same slices, a spatial
/// transform per slice, and the pixel positions the loss compares.
public struct PretrainingBatch<Scalar: BinaryFloatingPoint & Sendable>: Sendable {
  /// v = t(x): (N, 1, S, S).
  public var view: Tensor<Scalar>
  /// v' = t'(x): (N, 1, S, S).
  public var otherView: Tensor<Scalar>
  /// phi per slice.
  public var affines: [Affine2D]
  /// Flat positions n·S·S + y·S + x, drawn among those whose source phi·p lies inside the image.
  public var positions: [Int]

  public init(view: Tensor<Scalar>, otherView: Tensor<Scalar>, affines: [Affine2D], positions: [Int]) {
    precondition(view.shape == otherView.shape && affines.count == view.shape.n, "pretraining batch: views \(view.shape), \(otherView.shape), \(affines.count) transforms")
    self.view = view
    self.otherView = otherView
    self.affines = affines
    self.positions = positions
  }
}

extension Pix2RepNetwork {
  /// The Pix2Rep pairing and loss for one batch, and optionally the gradient of every backbone and
  /// projection-head parameter:
  ///
  ///     z  = phi · g(f(v))      (the first view's projected features, warped after the network)
  ///     z' = g(f(phi · v'))     (the second view, warped before the network)
  ///
  /// so pixel p of z and of z' show the same anatomical point. The loss compares rows z[p] and
  /// z'[p] at the batch's positions: InfoNCE on L2-normalised rows, or Barlow Twins on the raw rows.
  /// BatchNorm statistics are computed per view (two forward passes), as in the official code.
  ///
  /// g's last layer (net.3) is a 1x1 convolution, and at the batch's positions the bilinear warp's
  /// four weights sum to exactly 1 (their source lies inside the image: `validityMask`), so
  /// (phi · g(f(v)))[p] = net.3 · (phi · h)[p] with h = ReLU(BN(net.0 · f(v))) the hidden
  /// activations. The last layer therefore runs on the M sampled rows of both views instead of on
  /// every pixel: the same function (a test checks it against g-then-warp), with a fraction of
  /// the work. Everything before it (and BatchNorm's statistics) still sees every pixel.
  public mutating func pretrainingLoss(
    _ batch: PretrainingBatch<Scalar>, loss settings: PretrainingLoss, training: Bool, computeGradients: Bool
  ) -> (loss: Double, gradients: [Scalar]?) {
    let valid = validityMask(affines: batch.affines, height: batch.view.shape.h, width: batch.view.shape.w)
    precondition(batch.positions.allSatisfy { valid[$0] }, "pretrainingLoss: a position whose source lies outside the image")
    // First view: network up to g's hidden activations, their warp at the batch's positions (the
    // rows of warp-then-gather, `Backend.warpGather`), then g's last layer on the rows.
    let tape = backboneForward(batch.view, training: training)
    let hidden = projectionHiddenForward(tape.output, training: training)
    let hiddenRows = backend.warpGather(input: hidden.relu, affines: batch.affines, positions: batch.positions)
    let rows = projectionOutputRows(hiddenRows)
    // Second view: warp, then network.
    let warpedView = backend.warpForward(input: batch.otherView, affines: batch.affines)
    let otherTape = backboneForward(warpedView, training: training)
    let otherHidden = projectionHiddenForward(otherTape.output, training: training)
    let otherHiddenRows = gatherPixels(tensor: otherHidden.relu, positions: batch.positions)
    let otherRows = projectionOutputRows(otherHiddenRows)

    let loss: Double
    var gradRows: Tensor<Scalar>, gradOtherRows: Tensor<Scalar>
    switch settings.objective {
    case .infoNCE:
      let u = backend.l2NormalizeForward(input: rows)
      let uPrime = backend.l2NormalizeForward(input: otherRows)
      let result = backend.infoNCE(z: u, zPrime: uPrime, temperature: settings.temperature)
      loss = result.loss
      guard computeGradients else { return (loss, nil) }
      gradRows = backend.l2NormalizeBackward(input: rows, gradOutput: result.gradZ)
      gradOtherRows = backend.l2NormalizeBackward(input: otherRows, gradOutput: result.gradZPrime)
    case .barlowTwins:
      let result = backend.barlowTwins(z: rows, zPrime: otherRows, lambda: settings.lambda)
      loss = result.loss
      guard computeGradients else { return (loss, nil) }
      gradRows = result.gradZ
      gradOtherRows = result.gradZPrime
    }

    var gradients = zeroGradients()
    let gradHiddenRows = projectionOutputRowsBackward(rows: hiddenRows, gradOutput: gradRows, gradients: &gradients)
    let gradHidden = backend.warpGatherBackward(
      gradRows: gradHiddenRows, affines: batch.affines, positions: batch.positions, shape: hidden.relu.shape)
    let gradFeatures = projectionHiddenBackward(hidden, gradRelu: gradHidden, gradients: &gradients)
    backboneBackward(tape, gradOutput: gradFeatures, gradients: &gradients)
    let gradOtherHiddenRows = projectionOutputRowsBackward(rows: otherHiddenRows, gradOutput: gradOtherRows, gradients: &gradients)
    let gradOtherHidden = scatterPixels(rows: gradOtherHiddenRows, positions: batch.positions, shape: otherHidden.relu.shape)
    let gradOtherFeatures = projectionHiddenBackward(otherHidden, gradRelu: gradOtherHidden, gradients: &gradients)
    backboneBackward(otherTape, gradOutput: gradOtherFeatures, gradients: &gradients)
    return (loss, gradients)
  }
}

extension Pix2RepNetwork {
  /// One pretraining step: the loss and gradients of `pretrainingLoss` (BatchNorm in training
  /// mode), then one Adam update of the backbone and projection head. Returns the loss.
  public mutating func pretrainingStep(
    _ batch: PretrainingBatch<Scalar>, loss settings: PretrainingLoss, optimizer: inout AdamOptimizer<Scalar>
  ) -> Double {
    let (loss, gradients) = pretrainingLoss(batch, loss: settings, training: true, computeGradients: true)
    optimizer.update(&values, gradients: gradients!, backend: backend)
    return loss
  }
}
