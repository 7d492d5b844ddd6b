import Dispatch
import Foundation
import Optimized
import Reference
import TestSupport

// MARK: - The preset's layers

extension ProfileProbe {
  /// Every kernel of one pretraining step (and the segmentation loss) at the preset's shapes.
  static func all(config: ModelConfig) -> [ProfileProbe] {
    let n = batch
    let size = config.imageSize
    let w = config.widths
    let depth = config.depth
    var probes = [ProfileProbe]()
    func shape(_ c: Int, _ s: Int) -> String { "(\(n), \(c), \(s), \(s))" }

    // 3x3 convolutions of every DoubleConv: (name, cin, cout, size).
    var convs = [("inc", config.inputChannels, w[0], size)]
    for k in 1...depth { convs.append(("down\(k)", w[k - 1], w[k], size >> k)) }
    for k in 1...depth {
      let input = w[depth - k + 1]
      convs.append(("up\(k)", input, k == depth ? config.features : w[depth - k], size >> (depth - k)))
    }
    for (layer, cin, cout, s) in convs {
      for (index, (a, c)) in [(cin, cout), (cout, cout)].enumerated() {
        let macs = Double(n * a * c * 9 * s * s)
        let label = "\(layer).\(index * 3) \(a)->\(c)"
        probes.append(ProfileProbe(Conv3x3Probe(cin: a, cout: c, size: s, backward: false), name: "conv3x3 fwd \(label)", shape: shape(a, s), batch: n, flops: 2 * macs))
        probes.append(ProfileProbe(Conv3x3Probe(cin: a, cout: c, size: s, backward: true), name: "conv3x3 bwd \(label)", shape: shape(a, s), batch: n, flops: 4 * macs))
      }
    }
    // Transposed convolutions of the Up blocks.
    for k in 1...depth {
      let input = w[depth - k + 1], s = size >> (depth - k + 1)
      let macs = Double(n * input * (input / 2) * 4 * s * s)
      for backward in [false, true] {
        probes.append(ProfileProbe(
          ConvTransposeProbe(cin: input, cout: input / 2, size: s, backward: backward),
          name: "convT2x2 \(backward ? "bwd" : "fwd") up\(k)", shape: shape(input, s), batch: n, flops: (backward ? 4 : 2) * macs))
      }
    }
    // 1x1 convolutions: projection head and segmentation head. The projection head's last layer
    // runs on the sampled rows only (see `pretrainingLoss`).
    let rows = InfoNCEConstants.sampledPositions
    for backward in [false, true] {
      let macs = Double(rows * config.projectionHidden * config.projectionOutput)
      probes.append(ProfileProbe(
        RowsConv1x1Probe(cin: config.projectionHidden, cout: config.projectionOutput, rows: rows, backward: backward),
        name: "conv1x1 \(backward ? "bwd" : "fwd") proj net.3", shape: "(1, \(config.projectionHidden), 1, \(rows))", batch: 1,
        flops: (backward ? 4 : 2) * macs))
    }
    let heads = [
      ("proj net.0", config.features, config.projectionHidden, n),
      ("seg conv", config.features, config.classes, segmentationBatch),
    ]
    for (label, cin, cout, b) in heads {
      let macs = Double(b * cin * cout * size * size)
      for backward in [false, true] {
        probes.append(ProfileProbe(
          Conv1x1Probe(cin: cin, cout: cout, size: size, backward: backward),
          name: "conv1x1 \(backward ? "bwd" : "fwd") \(label)", shape: "(\(b), \(cin), \(size), \(size))", batch: b,
          flops: (backward ? 4 : 2) * macs))
      }
    }
    // Pointwise and data movement at the largest activations.
    let bnShapes = [(w[0], size), (config.features, size), (config.projectionHidden, size)]
    for (c, s) in bnShapes {
      let count = Double(n * c * s * s)
      for backward in [false, true] {
        probes.append(ProfileProbe(
          BatchNormProbe(channels: c, size: s, backward: backward), name: "batchNorm \(backward ? "bwd" : "fwd")",
          shape: shape(c, s), batch: n, flops: (backward ? 8 : 5) * count))
      }
    }
    for backward in [false, true] {
      let c = config.projectionHidden
      probes.append(ProfileProbe(
        ReLUProbe(channels: c, size: size, backward: backward), name: "relu \(backward ? "bwd" : "fwd")",
        shape: shape(c, size), batch: n, flops: Double(n * c * size * size)))
    }
    for k in 1...depth {
      let c = w[k - 1], s = size >> (k - 1)
      for backward in [false, true] {
        probes.append(ProfileProbe(
          MaxPoolProbe(channels: c, size: s, backward: backward), name: "maxPool \(backward ? "bwd" : "fwd") down\(k)",
          shape: shape(c, s), batch: n, flops: Double(n * c * s * s)))
        probes.append(ProfileProbe(
          ConcatProbe(channels: c, size: s, backward: backward), name: "\(backward ? "split" : "concat") up\(depth - k + 1)",
          shape: "2 x " + shape(c, s), batch: n, flops: 0))
      }
    }
    for backward in [false, true] {
      let c = config.projectionHidden  // the warp moves g's hidden activations
      probes.append(ProfileProbe(
        WarpProbe(channels: c, size: size, backward: backward), name: "warp \(backward ? "bwd" : "fwd") proj hidden",
        shape: shape(c, size), batch: n, flops: 8 * Double(n * c * size * size)))
    }
    // Losses on the M sampled positions, and Adam over every parameter.
    let m = InfoNCEConstants.sampledPositions, d = config.projectionOutput
    for backward in [false, true] {
      probes.append(ProfileProbe(
        L2NormalizeProbe(rows: m, columns: d, backward: backward), name: "l2Normalize \(backward ? "bwd" : "fwd")",
        shape: "(\(m), \(d))", batch: n, scalesWithBatch: false, flops: 3 * Double(m * d)))
    }
    probes.append(ProfileProbe(
      InfoNCEProbe(rows: m, columns: d), name: "infoNCE fwd+bwd", shape: "2 x (\(m), \(d))", batch: n,
      scalesWithBatch: false, flops: 3 * 2 * Double(4 * m * m * d)))
    probes.append(ProfileProbe(
      BarlowTwinsProbe(rows: m, columns: d), name: "barlowTwins fwd+bwd", shape: "2 x (\(m), \(d))", batch: n,
      scalesWithBatch: false, flops: 3 * 2 * Double(m * d * d)))
    probes.append(ProfileProbe(
      IntensityAugmentationProbe(size: size), name: "intensity augmentation",
      shape: "(\(segmentationBatch), 1, \(size), \(size))", batch: segmentationBatch, flops: 0))
    probes.append(ProfileProbe(
      SoftDiceProbe(classes: config.classes, size: size), name: "softDice fwd+bwd",
      shape: "(\(segmentationBatch), \(config.classes), \(size), \(size))", batch: segmentationBatch,
      flops: 0))
    let parameters = ParameterLayout(config: config).count
    probes.append(ProfileProbe(
      AdamProbe(count: parameters), name: "adam", shape: "\(parameters) values", batch: n, scalesWithBatch: false,
      flops: 12 * Double(parameters)))
    return probes
  }
}
