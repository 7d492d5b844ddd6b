import Reference

// The evaluation-mode forward of the U-Net and the segmentation head, for prediction, validation
// and frozen features: no tape, every BatchNorm folded into the 3x3 convolution before it, the
// convolutions' weights prepared once per network (packed, or Winograd-transformed) instead of on
// every call, and each convolution's folded bias and ReLU applied as it stores its output, straight
// into the buffer its reader wants: the next convolution's padded planes, the first half of an Up
// block's concatenation (the skip connection), plain planes for a transposed convolution or the
// head. The transposed convolution writes the concatenation's second half; the max-pool reads the
// skip. No activation is copied, padded or passed over a second time, and after the first batch
// nothing is allocated. The kernels are the ones training uses (`PreparedConv3x3.forward` is
// `conv3x3Forward`'s, `gemmPlanes` the transposed convolution's and the 1x1 head's).
//
// The twin of `Pix2RepNetwork.frozenFeatures` (the backbone with BatchNorm in evaluation mode)
// followed by `segmentationForward`: `BN(conv(x; w)) = conv(x; w · s) + (beta − mean · s)` with
// `s = gamma / sqrt(running_var + eps)` per output channel, exact in real arithmetic, so the
// results differ from the reference only by Float rounding (of the folded weights, and of the
// summation order) and in nothing else.

// MARK: - The convolutions' algorithms

/// Which algorithms the evaluation-mode network's 3x3 convolutions run. Part of an experiment's
/// configuration: validation (model selection), test Dice and linear probing's frozen features all
/// come from this network, and the two choices round differently, so a run folder keeps the one it
/// started with.
public enum InferenceConvolutions: String, Codable, Hashable, Sendable, CaseIterable {
  /// `Conv3x3Algorithm.choice`, as training's forward: F(2x2, 3x3) where both channel counts are
  /// at least 4, direct otherwise. Run folders written before the choice existed used this.
  case winograd2x2
  /// F(4x4, 3x3) where it measured faster (`algorithm(height:width:depth:rows:)`), otherwise as
  /// `winograd2x2`.
  case winograd4x4

  /// For results.md and the run's summary.
  public var text: String {
    switch self {
    case .winograd2x2: "Winograd F(2x2, 3x3) (winograd2x2)"
    case .winograd4x4: "Winograd F(4x4, 3x3) on planes of 8 x 8 and up, F(2x2, 3x3) below (winograd4x4)"
    }
  }

  /// The algorithm for `depth` input channels into `rows` output channels on (H, W) planes.
  ///
  /// `winograd4x4`: F(4x4, 3x3) where `Conv3x3Algorithm.choice` picks F(2x2, 3x3) (both channel
  /// counts at least 4) on planes of at least 8 x 8; otherwise that choice.
  ///
  /// Why (the forward with its prepared weights at batch 16, 2 workers, F(2x2), F(4x4) and direct
  /// alternated, best of 7, on this 2-core AMD EPYC under a background load of 4-6): F(4x4) was
  /// faster at every cpu-preset layer with 4 or more channels each way: 1.52-1.75x at 64 x 64
  /// (16->16, 32->64, 64->64), 1.33-1.49x at 32 x 32, 1.45-1.70x at 16 x 16, and still 1.20-1.38x
  /// at 8 x 8, where an image has only 2 x 2 tiles of 4 x 4 (their 6 x 6 windows are mostly padding
  /// and are gathered lane by lane, but the products still take 2.25 multiply-adds per output
  /// instead of 4). With one input channel (1->16 at 64 x 64) it was 0.75-0.90x of F(2x2) and about
  /// as fast as the direct kernel, which the rule keeps there: its transforms are not paid back by
  /// the products, as for F(2x2). Planes under 8 x 8 were not measured, so they keep F(2x2).
  package func algorithm(height: Int, width: Int, depth: Int, rows: Int) -> Conv3x3Algorithm {
    let twoByTwo = Conv3x3Algorithm.choice(height: height, width: width, depth: depth, rows: rows)
    switch self {
    case .winograd2x2: return twoByTwo
    case .winograd4x4: return twoByTwo == .winograd && min(height, width) >= 8 ? .winograd4x4 : twoByTwo
    }
  }
}

// MARK: - Folding

