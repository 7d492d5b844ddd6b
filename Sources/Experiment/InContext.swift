import Reference

// In-context segmentation (docs/PROTOCOL.md section 9): no training. The labelled pixels (the
// support) keep their projected representations g(f(x)), L2-normalised; every query pixel takes the
// label of its nearest support pixel by cosine similarity (`nearestNeighbours`). Used on a draw's
// labelled patients against the test volumes, and from a test patient's ED frame to its ES frame.

/// The backbones segmented in context: the two pretrained ones and the random control.
public enum InContextBackbone: String, Codable, CaseIterable, Sendable {
  case infoNCE, barlowTwins, random

  /// The Dice table's row.
  public var method: Method {
    switch self {
    case .infoNCE: .pix2repInContext
    case .barlowTwins: .barlowInContext
    case .random: .randomInContext
    }
  }

  public var title: String {
    switch self {
    case .infoNCE: "Pix2Rep (InfoNCE)"
    case .barlowTwins: "Pix2Rep-v2 (Barlow Twins)"
    case .random: "Random backbone"
    }
  }

  /// The stage whose weights it uses: a pretraining, or the random backbone with every BatchNorm's
  /// statistics re-estimated (`Reproduction.randomProjectionStatisticsStage`).
  public var inputStage: String {
    switch self {
    case .infoNCE, .barlowTwins: "pretrain-\(rawValue)"
    case .random: Reproduction.randomProjectionStatisticsStage
    }
  }
}

public enum InContextSettings {
  /// The most support pixels kept per class (ours): exact search costs query pixels x support
  /// pixels x (the projection's width) multiply-adds, and a draw labels 40,000 (one patient) to 8 million (a hundred)
  /// pixels at the cpu preset. The paper and Pix2Rep-v2 give no value. A preset name decides it,
  /// not the configuration, so existing run folders keep their identity.
  public static func supportPerClass(preset: String) -> Int { preset == "smoke" ? 256 : 1024 }
}

/// The labelled pixels of a support per class (background, RV, MYO, LV), and how many it kept.
public struct SupportSample: Codable, Hashable, Sendable {
  public var available: [Int]
  public var used: [Int]
  public var perClassLimit: Int

  public init(available: [Int], used: [Int], perClassLimit: Int) {
    self.available = available
    self.used = used
    self.perClassLimit = perClassLimit
  }

  /// "1024 of 61230 background, 1024 of 5120 RV, …", for the log.
  public var text: String {
    zip(["background", "RV", "MYO", "LV"], zip(used, available)).map { "\($1.0) of \($1.1) \($0)" }.joined(separator: ", ")
  }
}

/// The support pixels kept: per class, every pixel when there are at most `limit`, else `limit`
/// drawn uniformly without replacement (`samplePixelPositions`, classes in order from one stream);
/// returned in ascending position order, so ties go to the earliest pixel.
/// labels: the support's label maps, flat; classes: label values 0 ..< classes.
package func subsampleSupport(labels: [UInt8], classes: Int, limit: Int, rng: inout SplitMix64) -> (positions: [Int], sample: SupportSample) {
  precondition(limit >= 1, "subsampleSupport: limit \(limit)")
  var positions: [Int] = []
  var available: [Int] = [], used: [Int] = []
  for k in 0..<classes {
    let valid = labels.map { $0 == UInt8(k) }
    let chosen = samplePixelPositions(valid: valid, count: limit, rng: &rng)
    available.append(valid.lazy.filter { $0 }.count)
    used.append(chosen.count)
    positions += chosen
  }
  return (positions.sorted(), SupportSample(available: available, used: used, perClassLimit: limit))
}

