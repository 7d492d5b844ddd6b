import Experiment
import Foundation
import Optimized
import Reference

/// The time the paper preset would take here, from one measured pretraining step and one
/// fine-tuning step at the paper's sizes.
enum PaperEstimate {
  static func describe(config: ExperimentConfig, workers: Int) -> String {
    let backend = OptimizedBackend(workers: workers)
    var net = Pix2RepNetwork(config: config.model, backend: backend, seed: 1)
    let s = config.model.imageSize
    var rng = SplitMix64(seed: 1)
    func images(_ n: Int) -> Tensor<Float> {
      Tensor(shape: Shape(n, 1, s, s), data: (0..<(n * s * s)).map { _ in Float(rng.uniform()) })
    }
    let affines = (0..<config.pretrainingBatch).map { _ in sampleSpatialTransform(rng: &rng).affine }
    let valid = validityMask(affines: affines, height: s, width: s)
    let batch = PretrainingBatch(
      view: images(config.pretrainingBatch), otherView: images(config.pretrainingBatch), affines: affines,
      positions: samplePixelPositions(valid: valid, count: config.positions, rng: &rng))
    var start = Date()
    _ = net.pretrainingLoss(batch, loss: PretrainingLoss(objective: .infoNCE), training: true, computeGradients: true)
    let pretrainStep = Date().timeIntervalSince(start)
    start = Date()
    _ = net.fineTuningLossAndGradients(
      images: images(config.downstreamBatch), labels: [UInt8](repeating: 0, count: config.downstreamBatch * s * s))
    let fineTuneStep = Date().timeIntervalSince(start)
    let runs = config.budgets.reduce(0) { $0 + config.drawCount(budget: $1) }
    // Two objectives; per draw: baseline, two fine-tunings (and the rate search on first draws),
    // linear probes are cheap beside them.
    let pretraining = 2 * Double(config.pretrainingSteps) * pretrainStep
    let downstream = Double(runs * 3 + config.budgets.count * 2) * Double(config.fineTuneMaxSteps) * fineTuneStep
    return String(
      format: """
        paper preset: measured here one pretraining step %.1f s and one fine-tuning step %.1f s (%d workers);
        estimated %@ of pretraining and up to %@ of downstream training (%d draws), about %@ in all.
        """, pretrainStep, fineTuneStep, workers, formatDuration(pretraining), formatDuration(downstream), runs,
      formatDuration(pretraining + downstream))
  }
}
