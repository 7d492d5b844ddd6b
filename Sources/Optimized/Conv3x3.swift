import Reference

// The 3x3 convolution (stride 1, zero padding 1, no bias) as a direct, register-blocked
// implicit GEMM. The input is copied once into zero-padded planes whose rows are wide enough
// that every 8-lane load of a 3x3 window stays inside its own row; a micro-kernel then computes
// 4 output channels x 24 pixels (three 8-pixel row segments, which may sit on different rows)
// over all input channels and taps. The input gradient is the same kernel on the padded output
// gradient with transposed, flipped weights. The weight gradient reduces over pixels in fixed
// chunks, combined in chunk order. Where it measured faster, each of the three runs by Winograd
// F(2x2, 3x3) instead (Winograd.swift); `Conv3x3Algorithm` holds the rules and their reasons.

// MARK: - Padded planes

/// Geometry of zero-padded planes: plane p holds value (y, x) at `p * planeStride + (y + 1) *
/// rowStride + x + 1`. `rowStride = roundUp(W, 8) + 2`, so columns W + 1 ..< rowStride are zero and
/// an 8-lane segment starting at a multiple of 8 never reads the next row. `bottomRows` zero rows
/// (1 by default, 2 for Winograd's tiles on an odd height) follow the last image row; `slack` zeros
/// follow the last plane.
struct PaddedGeometry {
  let height: Int
  let width: Int
  let bottomRows: Int
  let rowStride: Int
  let planeStride: Int
  static let slack = 16

  init(height: Int, width: Int, bottomRows: Int = 1) {
    self.height = height
    self.width = width
    self.bottomRows = bottomRows
    rowStride = roundUp(width, 8) + 2
    planeStride = (height + 1 + bottomRows) * rowStride
  }

  /// 8-lane segments per row.
  var segmentsPerRow: Int { (width + 7) / 8 }

  func count(planes: Int) -> Int { planes * planeStride + Self.slack }

  /// Padded (H, W) planes that every forward algorithm can read: the direct kernel and F(2x2, 3x3)
  /// need one zero row below the image (two on an odd height), F(4x4, 3x3) up to four when H is not
  /// a multiple of 4. The extra rows are zeros that nothing else reads, so the results are the
  /// same as in the smallest geometry each algorithm needs.
  static func convolutionInput(height: Int, width: Int) -> PaddedGeometry {
    PaddedGeometry(
      height: height, width: width, bottomRows: max(WinogradTiling.bottomRows(height: height), Winograd4Tiling.bottomRows(height: height)))
  }
}

/// Writes a zero-padded copy of `planes` planes of (H, W) from `source` into `padded`.
/// Parallel over planes; each plane (and the slack, written by the caller's thread) is owned by
/// one iteration.
func padPlanes(
  _ source: UnsafePointer<Float>, planes: Int, geometry g: PaddedGeometry,
  into padded: UnsafeMutablePointer<Float>, workers: Int
) {
  // Disjoint writes: plane p writes padded[p * planeStride ..< (p + 1) * planeStride] only.
  nonisolated(unsafe) let src = source
  nonisolated(unsafe) let dst = padded
  parallelFor(planes, workers: workers) { p in
    let out = dst + p * g.planeStride
    out.update(repeating: 0, count: g.rowStride)
    let input = src + p * g.height * g.width
    for y in 0..<g.height {
      let row = out + (y + 1) * g.rowStride
      row[0] = 0
      row.advanced(by: 1).update(from: input + y * g.width, count: g.width)
      (row + g.width + 1).update(repeating: 0, count: g.rowStride - g.width - 1)
    }
    (out + (g.height + 1) * g.rowStride).update(repeating: 0, count: g.bottomRows * g.rowStride)
  }
  (padded + planes * g.planeStride).update(repeating: 0, count: PaddedGeometry.slack)
}

// MARK: - Where an output goes

/// Planes inside a larger buffer: value (n, r, y, x) lives at `base + n * imageStride + r *
/// planeStride + origin + y * rowStride + x`. Plain (N, R, H, W) planes, padded planes (the next
/// convolution reads them without a copy) or some channels of a larger tensor (one half of a
/// concatenation).
struct PlaneLayout {
  let base: UnsafeMutablePointer<Float>
  let imageStride: Int
  let planeStride: Int
  let rowStride: Int
  let origin: Int