/// A 3x3 convolution without bias followed by evaluation-mode BatchNorm, as one convolution with a
/// bias: weight (Cout, Cin, 3, 3) is `w[o, ·] · s[o]`, bias (Cout) is `beta[o] − mean[o] · s[o]`,
/// `s[o] = gamma[o] / sqrt(running_var[o] + 1e-5)`. Folded in Double, each value rounded to
/// Float once.
package struct FoldedConv3x3: Sendable {
  package let weight: [Float]
  package let bias: [Float]
  package var outputChannels: Int { bias.count }

  /// Folds `conv` (a `….weight` key without the suffix, e.g. `inc.double_conv.0`) with the
  /// BatchNorm `norm` (e.g. `inc.double_conv.1`) from a parameter buffer in `layout` order.
  package init(_ values: [Float], _ layout: ParameterLayout, conv: String, norm: String) {
    let w = layout["\(conv).weight"].range
    let gamma = layout["\(norm).weight"].range.lowerBound
    let beta = layout["\(norm).bias"].range.lowerBound
    let mean = layout["\(norm).running_mean"].range.lowerBound
    let variance = layout["\(norm).running_var"].range
    let outputs = variance.count
    let perOutput = w.count / outputs
    var weight = [Float](repeating: 0, count: w.count)
    var bias = [Float](repeating: 0, count: outputs)
    for o in 0..<outputs {
      let inverseStd = 1 / (Double(values[variance.lowerBound + o]) + BatchNormConstants.epsilon).squareRoot()
      let scale = Double(values[gamma + o]) * inverseStd
      for i in 0..<perOutput {
        weight[o * perOutput + i] = Float(Double(values[w.lowerBound + o * perOutput + i]) * scale)
      }
      bias[o] = Float(Double(values[beta + o]) - Double(values[mean + o]) * scale)
    }
    self.weight = weight
    self.bias = bias
  }
}

// MARK: - The network

