import Reference

// The evaluation-mode forward of the U-Net and the segmentation head, for prediction, validation
// and frozen features: no tape, every BatchNorm folded into the 3x3 convolution before it, and
// one pass over each convolution's output that adds the folded bias and applies ReLU. Where the
// U-Net needs more than the activation, the same pass writes the skip connection straight into
// the Up block's concatenation and computes the 2x2 max-pool; the last block's pass is fused with
// the 1x1 segmentation head. The convolutions themselves are the public kernels
// (`conv3x3Forward`, `convTranspose2x2Forward`), so they stay the same functions training uses.
//
// The twin of `Pix2RepNetwork.frozenFeatures` (the backbone with BatchNorm in evaluation mode)
// followed by `segmentationForward`: `BN(conv(x; w)) = conv(x; w · s) + (beta − mean · s)` with
// `s = gamma / sqrt(running_var + eps)` per output channel, exact in real arithmetic, so the
// results differ from the reference only by Float rounding (of the folded weights, and of the
// summation order) and in nothing else.

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
/// (`FoldedConv3x3`), and the buffers it reuses from batch to batch.
///
/// Matches `Pix2RepNetwork<ReferenceBackend>`'s `frozenFeatures` and `segmentationForward` within
/// Float rounding (RegressionTests' InferenceTests state the tolerance); bitwise deterministic for
/// any `workers`, and for any `batchSize`: every image is computed on its own, whatever batch it
/// shares. Holds copies of the weights: build a new one after the parameters change.
package struct InferenceNetwork: Sendable {
  package let config: ModelConfig
  package let workers: Int
  /// Images per internal batch (inputs with more images are cut into batches of this size).
  package let batchSize: Int

  /// DoubleConvs from the input block down to the bottleneck: levels[l] at resolution S / 2^l.
  let levels: [[FoldedConv3x3]]
  /// Up blocks in order (up1 is the deepest): the transposed convolution and the DoubleConv.
  let ups: [UpBlock]
  /// Segmentation head (classes, D) and (classes).
  let headWeight: [Float]
  let headBias: [Float]

  struct UpBlock: Sendable {
    let weight: [Float]
    let bias: [Float]
    let convs: [FoldedConv3x3]
  }

  /// Workspace reused across batches: concatenations[k - 1] is up{k}'s input [skip, upsampled];
  /// pooled[l] is level l's pooled output; batchImages a batch cut from a larger input; logitBuffer
  /// the logits `predictLabels` reduces. Each keeps the capacity of the largest batch seen, so
  /// only the first batch allocates them.
  var concatenations: [[Float]]
  var pooled: [[Float]]
  var batchImages: [Float] = []
  var logitBuffer: [Float] = []

  /// - Parameters:
  ///   - values: a parameter buffer in `ParameterLayout(config:)` order (running statistics
  ///     included); the projection head is not used.
  ///   - workers: 1 ... 16.
  ///   - batchSize: images per internal batch; 16 keeps the largest activation (batch, D, S, S) of
  ///     the cpu preset at 16 MB.
  package init(config: ModelConfig, values: [Float], workers: Int, batchSize: Int = 16) {
    checkWorkers(workers)
    precondition(batchSize >= 1, "InferenceNetwork: batchSize \(batchSize)")
    let layout = ParameterLayout(config: config)
    precondition(values.count == layout.count, "InferenceNetwork: \(values.count) values for a layout of \(layout.count)")
    func doubleConv(_ prefix: String) -> [FoldedConv3x3] {
      [
        FoldedConv3x3(values, layout, conv: "\(prefix).0", norm: "\(prefix).1"),
        FoldedConv3x3(values, layout, conv: "\(prefix).3", norm: "\(prefix).4"),
      ]
    }
    func parameter(_ name: String) -> [Float] { Array(values[layout[name].range]) }
    self.config = config
    self.workers = workers
    self.batchSize = batchSize
    levels = [doubleConv("inc.double_conv")] + (1...config.depth).map { doubleConv("down\($0).maxpool_conv.1.double_conv") }
    ups = (1...config.depth).map {
      UpBlock(weight: parameter("up\($0).up.weight"), bias: parameter("up\($0).up.bias"), convs: doubleConv("up\($0).conv.double_conv"))
    }
    headWeight = parameter("conv.weight")
    headBias = parameter("conv.bias")
    concatenations = Array(repeating: [], count: config.depth)
    pooled = Array(repeating: [], count: config.depth)
  }

  // MARK: - Entry points

  /// Frozen features f(images) in evaluation mode: (N, D, S, S) from images (N, 1, S, S).
  package mutating func features(_ images: Tensor<Float>) -> Tensor<Float> {
    batched(images, channels: config.features) { net, batch, out in
      let raw = net.backbone(batch)
      raw.tensor.data.withUnsafeBufferPointer {
        biasReLUPlanes($0.baseAddress!, bias: raw.bias, shape: raw.tensor.shape, into: out, workers: net.workers)
      }
    }
  }

  /// Class logits of the segmentation head on f(images): (N, classes, S, S).
  package mutating func logits(_ images: Tensor<Float>) -> Tensor<Float> {
    batched(images, channels: config.classes) { net, batch, out in
      let raw = net.backbone(batch)
      net.head(raw.tensor, featureBias: raw.bias, into: out)
    }
  }

  /// Predicted labels (N, S, S) of images (N, 1, S, S), `batchSize` images at a time: the arg-max
  /// class of the logits, the lowest class winning a tie (as `argmaxChannels`).
  package mutating func predictLabels(_ images: Tensor<Float>) -> [UInt8] {
    let s = images.shape
    let plane = s.h * s.w, classes = config.classes
    var labels = [UInt8](repeating: 0, count: s.n * plane)
    var logits = [Float]()
    swap(&logits, &logitBuffer)
    forEachBatch(images) { net, start, batch in
      let raw = net.backbone(batch)
      let count = batch.shape.n
      resize(&logits, count * classes * plane)
      logits.withUnsafeMutableBufferPointer { net.head(raw.tensor, featureBias: raw.bias, into: $0.baseAddress!) }
      logits.withUnsafeBufferPointer { z in
        labels.withUnsafeMutableBufferPointer { l in
          argmaxPlanes(z.baseAddress!, batch: count, classes: classes, plane: plane, into: l.baseAddress! + start * plane, workers: net.workers)
        }
      }
    }
    logitBuffer = logits
    return labels
  }

  // MARK: - Batches

  /// Runs `body` on `batchSize` images at a time; `body` writes the batch's (count, channels, S,
  /// S) result at the pointer it is given.
  mutating func batched(
    _ images: Tensor<Float>, channels: Int,
    _ body: (inout InferenceNetwork, Tensor<Float>, UnsafeMutablePointer<Float>) -> Void
  ) -> Tensor<Float> {
    let s = images.shape
    let outShape = Shape(s.n, channels, s.h, s.w)
    var result = [Float](repeating: 0, count: outShape.count)
    result.withUnsafeMutableBufferPointer { r in
      let base = r.baseAddress!
      forEachBatch(images) { net, start, batch in body(&net, batch, base + start * channels * s.h * s.w) }
    }
    return Tensor(shape: outShape, data: result)
  }

  /// Calls `body(self, first image, batch)` for consecutive batches of at most `batchSize`
  /// images. A batch is the input itself when it fits, else a copy in the reused input buffer.
  mutating func forEachBatch(_ images: Tensor<Float>, _ body: (inout InferenceNetwork, Int, Tensor<Float>) -> Void) {
    let s = images.shape
    if s.n <= batchSize {
      body(&self, 0, images)
      return
    }
    let per = s.c * s.h * s.w
    var start = 0
    while start < s.n {
      let count = min(batchSize, s.n - start)
      var buffer = take(&batchImages, count: count * per)
      buffer.withUnsafeMutableBufferPointer { b in
        images.data.withUnsafeBufferPointer { b.baseAddress!.update(from: $0.baseAddress! + start * per, count: count * per) }
      }
      let batch = Tensor(shape: Shape(count, s.c, s.h, s.w), data: buffer)
      buffer = []
      body(&self, start, batch)
      batchImages = batch.data
      start += count
    }
  }

  // MARK: - Forward

  /// The U-Net on one batch up to the last convolution: its output without the folded bias of
  /// that convolution (the caller's pass adds it with the ReLU), and that bias.
  mutating func backbone(_ images: Tensor<Float>) -> (tensor: Tensor<Float>, bias: [Float]) {
    let s = images.shape
    precondition(
      s.c == config.inputChannels && s.h == s.w && s.h % (1 << config.depth) == 0,
      "InferenceNetwork: input \(s), expected (N, \(config.inputChannels), S, S) with S divisible by \(1 << config.depth)")
    let depth = config.depth
    // Down the encoder: level l's output is the skip connection of up{depth - l} (written into
    // that block's concatenation) and, pooled, level l + 1's input.
    var x = images
    for l in 0...depth {
      let convs = levels[l]
      var first = conv3x3Forward(input: x, weight: convs[0].weight, outputChannels: convs[0].outputChannels, workers: workers)
      if l > 0 { pooled[l - 1] = x.data }
      biasReLU(&first, bias: convs[0].bias)
      var second = conv3x3Forward(input: first, weight: convs[1].weight, outputChannels: convs[1].outputChannels, workers: workers)
      if l == depth {
        biasReLU(&second, bias: convs[1].bias)
        x = second
      } else {
        let c = convs[1].outputChannels, h = second.shape.h
        var joined = take(&concatenations[depth - l - 1], count: s.n * 2 * c * h * h)
        var down = take(&pooled[l], count: s.n * c * (h / 2) * (h / 2))
        biasReLUSkipPool(second, bias: convs[1].bias, skipInto: &joined, pooledInto: &down)
        concatenations[depth - l - 1] = joined
        x = Tensor(shape: Shape(s.n, c, h / 2, h / 2), data: down)
      }
    }
    // Up the decoder: [skip, up(x)] -> DoubleConv.
    for k in 1...depth {
      let up = ups[k - 1]
      let upsampled = convTranspose2x2Forward(input: x, weight: up.weight, bias: up.bias, workers: workers)
      let u = upsampled.shape
      // The skip half was written by the encoder in this batch.
      var skipped = [Float]()
      swap(&skipped, &concatenations[k - 1])
      precondition(skipped.count == 2 * u.count, "InferenceNetwork: concatenation \(k) holds \(skipped.count) values")
      var joined = Tensor(shape: Shape(u.n, 2 * u.c, u.h, u.w), data: skipped)
      skipped = []
      copySecondHalf(upsampled, into: &joined.data)
      var first = conv3x3Forward(input: joined, weight: up.convs[0].weight, outputChannels: up.convs[0].outputChannels, workers: workers)
      concatenations[k - 1] = joined.data
      biasReLU(&first, bias: up.convs[0].bias)
      var second = conv3x3Forward(input: first, weight: up.convs[1].weight, outputChannels: up.convs[1].outputChannels, workers: workers)
      if k == depth { return (second, up.convs[1].bias) }
      biasReLU(&second, bias: up.convs[1].bias)
      x = second
    }
    preconditionFailure("unreachable: the decoder returns at its last block")
  }

  // MARK: - Passes over a convolution's output

  /// x = max(x + bias[c], 0) in place, on every plane (n, c) of x (N, C, H, W).
  func biasReLU(_ x: inout Tensor<Float>, bias: [Float]) {
    let s = x.shape
    x.data.withUnsafeMutableBufferPointer { buffer in
      let p = buffer.baseAddress!
      biasReLUPlanes(UnsafePointer(p), bias: bias, shape: s, into: p, workers: workers)
    }
  }

  /// skip planes (n, c) of `joined` (N, 2C, H, W) = max(x + bias[c], 0) for x (N, C, H, W), and
  /// `down` (N, C, H/2, W/2) their 2x2 max-pool, in one pass (each plane pooled while it is in
  /// cache, with `maxPoolWinner`'s rule, so the pool is bit-identical to `maxPool2x2Forward` of the
  /// activation).
  func biasReLUSkipPool(_ x: Tensor<Float>, bias: [Float], skipInto joined: inout [Float], pooledInto down: inout [Float]) {
    let s = x.shape
    let plane = s.h * s.w, ow = s.w / 2, oh = s.h / 2
    precondition(joined.count == s.n * 2 * s.c * plane && down.count == s.n * s.c * oh * ow, "biasReLUSkipPool: buffer sizes")
    x.data.withUnsafeBufferPointer { xBuffer in
      bias.withUnsafeBufferPointer { bBuffer in
        joined.withUnsafeMutableBufferPointer { jBuffer in
          down.withUnsafeMutableBufferPointer { dBuffer in
            // Disjoint writes: iteration (n, c) writes skip plane (n, c) of `joined` and pooled
            // plane (n, c) only.
            nonisolated(unsafe) let input = xBuffer.baseAddress!, b = bBuffer.baseAddress!
            nonisolated(unsafe) let skip = jBuffer.baseAddress!, pool = dBuffer.baseAddress!
            parallelFor(s.n * s.c, workers: workers) { item in
              let n = item / s.c, c = item % s.c
              let source = input + item * plane
              let activation = skip + (n * 2 * s.c + c) * plane
              let shift = Vec8(repeating: b[c]), zero = Vec8()
              mapPlane(source, activation, count: plane) { v in
                let y = v + shift
                return y.replacing(with: zero, where: y .<= zero)
              }
              let out = pool + item * oh * ow
              for oy in 0..<oh {
                let r0 = activation + 2 * oy * s.w, r1 = r0 + s.w
                for ox in 0..<ow {
                  out[oy * ow + ox] = maxPoolWinner(r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]).value
                }
              }
            }
          }
        }
      }
    }
  }

  /// Channels C ..< 2C of `joined` (N, 2C, H, W) = upsampled (N, C, H, W).
  func copySecondHalf(_ upsampled: Tensor<Float>, into joined: inout [Float]) {
    let s = upsampled.shape
    let per = s.c * s.h * s.w
    precondition(joined.count == 2 * s.count, "copySecondHalf: buffer size")
    upsampled.data.withUnsafeBufferPointer { uBuffer in
      joined.withUnsafeMutableBufferPointer { jBuffer in
        // Disjoint writes: iteration n writes the second half of image n only.
        nonisolated(unsafe) let source = uBuffer.baseAddress!, destination = jBuffer.baseAddress!
        parallelFor(s.n, workers: workers) { n in
          (destination + (2 * n + 1) * per).update(from: source + n * per, count: per)
        }
      }
    }
  }

  /// out (N, classes, H, W) = head(max(x + featureBias, 0)) for the last convolution's output x
  /// (N, D, H, W): the bias, the ReLU and the 1x1 segmentation head in one pass (`headLogits`).
  func head(_ x: Tensor<Float>, featureBias: [Float], into out: UnsafeMutablePointer<Float>) {
    x.data.withUnsafeBufferPointer { xBuffer in
      featureBias.withUnsafeBufferPointer { fb in
        headLogits(
          xBuffer.baseAddress!, featureBias: fb.baseAddress!, shape: x.shape, weight: headWeight, bias: headBias,
          into: out, workers: workers)
      }
    }
  }
}