  /// (N, rows, H, W), W fastest.
  static func plain(_ base: UnsafeMutablePointer<Float>, rows: Int, height: Int, width: Int) -> PlaneLayout {
    PlaneLayout(base: base, imageStride: rows * height * width, planeStride: height * width, rowStride: width, origin: 0)
  }

  /// Channels `firstChannel ...` of padded planes in `geometry`, `channels` planes per image.
  static func padded(_ base: UnsafeMutablePointer<Float>, geometry g: PaddedGeometry, channels: Int, firstChannel: Int = 0)
    -> PlaneLayout
  {
    PlaneLayout(
      base: base + firstChannel * g.planeStride, imageStride: channels * g.planeStride, planeStride: g.planeStride,
      rowStride: g.rowStride, origin: g.rowStride + 1)
  }

  /// Where value (n, r, y, x) goes.
  @inline(__always)
  func at(_ n: Int, _ r: Int, _ y: Int, _ x: Int) -> UnsafeMutablePointer<Float> {
    base + (n * imageStride + r * planeStride + origin + y * rowStride + x)
  }
}

/// How a 3x3 convolution stores its output: where (`layout`), and either the value itself or,
/// with `biasReLU`, `max(value + biasReLU[r], 0)` (the evaluation-mode bias of a folded BatchNorm
/// and the ReLU after it, applied in the store instead of in a pass of their own: the same two
/// operations on the same value). NaN passes through the ReLU, as in `reluForward`.
struct ConvStore {
  let layout: PlaneLayout
  let biasReLU: UnsafePointer<Float>?

  /// The stored value of output row (channel) `r`.
  @inline(__always)
  func value(_ v: Vec8, row r: Int) -> Vec8 {
    guard let biasReLU else { return v }
    let y = v + Vec8(repeating: biasReLU[r])
    // y <= 0 is false for NaN, so NaN passes through.
    return y.replacing(with: Vec8(), where: y .<= Vec8())
  }
}

// MARK: - Choosing the algorithm

/// How a 3x3 convolution (the forward, the input gradient or the weight gradient) is computed.
package enum Conv3x3Algorithm: Sendable {
  /// The register-blocked direct convolution (`conv3x3Direct`).
  case direct
  /// Winograd F(2x2, 3x3) (`winogradConv3x3`).
  case winograd
  /// Winograd F(4x4, 3x3) (`winograd4Conv3x3`): the forward only, used by the evaluation-mode
  /// network when `InferenceConvolutions.winograd4x4` says so; never by training.
  case winograd4x4

  /// The algorithm for `depth` reduction channels into `rows` output rows on (H, W) planes:
  /// Winograd when both are at least 4, direct otherwise.
  ///
  /// Why (forward at batch 8 on 2 workers, this AMD EPYC, best of several runs): with 4 or more of
  /// each, Winograd was faster at every plane size from 2x2 to 64x64 (4->8: 1.05-1.3x, 16->16:
  /// 1.4-1.6x, the cpu preset's layers 1.2x at 8x8 and 1.6-1.9x from 16x16 up). With fewer, its
  /// transforms (per input channel and per output row) are not paid back by the products: 1->16
  /// ran 0.74-0.93x, 2->4 0.86-0.96x, 32->3 0.91-0.94x, 3->32 0.99-1.02x. The plane size did not
  /// change the verdict, so the rule ignores it.
  package static func choice(height: Int, width: Int, depth: Int, rows: Int) -> Conv3x3Algorithm {
    return min(depth, rows) >= 4 ? .winograd : .direct
  }

  /// The algorithm for the weight gradient of `inputChannels` into `outputChannels` on (H, W)
  /// planes: Winograd when both channel counts are at least 4 and the planes are at most 16 x 16
  /// (256 pixels), direct otherwise.
  ///
  /// Why (the whole backward at batch 8 on 2 workers, best of several runs): at the cpu preset's
  /// 8x8 and 16x16 layers Winograd's weight gradient made the backward 1.3-1.7x faster instead of
  /// 1.1-1.3x (the direct weight gradient runs short pixel reductions there); at 32x32 the two
  /// were within noise (1.23-1.33x either way); at 64x64 it was slower (0.83x at 64->64, 0.81x at
  /// 16->16), because it writes every tile's transformed input and output gradient in full (16 ·
  /// (Cin + Cout) values per tile, 67 MB at 64->64) before reducing them. Its rounding also grows
  /// faster with the reduction length: against the reference at 64->64 on 64x64, batch 2, its
  /// worst error was 0.78 of the "float32 kernel" limit (direct: 0.41); at 16x16 and below, 0.15
  /// (direct 0.12); the tests check the cpu preset's small layers at batch 16.
  package static func weightGradientChoice(height: Int, width: Int, inputChannels: Int, outputChannels: Int)
    -> Conv3x3Algorithm
  {
    return min(inputChannels, outputChannels) >= 4 && height * width <= 256 ? .winograd : .direct
  }
}