/// The evaluation-mode U-Net and segmentation head of one parameter buffer, with BatchNorm folded
/// (`FoldedConv3x3`), its convolutions' weights prepared once (`PreparedConv3x3`, the transposed
/// convolutions' and the head's packed), and the buffers it reuses from batch to batch.
///
/// Matches `Pix2RepNetwork<ReferenceBackend>`'s `frozenFeatures` and `segmentationForward` within
/// Float rounding (RegressionTests' InferenceTests state the tolerance), and the same forward
/// composed layer by layer from the public optimized kernels bit for bit (InferenceExactnessTests);
/// bitwise deterministic for any `workers`, and for any `batchSize`: every image is computed on its
/// own, whatever batch it shares. Holds copies of the weights: build a new one after the parameters
/// change.
package struct InferenceNetwork: Sendable {
  package let config: ModelConfig
  package let convolutions: InferenceConvolutions
  /// Workers of the whole call: the images are shared out among them (`forEachBatch`).
  package let workers: Int
  /// Workers inside one layer: 1 in the copies that run a share of the images, else `workers`.
  private(set) var layerWorkers: Int
  /// Images per internal batch (inputs with more images are cut into batches of this size).
  package let batchSize: Int

  /// DoubleConvs from the input block down to the bottleneck: levels[l] at resolution S / 2^l.
  let levels: [[ConvLayer]]
  /// Up blocks in order (up1 is the deepest): the transposed convolution and the DoubleConv.
  let ups: [UpBlock]
  /// Segmentation head: weight (classes, D) packed by `packRows`, bias (classes).
  let headPacked: [Float]
  let headBias: [Float]

  /// A folded 3x3 convolution and its weights prepared for the algorithm `convolutions` picks at
  /// the configured image size.
  struct ConvLayer: Sendable {
    let folded: FoldedConv3x3
    let convolutions: InferenceConvolutions
    let prepared: PreparedConv3x3
    var outputChannels: Int { folded.outputChannels }

    init(_ folded: FoldedConv3x3, inputChannels: Int, size: Int, convolutions: InferenceConvolutions, workers: Int) {
      self.folded = folded
      self.convolutions = convolutions
      prepared = PreparedConv3x3(
        weight: folded.weight, outputChannels: folded.outputChannels, inputChannels: inputChannels,
        algorithm: convolutions.algorithm(height: size, width: size, depth: inputChannels, rows: folded.outputChannels),
        workers: workers)
    }

    /// The convolution of `batch` (batch, inputChannels, H, W) planes padded in `geometry`, each
    /// output stored as `max(y + bias, 0)` in `layout`.
    func run(_ padded: UnsafePointer<Float>, geometry: PaddedGeometry, batch: Int, into layout: PlaneLayout, workers: Int) {
      let algorithm = convolutions.algorithm(
        height: geometry.height, width: geometry.width, depth: prepared.inputChannels, rows: prepared.outputChannels)
      // Images of another size than the configured one may call for another algorithm: it gets
      // weights of its own (identical to what conv3x3Forward prepares).
      let weights = algorithm == prepared.algorithm
        ? prepared
        : PreparedConv3x3(
          weight: folded.weight, outputChannels: folded.outputChannels, inputChannels: prepared.inputChannels,
          algorithm: algorithm, workers: workers)
      folded.bias.withUnsafeBufferPointer {
        weights.forward(
          padded: padded, geometry: geometry, batch: batch, store: ConvStore(layout: layout, biasReLU: $0.baseAddress!),
          workers: workers)
      }
    }
  }

  struct UpBlock: Sendable {
    /// The transposed convolution's weight (Cin, Cout, 2, 2) read as (Cin x 4Cout), transposed and
    /// packed by `packRows`, as `convTranspose2x2Forward` packs it; its bias (Cout).
    let packed: [Float]
    let bias: [Float]
    let convs: [ConvLayer]
  }

  /// Buffers kept across batches; a copy of the network gets its own on first use.
  var workspace = InferenceWorkspace()
  /// The buffers of each worker's share of the images (`forEachBatch`), kept across calls likewise.
  var shareWorkspaces: [InferenceWorkspace] = []

  /// - Parameters:
  ///   - values: a parameter buffer in `ParameterLayout(config:)` order (running statistics
  ///     included); the projection head is not used.
  ///   - convolutions: the 3x3 convolutions' algorithms (an experiment's
  ///     `inferenceConvolutions`).
  ///   - workers: 1 ... 16.
  ///   - batchSize: images per internal batch; 16 keeps the largest activation (batch, D, S, S) of
  ///     the cpu preset at 16 MB.
  package init(
    config: ModelConfig, values: [Float], convolutions: InferenceConvolutions = .winograd2x2, workers: Int,
    batchSize: Int = 16
  ) {
    checkWorkers(workers)
    precondition(batchSize >= 1, "InferenceNetwork: batchSize \(batchSize)")
    let layout = ParameterLayout(config: config)
    precondition(values.count == layout.count, "InferenceNetwork: \(values.count) values for a layout of \(layout.count)")
    func doubleConv(_ prefix: String, inputChannels: Int, level: Int) -> [ConvLayer] {
      let size = config.imageSize >> level
      let first = FoldedConv3x3(values, layout, conv: "\(prefix).0", norm: "\(prefix).1")
      let second = FoldedConv3x3(values, layout, conv: "\(prefix).3", norm: "\(prefix).4")
      return [
        ConvLayer(first, inputChannels: inputChannels, size: size, convolutions: convolutions, workers: workers),
        ConvLayer(
          second, inputChannels: first.outputChannels, size: size, convolutions: convolutions, workers: workers),
      ]
    }
    func parameter(_ name: String) -> [Float] { Array(values[layout[name].range]) }
    self.config = config
    self.convolutions = convolutions
    self.workers = workers
    layerWorkers = workers
    self.batchSize = batchSize
    let widths = config.widths
    let depth = config.depth
    levels = (0...depth).map { l in
      l == 0
        ? doubleConv("inc.double_conv", inputChannels: config.inputChannels, level: 0)
        : doubleConv("down\(l).maxpool_conv.1.double_conv", inputChannels: widths[l - 1], level: l)
    }
    ups = (1...depth).map { k in
      let weight = parameter("up\(k).up.weight"), bias = parameter("up\(k).up.bias")
      let inputChannels = weight.count / (4 * bias.count)
      let packed = weight.withUnsafeBufferPointer {
        packRows($0.baseAddress!, rows: 4 * bias.count, depth: inputChannels, transposed: true)
      }
      return UpBlock(
        packed: packed, bias: bias,
        convs: doubleConv("up\(k).conv.double_conv", inputChannels: 2 * bias.count, level: depth - k))
    }
    let headWeight = parameter("conv.weight")
    headBias = parameter("conv.bias")
    headPacked = headWeight.withUnsafeBufferPointer {
      packRows($0.baseAddress!, rows: config.classes, depth: config.features, transposed: false)
    }
  }

  // MARK: - Entry points

  /// Frozen features f(images) in evaluation mode: (N, D, S, S) from images (N, 1, S, S).
  package mutating func features(_ images: Tensor<Float>) -> Tensor<Float> {
    batched(images, channels: config.features) { net, batch, count, out in
      net.backbone(batch, count: count, size: images.shape.h, features: out)
    }
  }

  /// Class logits of the segmentation head on f(images): (N, classes, S, S).
  package mutating func logits(_ images: Tensor<Float>) -> Tensor<Float> {
    batched(images, channels: config.classes) { net, batch, count, out in
      let size = images.shape.h
      let features = net.workspace.buffer(.features, count: count * net.config.features * size * size)
      net.backbone(batch, count: count, size: size, features: features)
      net.head(features, count: count, size: size, into: out)
    }
  }

  /// Predicted labels (N, S, S) of images (N, 1, S, S), `batchSize` images at a time: the arg-max
  /// class of the logits, the lowest class winning a tie (as `argmaxChannels`).
  package mutating func predictLabels(_ images: Tensor<Float>) -> [UInt8] {
    let s = images.shape
    let plane = s.h * s.w, classes = config.classes
    var labels = [UInt8](repeating: 0, count: s.n * plane)
    labels.withUnsafeMutableBufferPointer { l in
      let labelBase = l.baseAddress!
      forEachBatch(images) { net, start, batch, count in
        let features = net.workspace.buffer(.features, count: count * net.config.features * plane)
        let logits = net.workspace.buffer(.logits, count: count * classes * plane)
        net.backbone(batch, count: count, size: s.h, features: features)
        net.head(features, count: count, size: s.h, into: logits)
        argmaxPlanes(
          logits, batch: count, classes: classes, plane: plane, into: labelBase + start * plane, workers: net.layerWorkers)
      }
    }
    return labels
  }

  // MARK: - Batches

  /// Runs `body(self, images of the batch, count, destination)` on `batchSize` images at a time;
  /// `body` writes the batch's (count, channels, S, S) result at the destination.
  mutating func batched(
    _ images: Tensor<Float>, channels: Int,
    _ body: (InferenceNetwork, UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>) -> Void
  ) -> Tensor<Float> {
    let s = images.shape
    let outShape = Shape(s.n, channels, s.h, s.w)
    let result = makeArray(outShape.count) { base in
      forEachBatch(images) { net, start, batch, count in body(net, batch, count, base + start * channels * s.h * s.w) }
    }
    return Tensor(shape: outShape, data: result)
  }

  /// Calls `body(network, first image, its pointer, count)` for consecutive batches of at most
  /// `batchSize` images of `images`, after checking their shape and making the workspaces this
  /// network's own and laid out for their size.
  ///
  /// With several workers and images, the images are cut into one contiguous share per worker
  /// (`chunkRange`), and each share runs on a worker of its own through a copy of the network
  /// whose layers run on one worker (`layerWorkers`) with a workspace of its own: no layer waits
  /// for the slowest worker, and a share's images stay in its own core's caches. A share runs
  /// batches of `batchSize / shares` images (at least 1), so the shares' buffers together are no
  /// larger than one batch of `batchSize` (or of `shares` images, when that is more). Every image is computed on its own whatever batch it
  /// shares (the class doc), so the results are the same bits as one share's. `body` writes only its
  /// batch's part of the result.
  mutating func forEachBatch(_ images: Tensor<Float>, _ body: (InferenceNetwork, Int, UnsafePointer<Float>, Int) -> Void) {
    let s = images.shape
    precondition(
      s.c == config.inputChannels && s.h == s.w && s.h % (1 << config.depth) == 0,
      "InferenceNetwork: input \(s), expected (N, \(config.inputChannels), S, S) with S divisible by \(1 << config.depth)")
    let shares = min(workers, s.n)
    let per = s.c * s.h * s.w
    if shares <= 1 {
      if !isKnownUniquelyReferenced(&workspace) { workspace = InferenceWorkspace() }
      workspace.layOut(forSize: s.h)
      images.data.withUnsafeBufferPointer {
        Self.batches(self, 0..<s.n, $0.baseAddress!, per: per, batchSize: batchSize, body)
      }
      return
    }
    if shareWorkspaces.count < shares { shareWorkspaces += (shareWorkspaces.count..<shares).map { _ in InferenceWorkspace() } }
    for w in 0..<shares {
      if !isKnownUniquelyReferenced(&shareWorkspaces[w]) { shareWorkspaces[w] = InferenceWorkspace() }
      shareWorkspaces[w].layOut(forSize: s.h)
    }
    var single = self
    single.layerWorkers = 1
    single.shareWorkspaces = []
    let network = single, workspaces = shareWorkspaces, shareBatch = max(1, batchSize / shares)
    images.data.withUnsafeBufferPointer { buffer in
      nonisolated(unsafe) let base = buffer.baseAddress!
      withoutActuallyEscaping(body) { escapable in
        // Disjoint writes: share w's batches write only their own images' results (`body`), through
        // a workspace no other share uses.
        nonisolated(unsafe) let body = escapable
        parallelFor(shares, workers: shares) { w in
          var net = network
          net.workspace = workspaces[w]
          Self.batches(net, chunkRange(w, of: shares, count: s.n), base, per: per, batchSize: shareBatch, body)
        }
      }
    }
  }

  /// `body(net, first image, its pointer, count)` for consecutive batches of at most `batchSize`
  /// of the images `range` (`per` values each) at `base`.
  private static func batches(
    _ net: InferenceNetwork, _ range: Range<Int>, _ base: UnsafePointer<Float>, per: Int, batchSize: Int,
    _ body: (InferenceNetwork, Int, UnsafePointer<Float>, Int) -> Void
  ) {
    var start = range.lowerBound
    while start < range.upperBound {
      let count = min(batchSize, range.upperBound - start)
      body(net, start, base + start * per, count)
      start += count
    }
  }

  // MARK: - Forward

  /// The U-Net on `count` images (count, inputChannels, S, S) at `images`: writes f(images), the
  /// last convolution's activation (count, D, S, S), at `features`.
  ///
  /// Every convolution stores `max(y + bias, 0)` straight where its reader wants it: padded planes
  /// for the next 3x3 convolution (whose zero borders stay zero: only the interior is ever written),
  /// the first half of an Up block's concatenation for a skip connection, plain planes for a
  /// transposed convolution or the head. The max-pool reads the skip and writes the next level's
  /// padded input; the transposed convolution writes the concatenation's second half.
  func backbone(_ images: UnsafePointer<Float>, count: Int, size: Int, features: UnsafeMutablePointer<Float>) {
    let depth = config.depth
    let ws = workspace
    func geometry(_ l: Int) -> PaddedGeometry { .convolutionInput(height: size >> l, width: size >> l) }
    func padded(_ slot: InferenceWorkspace.Slot, _ l: Int, channels: Int) -> UnsafeMutablePointer<Float> {
      ws.buffer(slot, count: geometry(l).count(planes: count * channels))
    }
    // Down the encoder: x is level l's padded input.
    let input = padded(.input, 0, channels: config.inputChannels)
    padPlanes(images, planes: count * config.inputChannels, geometry: geometry(0), into: input, workers: layerWorkers)
    var x = UnsafePointer(input)
    var bottom = UnsafePointer(input)
    for l in 0...depth {
      let h = size >> l, g = geometry(l)
      let convs = levels[l]
      let c0 = convs[0].outputChannels, c = convs[1].outputChannels
      let first = padded(.level(l), l, channels: c0)
      convs[0].run(x, geometry: g, batch: count, into: .padded(first, geometry: g, channels: c0), workers: layerWorkers)
      if l == depth {
        let out = ws.buffer(.bottleneck, count: count * c * h * h)
        convs[1].run(first, geometry: g, batch: count, into: .plain(out, rows: c, height: h, width: h), workers: layerWorkers)
        bottom = UnsafePointer(out)
      } else {
        // The skip connection: the first half of up{depth - l}'s concatenation [skip, upsampled].
        let skip = PlaneLayout.padded(padded(.joined(l), l, channels: 2 * c), geometry: g, channels: 2 * c)
        convs[1].run(first, geometry: g, batch: count, into: skip, workers: layerWorkers)
        let pooled = padded(.pooled(l), l + 1, channels: c)
        maxPoolPlanes(
          skip, into: .padded(pooled, geometry: geometry(l + 1), channels: c), batch: count, channels: c, height: h,
          width: h, workers: layerWorkers)
        x = UnsafePointer(pooled)
      }
    }
    // Up the decoder: y is the previous block's output, plain (count, channels, h / 2, h / 2).
    var y = bottom
    var channels = levels[depth][1].outputChannels
    for k in 1...depth {
      let l = depth - k, h = size >> l, g = geometry(l)
      let up = ups[k - 1]
      let c = up.bias.count
      let joined = padded(.joined(l), l, channels: 2 * c)
      let pixels = (h / 2) * (h / 2)
      let blocks = ws.buffer(.upsampled(k), count: count * 4 * c * pixels)
      up.packed.withUnsafeBufferPointer { a in
        gemmPlanes(
          y, batch: count, depth: channels, pixels: pixels, packed: a.baseAddress!, rows: 4 * c, bias: nil,
          output: blocks, workers: layerWorkers)
      }
      up.bias.withUnsafeBufferPointer { b in
        depthToSpace(
          blocks, batch: count, channels: c, height: h / 2, width: h / 2, bias: b.baseAddress!,
          into: .padded(joined, geometry: g, channels: 2 * c, firstChannel: c), workers: layerWorkers)
      }
      let c0 = up.convs[0].outputChannels, c1 = up.convs[1].outputChannels
      let first = padded(.up(k), l, channels: c0)
      up.convs[0].run(joined, geometry: g, batch: count, into: .padded(first, geometry: g, channels: c0), workers: layerWorkers)
      let out = k == depth ? features : ws.buffer(.upOutput(k), count: count * c1 * h * h)
      up.convs[1].run(first, geometry: g, batch: count, into: .plain(out, rows: c1, height: h, width: h), workers: layerWorkers)
      y = UnsafePointer(out)
      channels = c1
    }
  }

  /// out (count, classes, S, S) = the 1x1 segmentation head of features (count, D, S, S), as
  /// `conv1x1Forward` computes it (`gemmPlanes`: each output sums the channels in order, then adds
  /// the bias).
  func head(_ features: UnsafeMutablePointer<Float>, count: Int, size: Int, into out: UnsafeMutablePointer<Float>) {
    headPacked.withUnsafeBufferPointer { a in
      headBias.withUnsafeBufferPointer { b in
        gemmPlanes(
          features, batch: count, depth: config.features, pixels: size * size, packed: a.baseAddress!,
          rows: config.classes, bias: b.baseAddress!, output: out, workers: layerWorkers)
      }
    }
  }
}

