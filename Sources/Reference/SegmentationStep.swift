/// Downstream segmentation (docs/PROTOCOL.md section 4): soft Dice through the 1x1 head, and
/// through the backbone when fine-tuning.
extension Pix2RepNetwork {
  // MARK: - Fine-tuning and the supervised baseline

  /// Soft Dice loss of the head on f(images) and the gradient of every backbone and head parameter
  /// (BatchNorm in training mode, running statistics updated). images: (N, 1, S, S); labels: (N, S, S).
  public mutating func fineTuningLossAndGradients(images: Tensor<Scalar>, labels: [UInt8])
    -> (loss: Double, gradients: [Scalar])
  {
    let tape = backboneForward(images, training: true)
    let logits = segmentationForward(tape.output)
    let (loss, gradLogits) = backend.softDiceLoss(logits: logits, labels: labels)
    var gradients = zeroGradients()
    let gradFeatures = segmentationBackward(features: tape.output, gradLogits: gradLogits, gradients: &gradients)
    backboneBackward(tape, gradOutput: gradFeatures, gradients: &gradients)
    return (loss, gradients)
  }

  // MARK: - Linear probing

  /// Frozen features f(images) with BatchNorm in evaluation mode: (N, D, S, S).
  public mutating func frozenFeatures(_ images: Tensor<Scalar>) -> Tensor<Scalar> {
    backboneForward(images, training: false).output
  }

  /// Soft Dice loss of the head on given (frozen) features and the gradient of the head only.
  public func headLossAndGradients(features: Tensor<Scalar>, labels: [UInt8]) -> (loss: Double, gradients: [Scalar]) {
    let logits = segmentationForward(features)
    let (loss, gradLogits) = backend.softDiceLoss(logits: logits, labels: labels)
    var gradients = zeroGradients()
    _ = segmentationBackward(features: features, gradLogits: gradLogits, gradients: &gradients)
    return (loss, gradients)
  }

  // MARK: - Evaluation

  /// Soft Dice loss of the head on features, without gradients (validation).
  public func headLoss(features: Tensor<Scalar>, labels: [UInt8]) -> Double {
    backend.softDiceLoss(logits: segmentationForward(features), labels: labels).loss
  }

  /// Hard labels (N, S, S): the arg-max class of the head on features (lowest class wins a tie).
  public func predictLabels(features: Tensor<Scalar>) -> [UInt8] {
    argmaxChannels(segmentationForward(features))
  }
}

/// The arg-max over channels of (N, K, H, W) logits, as (N, H, W) labels; the lowest index wins a tie.
public func argmaxChannels<Scalar: BinaryFloatingPoint & Sendable>(_ logits: Tensor<Scalar>) -> [UInt8] {
  let s = logits.shape
  precondition(s.c <= 256, "argmax over \(s.c) channels does not fit UInt8")
  var labels = [UInt8](repeating: 0, count: s.n * s.plane)
  for n in 0..<s.n {
    for p in 0..<s.plane {
      var best = logits.data[n * s.c * s.plane + p]
      var bestClass = 0
      for k in 1..<s.c {
        let v = logits.data[(n * s.c + k) * s.plane + p]
        if v > best {
          best = v
          bestClass = k
        }
      }
      labels[n * s.plane + p] = UInt8(bestClass)
    }
  }
  return labels
}