// MARK: - Forward (and the input gradient)

/// Packs 3x3 weights into blocks of 4 output rows: `packed[block][k][t][m]`, with `k` the
/// reduction channel, `t = ky * 3 + kx`, and zeros for rows past the end.
///
/// - `flipTranspose == false`: rows are output channels o, `packed = weight[o, k, t]` (forward).
/// - `flipTranspose == true`: rows are input channels c, `k` runs over output channels o, and
///   `packed = weight[o, c, 8 - t]` (the input gradient is this convolution of the output gradient).
func packConv3x3Weights(_ weight: UnsafePointer<Float>, outputChannels: Int, inputChannels: Int, flipTranspose: Bool)
  -> [Float]
{
  let rows = flipTranspose ? inputChannels : outputChannels
  let depth = flipTranspose ? outputChannels : inputChannels
  let blocks = (rows + 3) / 4
  var packed = [Float](repeating: 0, count: blocks * depth * 9 * 4)
  for row in 0..<rows {
    let block = row / 4, m = row % 4
    for k in 0..<depth {
      for t in 0..<9 {
        let source = flipTranspose ? (k * inputChannels + row) * 9 + (8 - t) : (row * inputChannels + k) * 9 + t
        packed[((block * depth + k) * 9 + t) * 4 + m] = weight[source]
      }
    }
  }
  return packed
}

/// One 4-channel x 3-segment tile over all `depth` reduction channels and 9 taps.
/// `s0`, `s1`, `s2` point at the top-left window corner of each segment in the padded input.
@inline(__always)
func conv3x3Tile(
  _ packed: UnsafePointer<Float>, depth: Int, geometry g: PaddedGeometry,
  _ s0: UnsafePointer<Float>, _ s1: UnsafePointer<Float>, _ s2: UnsafePointer<Float>
) -> Tile4x3 {
  var acc = Tile4x3()
  var w = packed
  var p0 = s0, p1 = s1, p2 = s2
  let r = g.rowStride
  for _ in 0..<depth {
    for ky in 0..<3 {
      let o = ky * r
      acc.broadcastStep(w, load8(p0 + o), load8(p1 + o), load8(p2 + o))
      acc.broadcastStep(w + 4, load8(p0 + o + 1), load8(p1 + o + 1), load8(p2 + o + 1))
      acc.broadcastStep(w + 8, load8(p0 + o + 2), load8(p1 + o + 2), load8(p2 + o + 2))
      w += 12
    }
    p0 += g.planeStride
    p1 += g.planeStride
    p2 += g.planeStride
  }
  return acc
}