// MARK: - Workspace

/// The buffers of one `InferenceNetwork`, kept from batch to batch: each slot grows to the largest
/// batch seen and is zeroed when (re)allocated, so padded planes keep their zero borders (the
/// network writes only their interiors). A class, so the network's methods need not be mutating;
/// `InferenceNetwork.forEachBatch` gives a copied network a workspace of its own before using it,
/// so no two networks ever share one.
final class InferenceWorkspace: @unchecked Sendable {
  enum Slot: Hashable {
    case input, level(Int), joined(Int), pooled(Int), bottleneck, upsampled(Int), up(Int), upOutput(Int), features
    case logits
  }

  private var buffers: [Slot: (pointer: UnsafeMutablePointer<Float>, count: Int)] = [:]
  private var size = 0

  /// Frees every buffer when the image size changes (the padded layouts depend on it).
  func layOut(forSize size: Int) {
    if size != self.size { release() }
    self.size = size
  }

  /// The buffer of `slot`, at least `count` values.
  func buffer(_ slot: Slot, count: Int) -> UnsafeMutablePointer<Float> {
    if let existing = buffers[slot], existing.count >= count { return existing.pointer }
    buffers[slot]?.pointer.deallocate()
    let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    pointer.initialize(repeating: 0, count: max(count, 1))
    buffers[slot] = (pointer, count)
    return pointer
  }