// MARK: - Kernels

/// out[n, c, ·] = max(x[n, c, ·] + bias[c], 0) for x (N, C, H, W); `out` may be `x`. NaN passes
/// through, as in `reluForward`. Items are fixed groups of planes (of at least 4096 values).
func biasReLUPlanes(_ x: UnsafePointer<Float>, bias: [Float], shape s: Shape, into out: UnsafeMutablePointer<Float>, workers: Int) {
  precondition(bias.count == s.c, "biasReLUPlanes: \(bias.count) biases for \(s)")
  let plane = s.h * s.w
  let planes = s.n * s.c
  let planesPerItem = max(1, 4096 / max(plane, 1))
  bias.withUnsafeBufferPointer { bBuffer in
    // Disjoint writes: item i writes planes i * planesPerItem ..< (i + 1) * planesPerItem only.
    nonisolated(unsafe) let input = x, output = out, b = bBuffer.baseAddress!
    parallelFor((planes + planesPerItem - 1) / planesPerItem, workers: workers) { item in
      let zero = Vec8()
      for p in (item * planesPerItem)..<min(planes, (item + 1) * planesPerItem) {
        let shift = Vec8(repeating: b[p % s.c])
        mapPlane(input + p * plane, output + p * plane, count: plane) { v in
          let y = v + shift
          // y <= 0 is false for NaN, so NaN passes through.
          return y.replacing(with: zero, where: y .<= zero)
        }
      }
    }
  }
}