/// g(f(x)) in evaluation mode, L2-normalised at every pixel, as rows: the representation the
/// nearest-neighbour rule compares. f runs through `EvaluationForward` (the folded inference
/// network on the optimized backend); g through the network's own projection head.
package struct ProjectedRows<B: Backend> {
  var net: Pix2RepNetwork<B>
  var forward: EvaluationForward<B>

  package init(_ net: Pix2RepNetwork<B>) {
    self.net = net
    forward = EvaluationForward(net)
  }

  /// Rows (N·S·S, P, 1, 1) of images (N, 1, S, S), P the projection's output width; only the pixels
  /// at `positions` (flat over the batch, `gatherPixels` order) when given.
  package mutating func rows(_ images: Tensor<B.Scalar>, positions: [Int]? = nil) -> Tensor<B.Scalar> {
    let f = forward.features(images)
    let z: Tensor<B.Scalar>
    if let positions {
      // In evaluation mode g acts on each pixel alone: it runs on the gathered pixels only, laid
      // out as one image of M pixels.
      let picked = rowsAsPixels(gatherPixels(tensor: f, positions: positions))
      z = pixelsAsRows(net.projectionForward(picked, training: false).output)
    } else {
      z = pixelRows(net.projectionForward(f, training: false).output)
    }
    return net.backend.l2NormalizeForward(input: z)
  }
}

/// A support: normalised projected rows and their labels.
package struct InContextSupport<Scalar: BinaryFloatingPoint & Sendable> {
  package var rows: Tensor<Scalar>
  package var labels: [UInt8]
  package var sample: SupportSample
}

/// The support of the labelled slices `slices`: the pixels `subsampleSupport` keeps (seeded by
/// `rng`), their projected rows computed `batchSize` slices at a time.
package func inContextSupport<B: Backend>(
  _ projector: inout ProjectedRows<B>, slices: SliceSet, classes: Int, limit: Int, rng: inout SplitMix64, batchSize: Int
) -> InContextSupport<B.Scalar> {
  let (positions, sample) = subsampleSupport(labels: slices.labels, classes: classes, limit: limit, rng: &rng)
  let plane = slices.size * slices.size
  var data: [B.Scalar] = []
  var width = 0
  var next = 0
  for batch in slices.batches(of: batchSize) {
    let end = (batch.last! + 1) * plane
    var local: [Int] = []
    while next < positions.count && positions[next] < end {
      local.append(positions[next] - batch[0] * plane)
      next += 1
    }
    if local.isEmpty { continue }
    let rows = projector.rows(slices.imageTensor(batch), positions: local)
    width = rows.shape.c
    data += rows.data
  }
  precondition(next == positions.count && !positions.isEmpty, "inContextSupport: no support pixels")
  return InContextSupport(
    rows: Tensor(shape: Shape(positions.count, width, 1, 1), data: data), labels: positions.map { slices.labels[$0] },
    sample: sample)
}

/// Every pixel of `query` labelled by its nearest support pixel, `batchSize` slices at a time.
/// Returns (query.count, S, S) labels in slice order.
package func inContextLabels<B: Backend>(
  _ projector: inout ProjectedRows<B>, support: InContextSupport<B.Scalar>, query: SliceSet, batchSize: Int
) -> [UInt8] {
  var predicted: [UInt8] = []
  predicted.reserveCapacity(query.labels.count)
  for batch in query.batches(of: batchSize) {
    let rows = projector.rows(query.imageTensor(batch))
    predicted += projector.net.backend.nearestNeighbourLabels(queries: rows, support: support.rows, supportLabels: support.labels)
  }
  return predicted
}

/// In-context segmentation of `test` from the labelled slices `support`: hard 3D Dice of every
/// test volume, and the support's per-class sample.
package func segmentInContext<B: Backend>(
  _ net: Pix2RepNetwork<B>, support: SliceSet, test: SliceSet, limit: Int, seed: UInt64, batchSize: Int
) -> (scores: [VolumeScore], sample: SupportSample) {
  var projector = ProjectedRows(net)
  var rng = SplitMix64(seed: seed, stream: 0x1C7)
  let kept = inContextSupport(&projector, slices: support, classes: net.config.classes, limit: limit, rng: &rng, batchSize: batchSize)
  let predicted = inContextLabels(&projector, support: kept, query: test, batchSize: batchSize)
  return (scoreVolumes(predicted: predicted, test: test), kept.sample)
}

extension SliceSet {
  /// These slices followed by `other`'s.
  func appending(_ other: SliceSet) -> SliceSet {
    var out = self
    let plane = other.size * other.size
    for i in 0..<other.count {
      out.append(
        image: Array(other.images[(i * plane)..<((i + 1) * plane)]), label: Array(other.labels[(i * plane)..<((i + 1) * plane)]),
        volume: other.volumes[other.volumeOfSlice[i]])
    }
    return out
  }
}