  private func release() {
    for (_, buffer) in buffers { buffer.pointer.deallocate() }
    buffers = [:]
  }

  deinit { release() }
}

// MARK: - Kernels

/// The 2x2 max-pool (`maxPool2x2Forward`'s winner rule, so the same bits) of (batch, channels,
/// height, width) planes in `source`, into `destination`; height and width even. Parallel over
/// planes, each owned by one iteration; 8 outputs at a time where 16 inputs of each row remain.
func maxPoolPlanes(
  _ source: PlaneLayout, into destination: PlaneLayout, batch: Int, channels: Int, height: Int, width: Int,
  workers: Int
) {
  precondition(height % 2 == 0 && width % 2 == 0, "maxPoolPlanes: \(height) x \(width)")
  let oh = height / 2, ow = width / 2
  // Disjoint writes: iteration (n, c) writes plane (n, c) of `destination` only.
  nonisolated(unsafe) let from = source, to = destination
  parallelFor(batch * channels, workers: workers) { item in
    let n = item / channels, c = item % channels
    for oy in 0..<oh {
      let r0 = UnsafePointer(from.at(n, c, 2 * oy, 0)), r1 = r0 + from.rowStride
      let out = to.at(n, c, oy, 0)
      var ox = 0
      while ox + 8 <= ow {
        let top = load16(r0 + 2 * ox), bottom = load16(r1 + 2 * ox)
        store8(maxPoolWinner8(top.evenHalf, top.oddHalf, bottom.evenHalf, bottom.oddHalf), out + ox)
        ox += 8
      }
      while ox < ow {
        out[ox] = maxPoolWinner(r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]).value
        ox += 1
      }
    }
  }
}

