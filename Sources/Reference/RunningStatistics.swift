/// Re-estimating BatchNorm running statistics (the random-backbone control of docs/PROTOCOL.md
/// section 4). A freshly initialised backbone has running mean 0 and variance 1 in every layer, so
/// in evaluation mode its BatchNorm is the identity and the signal fades through the layers; a
/// linear probe on it learns the background only. Before probing, the statistics are re-estimated
/// on unlabelled slices the way PyTorch does with `momentum=None`: training-mode forward passes,
/// each layer's running statistics set to the cumulative (equal-weight) average of its batch
/// statistics. No weight changes.
extension Pix2RepNetwork {
  /// Sets every backbone BatchNorm layer's running mean and variance to the average, over
  /// `batches`, of the batch mean and unbiased batch variance that the layer sees in a
  /// training-mode forward pass. batches: images (N, 1, S, S) each, N·S·S > 1 at the bottleneck.
  ///
  /// How the batch statistics are read: a training-mode BatchNorm moves its running statistics by
  /// `running = (1 - momentum)·running + momentum·batch`; with the running values set to 0 before
  /// the pass it leaves `momentum·batch`, and dividing by the momentum gives the batch's values
  /// (in training mode the running values do not affect the output).
  public mutating func reestimateBatchNormStatistics<S: Sequence>(over batches: S) where S.Element == Tensor<Scalar> {
    let running = layout.entries.filter { $0.group == .backbone && !$0.role.isTrainable }
    averageBatchStatistics(running, over: batches, label: "reestimateBatchNormStatistics") { net, batch in
      _ = net.backboneForward(batch, training: true)
    }
  }

  /// Sets the running entries `running` to the average over `batches` of the batch statistics that
  /// `pass` (training-mode forward passes) leaves in them, read as `reestimateBatchNormStatistics`
  /// explains.
  mutating func averageBatchStatistics<S: Sequence>(
    _ running: [ParameterEntry], over batches: S, label: String, pass: (inout Pix2RepNetwork, Tensor<Scalar>) -> Void
  ) where S.Element == Tensor<Scalar> {
    var sums = [Double](repeating: 0, count: running.reduce(0) { $0 + $1.count })
    var count = 0
    for batch in batches {
      for entry in running {
        for i in entry.range { values[i] = 0 }
      }
      pass(&self, batch)
      var k = 0
      for entry in running {
        for i in entry.range {
          sums[k] += Double(values[i]) / BatchNormConstants.momentum
          k += 1
        }
      }
      count += 1
    }
    precondition(count > 0, "\(label): no batches")
    var k = 0
    for entry in running {
      for i in entry.range {
        values[i] = Scalar(sums[k] / Double(count))
        k += 1
      }
    }
  }
}

extension Pix2RepNetwork {
  /// Sets the projection head's BatchNorm (net.1) running mean and variance to the average, over
  /// `batches`, of its batch statistics in a training-mode forward pass of the backbone and of g,
  /// as `reestimateBatchNormStatistics` does for the backbone: together the two give what one
  /// re-estimation of every layer would. The backbone's running statistics are left as they were
  /// (the training-mode passes move them; they are restored). No weight changes. For the random
  /// backbone's in-context control (docs/PROTOCOL.md section 9), whose projection head is never
  /// trained. batches: images (N, 1, S, S) each.
  public mutating func reestimateProjectionStatistics<S: Sequence>(over batches: S) where S.Element == Tensor<Scalar> {
    let backbone = layout.entries.filter { $0.group == .backbone && !$0.role.isTrainable }
    let kept = backbone.map { Array(values[$0.range]) }
    let running = layout.entries.filter { $0.group == .projection && !$0.role.isTrainable }
    averageBatchStatistics(running, over: batches, label: "reestimateProjectionStatistics") { net, batch in
      let features = net.backboneForward(batch, training: true).output
      _ = net.projectionHiddenForward(features, training: true)
    }
    for (entry, saved) in zip(backbone, kept) { values.replaceSubrange(entry.range, with: saved) }
  }
}
