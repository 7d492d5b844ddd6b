import Foundation
import KernelCatalog
import Reference

// MARK: - The preset's layers

extension ProfileProbe {
  /// Every kernel of one pretraining step (and the segmentation loss) at the preset's shapes.
  package static func all(config: ModelConfig) -> [ProfileProbe] {
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
        let label = "\(layer).\(index * 3) \(a)->\(c)"
        for pass in [KernelPass.forward, .backward] {
          probes.append(ProfileProbe(
            Conv3x3Kernel(), pass, KernelShape(n, a, s, s, other: c), name: "conv3x3 \(passName(pass)) \(label)",
            shape: shape(a, s)))
        }
      }
    }
    // Transposed convolutions of the Up blocks.
    for k in 1...depth {
      let input = w[depth - k + 1], s = size >> (depth - k + 1)
      for pass in [KernelPass.forward, .backward] {
        probes.append(ProfileProbe(
          ConvTranspose2x2Kernel(), pass, KernelShape(n, input, s, s, other: input / 2),
          name: "convT2x2 \(passName(pass)) up\(k)", shape: shape(input, s)))
      }
    }
    // 1x1 convolutions: projection head and segmentation head. The projection head's last layer
    // runs on the sampled rows only (see `pretrainingLoss`), as one (1, hidden, 1, M) image.
    let rows = InfoNCEConstants.sampledPositions
    for pass in [KernelPass.forward, .backward] {
      probes.append(ProfileProbe(
        Conv1x1Kernel(), pass, KernelShape(1, config.projectionHidden, 1, rows, other: config.projectionOutput),
        name: "conv1x1 \(passName(pass)) proj net.3", shape: "(1, \(config.projectionHidden), 1, \(rows))"))
    }
    let heads = [
      ("proj net.0", config.features, config.projectionHidden, n),
      ("seg conv", config.features, config.classes, segmentationBatch),
    ]
    for (label, cin, cout, b) in heads {
      for pass in [KernelPass.forward, .backward] {
        probes.append(ProfileProbe(
          Conv1x1Kernel(), pass, KernelShape(b, cin, size, size, other: cout), name: "conv1x1 \(passName(pass)) \(label)",
          shape: "(\(b), \(cin), \(size), \(size))"))
      }
    }
    // Pointwise and data movement at the largest activations.
    let bnShapes = [(w[0], size), (config.features, size), (config.projectionHidden, size)]
    for (c, s) in bnShapes {
      for pass in [KernelPass.forward, .backward] {
        probes.append(ProfileProbe(
          BatchNormKernel(training: true), pass, KernelShape(n, c, s, s), name: "batchNorm \(passName(pass))",
          shape: shape(c, s)))
      }
    }
    for pass in [KernelPass.forward, .backward] {
      let c = config.projectionHidden
      probes.append(ProfileProbe(
        ReLUKernel(), pass, KernelShape(n, c, size, size), name: "relu \(passName(pass))", shape: shape(c, size)))
    }
    for k in 1...depth {
      let c = w[k - 1], s = size >> (k - 1)
      for pass in [KernelPass.forward, .backward] {
        probes.append(ProfileProbe(
          MaxPoolKernel(), pass, KernelShape(n, c, s, s), name: "maxPool \(passName(pass)) down\(k)", shape: shape(c, s)))
        // Variant 0: split where the two were joined, as the U-Net's backward does.
        probes.append(ProfileProbe(
          ConcatKernel(), pass, KernelShape(n, c, s, s, other: c),
          name: "\(pass == .backward ? "split" : "concat") up\(depth - k + 1)", shape: "2 x " + shape(c, s)))
      }
    }
    for pass in [KernelPass.forward, .backward] {
      // The warp moves g's hidden activations, at the M sampled positions only (`warpGather`).
      let c = config.projectionHidden, m = InfoNCEConstants.sampledPositions
      // Variant 2: the protocol's own transforms.
      probes.append(ProfileProbe(
        WarpGatherKernel(), pass, KernelShape(n, c, size, size, other: m, variant: 2),
        name: "warpGather \(passName(pass)) proj hidden", shape: shape(c, size) + " at \(m)"))
    }
    // Losses on the M sampled positions, and Adam over every parameter: their time does not scale
    // with the batch.
    let m = InfoNCEConstants.sampledPositions, d = config.projectionOutput
    for pass in [KernelPass.forward, .backward] {
      probes.append(ProfileProbe(
        L2NormalizeKernel(), pass, KernelShape(m, d, 1, 1), name: "l2Normalize \(passName(pass))", shape: "(\(m), \(d))",
        scalesWithBatch: false))
    }
    probes.append(ProfileProbe(
      InfoNCEKernel(), .forward, KernelShape(m, d, 1, 1), name: "infoNCE fwd+bwd", shape: "2 x (\(m), \(d))",
      scalesWithBatch: false))
    probes.append(ProfileProbe(
      BarlowTwinsKernel(), .forward, KernelShape(m, d, 1, 1), name: "barlowTwins fwd+bwd", shape: "2 x (\(m), \(d))",
      scalesWithBatch: false))
    // Variant 1: the protocol's own draws.
    probes.append(ProfileProbe(
      IntensityAugmentationKernel(), .forward, KernelShape(segmentationBatch, 1, size, size, variant: 1),
      name: "intensity augmentation", shape: "(\(segmentationBatch), 1, \(size), \(size))"))
    probes.append(ProfileProbe(
      SoftDiceKernel(), .forward, KernelShape(segmentationBatch, config.classes, size, size), name: "softDice fwd+bwd",
      shape: "(\(segmentationBatch), \(config.classes), \(size), \(size))"))
    // Step 3, over the whole buffer (no untouched ends).
    let parameters = ParameterLayout(config: config).count
    probes.append(ProfileProbe(
      AdamKernel(), .forward, KernelShape(1, parameters, 0, 1, other: 3), name: "adam", shape: "\(parameters) values",
      scalesWithBatch: false))
    return probes
  }
}

private func passName(_ pass: KernelPass) -> String { pass == .forward ? "fwd" : "bwd" }