/// `maxPoolWinner(a, b, c, d).value` lane by lane: a later entry wins only when strictly larger,
/// or when it is the first NaN.
@inline(__always)
func maxPoolWinner8(_ a: Vec8, _ b: Vec8, _ c: Vec8, _ d: Vec8) -> Vec8 {
  var value = a
  value.replace(with: b, where: (b .> value) .| ((b .!= b) .& (value .== value)))
  value.replace(with: c, where: (c .> value) .| ((c .!= c) .& (value .== value)))
  value.replace(with: d, where: (d .> value) .| ((d .!= d) .& (value .== value)))
  return value
}

/// out[n, o, 2y + i, 2x + j] = blocks[n, (o, i, j), y, x] + bias[o], stored in `out`: the
/// transposed convolution's rearrangement (`convTranspose2x2Forward`'s, the same additions)
/// written straight into a concatenation. Parallel over (n, o) planes.
func depthToSpace(
  _ blocks: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int, bias: UnsafePointer<Float>,
  into out: PlaneLayout, workers: Int
) {
  let pixels = height * width
  nonisolated(unsafe) let source = blocks, b = bias, destination = out
  // Disjoint writes: plane (n, o) of the output belongs to iteration n * channels + o.
  parallelFor(batch * channels, workers: workers) { plane in
    let n = plane / channels, o = plane % channels
    let src = source + plane * 4 * pixels
    let shift = b[o]
    for y in 0..<height {
      for i in 0..<2 {
        let row = destination.at(n, o, 2 * y + i, 0)
        let s0 = src + (2 * i) * pixels + y * width
        let s1 = src + (2 * i + 1) * pixels + y * width
        for x in 0..<width {
          row[2 * x] = s0[x] + shift
          row[2 * x + 1] = s1[x] + shift
        }
      }
    }
  }
}

/// labels[n, p] = the lowest k with logits[n, k, p] maximal (a later class wins only when strictly
/// larger, as `argmaxChannels`). logits: (N, K, plane). Parallel over images.
func argmaxPlanes(
  _ logits: UnsafePointer<Float>, batch: Int, classes: Int, plane: Int, into labels: UnsafeMutablePointer<UInt8>,
  workers: Int
) {
  precondition(classes >= 1 && classes <= 256, "argmaxPlanes: \(classes) classes")
  // Disjoint writes: iteration n writes labels[n * plane ..< (n + 1) * plane] only.
  nonisolated(unsafe) let z = logits, out = labels
  parallelFor(batch, workers: workers) { n in
    let image = z + n * classes * plane
    for p in 0..<plane {
      var best = image[p]
      var bestClass = 0
      for k in 1..<max(classes, 1) {
        let v = image[k * plane + p]
        if v > best {
          best = v
          bestClass = k
        }
      }
      out[n * plane + p] = UInt8(bestClass)
    }
  }
}