/// out[n, r, y, x] = sum over k < depth, t < 9 of packed(r, k, t) · padded[n, k, y + ky, x + kx],
/// stored by `store`.
///
/// Work items are (image, band of 3 rows); each owns its output rows for every channel, and each
/// output element is one full reduction in a fixed order, so the result does not depend on
/// `workers`.
func conv3x3Direct(
  padded: UnsafePointer<Float>, geometry g: PaddedGeometry, batch: Int, depth: Int,
  packed: UnsafePointer<Float>, rows: Int, store: ConvStore, workers: Int
) {
  let bandRows = 3
  let bands = (g.height + bandRows - 1) / bandRows
  let blocks = (rows + 3) / 4
  let segmentsPerRow = g.segmentsPerRow
  // Disjoint writes: item (n, band) writes output rows [y0, y1) of image n, all channels.
  nonisolated(unsafe) let input = padded
  nonisolated(unsafe) let weights = packed
  nonisolated(unsafe) let out = store
  parallelFor(batch * bands, workers: workers) { item in
    let n = item / bands
    let y0 = (item % bands) * bandRows
    let y1 = min(y0 + bandRows, g.height)
    let segments = (y1 - y0) * segmentsPerRow
    let image = input + n * depth * g.planeStride
    // Segment s of the band: row y0 + s / segmentsPerRow, first column 8 * (s % segmentsPerRow).
    func window(_ s: Int) -> UnsafePointer<Float> {
      UnsafePointer(image + (y0 + s / segmentsPerRow) * g.rowStride + 8 * (s % segmentsPerRow))
    }
    // Tile-outer, block-inner: the tile's input rows (all channels) stay in L1 while the blocks'
    // weights stream from L2, which moves fewer bytes than the other order.
    var s = 0
    while s < segments {
      let count = min(3, segments - s)
      let s0 = window(s), s1 = window(s + min(1, count - 1)), s2 = window(s + count - 1)
      for block in 0..<blocks {
        let acc = conv3x3Tile(weights + block * depth * 36, depth: depth, geometry: g, s0, s1, s2)
        let channels = min(4, rows - block * 4)
        for j in 0..<count {
          let y = y0 + (s + j) / segmentsPerRow
          let x = 8 * ((s + j) % segmentsPerRow)
          let lanes = min(8, g.width - x)
          for m in 0..<channels {
            let r = block * 4 + m
            store8(out.value(acc.get(m, j), row: r), out.layout.at(n, r, y, x), lanes: lanes)
          }
        }
      }
      s += count
    }
  }
}

/// Optimized twin of `Reference.conv3x3Forward`: 3x3 convolution, stride 1, zero padding 1, no
/// bias. input: (N, Cin, H, W), W fastest; weight: (Cout, Cin, 3, 3). Returns (N, Cout, H, W).
///
/// Differs from the reference only in precision (Float) and summation order (each output sums
/// channel by channel, taps in row-major order, in Float; by Winograd F(2x2, 3x3) where
/// `Conv3x3Algorithm.choice` says so: per transformed point, channel by channel, then the output
/// transform). Bitwise deterministic for any `workers`.
public func conv3x3Forward(input: Tensor<Float>, weight: [Float], outputChannels: Int, workers: Int)
  -> Tensor<Float>
{
  let s = input.shape
  return conv3x3Forward(
    input: input, weight: weight, outputChannels: outputChannels, workers: workers,
    algorithm: .choice(height: s.h, width: s.w, depth: s.c, rows: outputChannels))
}

/// `conv3x3Forward` by the given algorithm (the tests run both on every shape).
package func conv3x3Forward(
  input: Tensor<Float>, weight: [Float], outputChannels: Int, workers: Int, algorithm: Conv3x3Algorithm
) -> Tensor<Float> {
  checkWorkers(workers)
  let s = input.shape
  precondition(weight.count == outputChannels * s.c * 9, "conv3x3Forward: weight count \(weight.count)")
  let prepared = PreparedConv3x3(
    weight: weight, outputChannels: outputChannels, inputChannels: s.c, algorithm: algorithm, workers: workers)
  let outShape = Shape(s.n, outputChannels, s.h, s.w)
  let geometry = PaddedGeometry.convolutionInput(height: s.h, width: s.w)
  let data = withScratch(geometry.count(planes: s.n * s.c)) { padded in
    input.data.withUnsafeBufferPointer {
      padPlanes($0.baseAddress!, planes: s.n * s.c, geometry: geometry, into: padded, workers: workers)
    }
    return makeArray(outShape.count) { out in
      prepared.forward(
        padded: padded, geometry: geometry, batch: s.n,
        store: ConvStore(layout: .plain(out, rows: outputChannels, height: s.h, width: s.w), biasReLU: nil),
        workers: workers)
    }
  }
  return Tensor(shape: outShape, data: data)
}