/// Pixels per item of `headLogits`.
let headBlock = 256

/// out[n, k, p] = bias[k] + sum over c in order of weight[k, c] · max(x[n, c, p] + featureBias[c], 0).
/// x: (N, D, H, W); weight: (K, D); bias: (K); out: (N, K, H, W).
///
/// Items are (image, block of `headBlock` pixels); an item computes 4 classes x 16 pixels at a time
/// over all D channels (the block's D x 16 inputs stay in L1 while the class groups reuse them).
/// Matches `conv1x1Forward` of the activation up to the (fixed) summation order; each output is
/// one reduction in a fixed order, so nothing depends on `workers`.
func headLogits(
  _ x: UnsafePointer<Float>, featureBias: UnsafePointer<Float>, shape s: Shape, weight: [Float], bias: [Float],
  into out: UnsafeMutablePointer<Float>, workers: Int
) {
  let classes = bias.count, depth = s.c, plane = s.h * s.w
  precondition(weight.count == classes * depth, "headLogits: weight \(weight.count) for \(classes) x \(depth)")
  // packed[group][c][m] = weight[4 group + m, c], zero past the last class.
  let groups = (classes + 3) / 4
  var packed = [Float](repeating: 0, count: groups * depth * 4)
  for k in 0..<classes {
    for c in 0..<depth { packed[((k / 4) * depth + c) * 4 + k % 4] = weight[k * depth + c] }
  }
  let blocks = (plane + headBlock - 1) / headBlock
  packed.withUnsafeBufferPointer { pBuffer in
    bias.withUnsafeBufferPointer { bBuffer in
      // Disjoint writes: item (n, block) writes pixels of its block of image n, every class.
      nonisolated(unsafe) let input = x, fb = featureBias, w = pBuffer.baseAddress!, b = bBuffer.baseAddress!
      nonisolated(unsafe) let output = out
      parallelFor(s.n * blocks, workers: workers) { item in
        let n = item / blocks
        let first = (item % blocks) * headBlock
        let last = min(plane, first + headBlock)
        let image = input + n * depth * plane
        let zero = Vec8()
        for group in 0..<groups {
          var p = first
          while p < last {
            let lanes0 = min(8, last - p), lanes1 = max(0, min(8, last - p - 8))
            var a00 = zero, a01 = zero, a10 = zero, a11 = zero, a20 = zero, a21 = zero, a30 = zero, a31 = zero
            var wk = w + group * depth * 4
            for c in 0..<depth {
              let shift = Vec8(repeating: fb[c])
              let row = image + c * plane + p
              var v0 = loadPartial(row, lanes: lanes0) + shift
              v0.replace(with: zero, where: v0 .<= zero)
              var v1 = lanes1 > 0 ? loadPartial(row + 8, lanes: lanes1) + shift : zero
              v1.replace(with: zero, where: v1 .<= zero)
              let w0 = Vec8(repeating: wk[0]), w1 = Vec8(repeating: wk[1])
              let w2 = Vec8(repeating: wk[2]), w3 = Vec8(repeating: wk[3])
              a00.addProduct(w0, v0)
              a01.addProduct(w0, v1)
              a10.addProduct(w1, v0)
              a11.addProduct(w1, v1)
              a20.addProduct(w2, v0)
              a21.addProduct(w2, v1)
              a30.addProduct(w3, v0)
              a31.addProduct(w3, v1)
              wk += 4
            }
            for m in 0..<min(4, classes - 4 * group) {
              let (low, high) = m == 0 ? (a00, a01) : m == 1 ? (a10, a11) : m == 2 ? (a20, a21) : (a30, a31)
              let k = 4 * group + m
              let shift = Vec8(repeating: b[k])
              let destination = output + (n * classes + k) * plane + p
              store8(low + shift, destination, lanes: lanes0)
              if lanes1 > 0 { store8(high + shift, destination + 8, lanes: lanes1) }
            }
            p += 16
          }
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

// MARK: - Workspace

/// The array in `slot` (left empty), resized to exactly `count` elements (`resize`).
func take(_ slot: inout [Float], count: Int) -> [Float] {
  var buffer = [Float]()
  swap(&buffer, &slot)
  resize(&buffer, count)
  return buffer
}

/// Makes `buffer` exactly `count` elements (their values unspecified), keeping its storage when
/// its capacity suffices: a smaller last batch, and the full batch after it, allocate nothing.
func resize(_ buffer: inout [Float], _ count: Int) {
  if buffer.count > count {
    buffer.removeLast(buffer.count - count)
  } else if buffer.count < count {
    buffer.append(contentsOf: repeatElement(0, count: count - buffer.count))
  }
}
