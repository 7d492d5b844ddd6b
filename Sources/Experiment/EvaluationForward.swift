import Optimized
import Reference

/// The evaluation-mode forward (BatchNorm with its running statistics) of a network's current
/// values, for test prediction, validation and frozen features, built once and used for many
/// batches.
///
/// On `OptimizedBackend` it runs `InferenceNetwork`: BatchNorm folded into the convolutions, no
/// tape, buffers reused from batch to batch, the 3x3 convolutions by the backend's
/// `inferenceConvolutions`. On any other backend it runs the network's own
/// `frozenFeatures` and `segmentationForward`, which define it. The two agree within Float
/// rounding (RegressionTests' InferenceTests). It holds a copy of the weights: build a new one
/// after the parameters change (only the backbone's, for `features`).
package struct EvaluationForward<B: Backend> {
  /// The folded network on `OptimizedBackend`, else nil.
  private var inference: InferenceNetwork?
  /// The network itself on any other backend, else nil.
  private var definition: Pix2RepNetwork<B>?

  package init(_ net: Pix2RepNetwork<B>) {
    // Resolved at compile time where the caller is specialised for a backend.
    if let backend = net.backend as? OptimizedBackend, let values = net.values as? [Float] {
      inference = InferenceNetwork(
        config: net.config, values: values, convolutions: backend.inferenceConvolutions, workers: backend.workers)
    } else {
      definition = net
    }
  }

  /// f(images): (N, D, S, S) from images (N, 1, S, S).
  package mutating func features(_ images: Tensor<B.Scalar>) -> Tensor<B.Scalar> {
    if inference != nil { return inference!.features(images as! Tensor<Float>) as! Tensor<B.Scalar> }
    return definition!.frozenFeatures(images)
  }

  /// Class logits of the segmentation head on f(images): (N, classes, S, S).
  package mutating func logits(_ images: Tensor<B.Scalar>) -> Tensor<B.Scalar> {
    if inference != nil { return inference!.logits(images as! Tensor<Float>) as! Tensor<B.Scalar> }
    return definition!.segmentationForward(definition!.frozenFeatures(images))
  }

  /// Hard labels (N, S, S): the arg-max class (the lowest class wins a tie).
  package mutating func labels(_ images: Tensor<B.Scalar>) -> [UInt8] {
    if inference != nil { return inference!.predictLabels(images as! Tensor<Float>) }
    return definition!.predictLabels(features: definition!.frozenFeatures(images))
  }
}