/// The weights of a 3x3 forward convolution prepared for its algorithm: packed in blocks of 4
/// output channels (`packConv3x3Weights`) for the direct kernel, transformed and packed
/// (`winogradFilters`, `winograd4Filters`) for Winograd. `conv3x3Forward` prepares them on every call; a network that
/// runs the same weights on many batches (`InferenceNetwork`) prepares them once. The preparation
/// depends only on the weights, so either way every batch sees the same values.
package struct PreparedConv3x3: Sendable {
  package let algorithm: Conv3x3Algorithm
  package let inputChannels: Int
  package let outputChannels: Int
  let packed: [Float]

  /// weight: (Cout, Cin, 3, 3).
  package init(weight: [Float], outputChannels: Int, inputChannels: Int, algorithm: Conv3x3Algorithm, workers: Int) {
    precondition(weight.count == outputChannels * inputChannels * 9, "PreparedConv3x3: weight count \(weight.count)")
    self.algorithm = algorithm
    self.inputChannels = inputChannels
    self.outputChannels = outputChannels
    packed = weight.withUnsafeBufferPointer {
      switch algorithm {
      case .winograd:
        winogradFilters(
          $0.baseAddress!, outputChannels: outputChannels, inputChannels: inputChannels, flipTranspose: false,
          workers: workers)
      case .winograd4x4:
        winograd4Filters($0.baseAddress!, outputChannels: outputChannels, inputChannels: inputChannels, workers: workers)
      case .direct:
        packConv3x3Weights(
          $0.baseAddress!, outputChannels: outputChannels, inputChannels: inputChannels, flipTranspose: false)
      }
    }
  }

  /// The convolution of `batch` images whose (inputChannels) planes are padded in `geometry` at
  /// `padded` (`PaddedGeometry.convolutionInput` fits every algorithm); output stored by `store`.
  func forward(padded: UnsafePointer<Float>, geometry: PaddedGeometry, batch: Int, store: ConvStore, workers: Int) {
    let (height, width) = (geometry.height, geometry.width)
    packed.withUnsafeBufferPointer {
      switch algorithm {
      case .winograd:
        winogradConv3x3(
          padded: padded, tiling: WinogradTiling(batch: batch, height: height, width: width, geometry: geometry),
          depth: inputChannels, transformed: $0.baseAddress!, rows: outputChannels, store: store, workers: workers)
      case .winograd4x4:
        winograd4Conv3x3(
          padded: padded, tiling: Winograd4Tiling(batch: batch, height: height, width: width, geometry: geometry),
          depth: inputChannels, transformed: $0.baseAddress!, rows: outputChannels, store: store, workers: workers)
      case .direct:
        conv3x3Direct(
          padded: padded, geometry: geometry, batch: batch, depth: inputChannels, packed: $0.baseAddress!,
          rows: outputChannels, store: store, workers: workers)
      }
    }
  }
}

// MARK: - Backward

/// Optimized twin of `Reference.conv3x3Backward`. gradOutput: (N, Cout, H, W). Returns the input
/// gradient (N, Cin, H, W) and the weight gradient (Cout, Cin, 3, 3).
///
/// The input gradient is the forward kernel applied to the padded output gradient with transposed,
/// flipped weights. The weight gradient sums over pixels: lane-parallel partial sums within fixed
/// chunks of image rows (their size depends only on the shape), each chunk's 8 lanes reduced in a
/// fixed order, then chunks added in chunk order. Differs from the reference only in precision and
/// summation order; bitwise deterministic for any `workers`.
public func conv3x3Backward(input: Tensor<Float>, weight: [Float], gradOutput: Tensor<Float>, workers: Int)
  -> (gradInput: Tensor<Float>, gradWeight: [Float])
{
  let s = input.shape
  let cout = gradOutput.shape.c
  return conv3x3Backward(
    input: input, weight: weight, gradOutput: gradOutput, workers: workers,
    algorithm: .choice(height: s.h, width: s.w, depth: cout, rows: s.c),
    weightAlgorithm: .weightGradientChoice(height: s.h, width: s.w, inputChannels: s.c, outputChannels: cout))
}

/// `conv3x3Backward` with the input gradient by `algorithm` and the weight gradient by
/// `weightAlgorithm` (the tests run every combination on every shape).
package func conv3x3Backward(
  input: Tensor<Float>, weight: [Float], gradOutput: Tensor<Float>, workers: Int, algorithm: Conv3x3Algorithm,
  weightAlgorithm: Conv3x3Algorithm
) -> (gradInput: Tensor<Float>, gradWeight: [Float]) {
  checkWorkers(workers)
  let s = input.shape
  let cout = gradOutput.shape.c
  gradOutput.checkShape(Shape(s.n, cout, s.h, s.w), "conv3x3Backward gradOutput")
  precondition(weight.count == cout * s.c * 9, "conv3x3Backward: weight count \(weight.count)")
  precondition(
    algorithm != .winograd4x4 && weightAlgorithm != .winograd4x4, "conv3x3Backward: F(4x4, 3x3) is forward-only")
  let winograd = algorithm == .winograd
  let tiling = WinogradTiling(batch: s.n, height: s.h, width: s.w)
  // One padded copy of each operand serves both gradients, in Winograd's geometry (the direct
  // kernels read the same values from it: it only adds a zero row below odd heights).
  let g = tiling.geometry
  let packed = weight.withUnsafeBufferPointer {
    winograd
      ? winogradFilters($0.baseAddress!, outputChannels: cout, inputChannels: s.c, flipTranspose: true, workers: workers)
      : packConv3x3Weights($0.baseAddress!, outputChannels: cout, inputChannels: s.c, flipTranspose: true)
  }
  var gradWeight = [Float]()
  let gradInputData = withScratch(g.count(planes: s.n * cout)) { paddedGrad in
    gradOutput.data.withUnsafeBufferPointer {
      padPlanes($0.baseAddress!, planes: s.n * cout, geometry: g, into: paddedGrad, workers: workers)
    }
    gradWeight = withScratch(g.count(planes: s.n * s.c)) { paddedInput in
      input.data.withUnsafeBufferPointer {
        padPlanes($0.baseAddress!, planes: s.n * s.c, geometry: g, into: paddedInput, workers: workers)
      }
      if weightAlgorithm == .winograd {
        return gradOutput.data.withUnsafeBufferPointer {
          winogradWeightGradient(
            paddedInput: paddedInput, grad: $0.baseAddress!, tiling: tiling, inputChannels: s.c, outputChannels: cout,
            workers: workers)
        }
      }
      return conv3x3WeightGradient(
        paddedInput: paddedInput, paddedGrad: paddedGrad, geometry: g, batch: s.n, inputChannels: s.c,
        outputChannels: cout, workers: workers)
    }
    return makeArray(s.count) { out in
      let store = ConvStore(layout: .plain(out, rows: s.c, height: s.h, width: s.w), biasReLU: nil)
      packed.withUnsafeBufferPointer {
        if winograd {
          winogradConv3x3(
            padded: paddedGrad, tiling: tiling, depth: cout, transformed: $0.baseAddress!, rows: s.c, store: store,
            workers: workers)
        } else {
          conv3x3Direct(
            padded: paddedGrad, geometry: g, batch: s.n, depth: cout, packed: $0.baseAddress!, rows: s.c,
            store: store, workers: workers)
        }
      }
    }
  }
  return (Tensor(shape: s, data: gradInputData), gradWeight)
}

/// gw[o, c, ky, kx] = sum over n, y, x of grad[n, o, y, x] · input[n, c, y + ky - 1, x + kx - 1],
/// both operands as padded planes.
///
/// For a fixed image, a window origin q = y · rowStride + x runs over one contiguous range of
/// H · rowStride positions: the output gradient at q sits at padded q + rowStride + 1 and is zero
/// wherever x >= W (padding), so every tap is a plain dot product of two contiguous runs, with no
/// per-row bookkeeping. A chunk is a fixed number of whole images (from the shape alone); its runs
/// are cut into pieces of at most 1024 positions (several short images, or part of a long one).
/// Items are (chunk, group of up to 12 or 6 output channels); item (k, group) owns partial[k][its
/// channels]; for each piece, input channel and ky it reads the three shifted input runs once and
/// runs 3 x 3 lane tiles for every 3 output channels of its group, each 8-lane accumulator summed in
/// a fixed lane order and added to the partial in Double. The chunks are added in chunk order, so
/// nothing depends on `workers`.
func conv3x3WeightGradient(
  paddedInput: UnsafePointer<Float>, paddedGrad: UnsafePointer<Float>, geometry g: PaddedGeometry,
  batch: Int, inputChannels cin: Int, outputChannels cout: Int, workers: Int
) -> [Float] {
  let steps = (g.height * g.rowStride + 7) / 8
  let pieceSteps = 128
  let imagesPerChunk = max(1, 512 / steps)
  let chunks = (batch + imagesPerChunk - 1) / imagesPerChunk
  let blocks = (cout + 2) / 3
  // Groups of 4 blocks share the input reads; with few chunks (small images), groups of 2 give the
  // workers more items. Either way each output's summation order is the same.
  let blocksPerGroup = chunks >= 4 ? 4 : 2
  let groups = (blocks + blocksPerGroup - 1) / blocksPerGroup
  let weightCount = cout * cin * 9
  return withDoubleScratch(chunks * weightCount) { partial in
    // Disjoint writes: item (k, group) writes partial[k * weightCount + o * cin * 9 ...] for the
    // output channels o of its group only.
    nonisolated(unsafe) let part = partial
    nonisolated(unsafe) let inputPlanes = paddedInput
    nonisolated(unsafe) let gradPlanes = paddedGrad
    parallelFor(chunks * groups, workers: workers) { item in
      let chunk = item / groups
      let firstBlock = (item % groups) * blocksPerGroup
      let lastBlock = min(blocks, firstBlock + blocksPerGroup)
      let out = part + chunk * weightCount
      let unit = opaqueUnit()
      // The chunk's runs as segments (image, first vector, vectors), cut into pieces.
      var pieces = [[(n: Int, start: Int, count: Int)]]()
      var current = [(n: Int, start: Int, count: Int)]()
      var filled = 0
      for n in (chunk * imagesPerChunk)..<min(batch, (chunk + 1) * imagesPerChunk) {
        var s0 = 0
        while s0 < steps {
          let count = min(steps - s0, pieceSteps - filled)
          current.append((n, s0, count))
          filled += count
          s0 += count
          if filled == pieceSteps {
            pieces.append(current)
            current = []
            filled = 0
          }
        }
      }
      if !current.isEmpty { pieces.append(current) }
      var first = true
      for piece in pieces {
        for c in 0..<cin {
          for ky in 0..<3 {
            for block in firstBlock..<lastBlock {
              let o0 = block * 3
              var acc = LaneTile3x3()
              for segment in piece {
                let q = 8 * segment.start
                // Output-gradient row y of channel o sits at padded row y + 1, column 1.
                let gImage = gradPlanes + segment.n * cout * g.planeStride + g.rowStride + 1 + q
                let x = inputPlanes + (segment.n * cin + c) * g.planeStride + ky * g.rowStride + q
                laneDots(
                  &acc, steps: segment.count, gImage + o0 * g.planeStride,
                  gImage + min(o0 + 1, cout - 1) * g.planeStride, gImage + min(o0 + 2, cout - 1) * g.planeStride,
                  x, x + unit, x + 2 * unit)
              }
              for m in 0..<min(3, cout - o0) {
                let base = out + ((o0 + m) * cin + c) * 9 + ky * 3
                let (v0, v1, v2) = acc.sums(m)
                if first {
                  base[0] = Double(v0)
                  base[1] = Double(v1)
                  base[2] = Double(v2)
                } else {
                  base[0] += Double(v0)
                  base[1] += Double(v1)
                  base[2] += Double(v2)
                }
              }
            }
          }
        }
        first = false
      }
    }
    return makeArray(weightCount) { result in
      reduceChunks(part: UnsafePointer(partial), chunks: chunks, count: weightCount, into: result, workers: workers)
    }
  }
}

/// result[i] = sum over k in chunk order of part[k * count + i], in Double, rounded to Float once.
/// Parallel over fixed ranges of i.
func reduceChunks(
  part: UnsafePointer<Double>, chunks: Int, count: Int, into result: UnsafeMutablePointer<Float>, workers: Int
) {
  let pieces = max(1, min(64, count / 4096))
  // Disjoint writes: piece p writes result[chunkRange(p)] only.
  nonisolated(unsafe) let source = part
  nonisolated(unsafe) let destination = result
  parallelFor(pieces, workers: workers) { piece in
    let range = chunkRange(piece, of: pieces, count: count)
    for i in range {
      var total = source[i]
      for k in 1..<max(chunks, 1) { total += source[k * count + i] }
      destination[i] = Float(total)
    }
  }
}
