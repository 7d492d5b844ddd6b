import Reference

// MARK: - Spatial warp

/// The four bilinear corners of one output pixel, in the reference's order (i, j) = (0, 0), (1, 0),
/// (0, 1), (1, 1): plane offsets and Float weights. A corner the reference skips (outside the
/// image, or weight 0) points at offset `plane`, a slot one past the plane that holds 0 in the
/// forward and is discarded in the backward, so the inner loops have no branches.
struct WarpTaps {
  var o0: Int32, o1: Int32, o2: Int32, o3: Int32
  var w0: Float, w1: Float, w2: Float, w3: Float
}

/// Taps of output pixel (x, y), computed exactly as the reference's `BilinearTaps` (same
/// `PixelAffine`, same floor, in Double), only the weights rounded to Float.
func warpTaps(_ map: PixelAffine, height: Int, width: Int, y: Int, x: Int) -> WarpTaps {
  let source = map.source(x: x, y: y)
  let fx = source.x.rounded(.down), fy = source.y.rounded(.down)
  let x0 = fx.isFinite && abs(fx) < 1e9 ? Int(fx) : Int.min / 2
  let y0 = fy.isFinite && abs(fy) < 1e9 ? Int(fy) : Int.min / 2
  let wx1 = source.x - fx, wy1 = source.y - fy
  let skipped = Int32(height * width)
  func corner(_ i: Int, _ j: Int) -> (Int32, Float) {
    let cx = x0 + i, cy = y0 + j
    let weight = (i == 0 ? 1 - wx1 : wx1) * (j == 0 ? 1 - wy1 : wy1)
    if cx >= 0 && cx < width && cy >= 0 && cy < height && weight != 0 {
      return (Int32(cy * width + cx), Float(weight))
    }
    return (skipped, 0)
  }
  let (o0, w0) = corner(0, 0), (o1, w1) = corner(1, 0), (o2, w2) = corner(0, 1), (o3, w3) = corner(1, 1)
  return WarpTaps(o0: o0, o1: o1, o2: o2, o3: o3, w0: w0, w1: w1, w2: w2, w3: w3)
}

/// Taps for all pixels of all images: (N, H, W). Parallel over images (each owns its slice).
func warpTapTable(affines: [Affine2D], height: Int, width: Int, workers: Int) -> [WarpTaps] {
  let plane = height * width
  let empty = WarpTaps(o0: 0, o1: 0, o2: 0, o3: 0, w0: 0, w1: 0, w2: 0, w3: 0)
  var table = [WarpTaps](repeating: empty, count: affines.count * plane)
  table.withUnsafeMutableBufferPointer { buffer in
    // Disjoint writes: image n writes table[n * plane ..< (n + 1) * plane] only.
    nonisolated(unsafe) let t = buffer.baseAddress!
    parallelFor(affines.count, workers: workers) { n in
      let map = PixelAffine(affines[n], height: height, width: width)
      for y in 0..<height {
        for x in 0..<width { t[n * plane + y * width + x] = warpTaps(map, height: height, width: width, y: y, x: x) }
      }
    }
  }
  return table
}

/// Optimized twin of `Reference.warpForward`: bilinear warp, `align_corners = true`, zero padding.
/// input: (N, C, H, W), W fastest; affines: N maps. Returns (N, C, H, W).
///
/// The stencil (corners, and which are skipped) is computed exactly as the reference's; only the
/// weights and the 4-term sums, added in the reference's order, are in Float. Parallel over
/// (image, channel) planes.
public func warpForward(input: Tensor<Float>, affines: [Affine2D], workers: Int) -> Tensor<Float> {
  checkWorkers(workers)
  let s = input.shape
  precondition(affines.count == s.n, "warpForward: \(affines.count) affines for batch \(s.n)")
  let plane = s.h * s.w
  let table = warpTapTable(affines: affines, height: s.h, width: s.w, workers: workers)
  let data = makeArray(s.count) { out in
    input.data.withUnsafeBufferPointer { xBuffer in
      table.withUnsafeBufferPointer { tBuffer in
        // Disjoint writes: plane (n, c) of the output belongs to iteration n * C + c.
        nonisolated(unsafe) let x = xBuffer.baseAddress!, taps = tBuffer.baseAddress!
        nonisolated(unsafe) let y = out
        parallelFor(s.n * s.c, workers: workers) { p in
          withScratch(plane + 1) { source in
            source.update(from: x + p * plane, count: plane)
            source[plane] = 0
            let dst = y + p * plane
            let imageTaps = taps + (p / s.c) * plane
            for i in 0..<plane {
              let t = imageTaps[i]
              var sum: Float = 0
              sum += t.w0 * source[Int(t.o0)]
              sum += t.w1 * source[Int(t.o1)]
              sum += t.w2 * source[Int(t.o2)]
              sum += t.w3 * source[Int(t.o3)]
              dst[i] = sum
            }
          }
        }
      }
    }
  }
  return Tensor(shape: s, data: data)
}

/// Adds gradient v onto the four corners of `t` (a skipped corner onto the discarded slot), in the
/// reference's corner order.
@inline(__always)
func scatter(_ v: Float, _ t: WarpTaps, into target: UnsafeMutablePointer<Float>) {
  target[Int(t.o0)] += t.w0 * v
  target[Int(t.o1)] += t.w1 * v
  target[Int(t.o2)] += t.w2 * v
  target[Int(t.o3)] += t.w3 * v
}

/// Optimized twin of `Reference.warpBackward`: the adjoint of `warpForward`, scattering each output
/// gradient onto its four corners. gradOutput: (N, C, H, W). Returns (N, C, H, W).
///
/// Each (image, channel) plane is scattered by one iteration, in pixel order, so the result does not
/// depend on `workers`; pixels whose gradient is zero are skipped (they add exact zeros). Differs
/// from the reference only in precision.
public func warpBackward(gradOutput: Tensor<Float>, affines: [Affine2D], workers: Int) -> Tensor<Float> {
  checkWorkers(workers)
  let s = gradOutput.shape
  precondition(affines.count == s.n, "warpBackward: \(affines.count) affines for batch \(s.n)")
  let plane = s.h * s.w
  let table = warpTapTable(affines: affines, height: s.h, width: s.w, workers: workers)
  let data = makeArray(s.count) { out in
    gradOutput.data.withUnsafeBufferPointer { gBuffer in
      table.withUnsafeBufferPointer { tBuffer in
        // Disjoint writes: plane (n, c) of the input gradient belongs to iteration n * C + c.
        nonisolated(unsafe) let g = gBuffer.baseAddress!, taps = tBuffer.baseAddress!
        nonisolated(unsafe) let dx = out
        parallelFor(s.n * s.c, workers: workers) { p in
          withScratch(plane + 1) { target in
            target.update(repeating: 0, count: plane + 1)
            let src = g + p * plane
            let imageTaps = taps + (p / s.c) * plane
            for i in 0..<plane {
              let v = src[i]
              // A zero gradient adds exact zeros: skip it (the loss gradient reaches the warp only
              // at the sampled positions, so most pixels are zero).
              if v == 0 { continue }
              scatter(v, imageTaps[i], into: target)
            }
            (dx + p * plane).update(from: target, count: plane)
          }
        }
      }
    }
  }
  return Tensor(shape: s, data: data)
}

// MARK: - The warp at sampled positions

/// Optimized twin of `Backend.warpGather`: `gatherPixels(warpForward(input, affines), positions)`
/// computed at the M positions only, bit for bit the same (each row is `warpForward`'s pixel: the
/// same taps, a skipped corner adding 0 · 0, the four products added to 0 in the same order).
/// input: (N, C, H, W); positions: flat n·H·W + y·W + x. Returns (M, C, 1, 1). Parallel over
/// fixed blocks of positions, each writing its own rows.
public func warpGather(input: Tensor<Float>, affines: [Affine2D], positions: [Int], workers: Int) -> Tensor<Float> {
  checkWorkers(workers)
  let s = input.shape
  precondition(affines.count == s.n, "warpGather: \(affines.count) affines for batch \(s.n)")
  let plane = s.h * s.w
  precondition(positions.allSatisfy { $0 >= 0 && $0 < s.n * plane }, "warpGather: a position outside \(s)")
  let maps = affines.map { PixelAffine($0, height: s.h, width: s.w) }
  let channels = s.c
  let blocks = (positions.count + 63) / 64
  let data = makeArray(positions.count * channels) { out in
    input.data.withUnsafeBufferPointer { xBuffer in
      positions.withUnsafeBufferPointer { pBuffer in
        // Disjoint writes: block b writes rows 64b ..< 64(b + 1) only.
        nonisolated(unsafe) let x = xBuffer.baseAddress!, sampled = pBuffer.baseAddress!
        nonisolated(unsafe) let rows = out
        parallelFor(blocks, workers: workers) { block in
          for m in (64 * block)..<min(positions.count, 64 * block + 64) {
            let p = sampled[m]
            let n = p / plane, i = p % plane
            let t = warpTaps(maps[n], height: s.h, width: s.w, y: i / s.w, x: i % s.w)
            for c in 0..<channels {
              let source = x + (n * channels + c) * plane
              /// `warpForward`'s padded plane: the slot one past the plane holds 0.
              @inline(__always) func value(_ o: Int32) -> Float { Int(o) == plane ? 0 : source[Int(o)] }
              var sum: Float = 0
              sum += t.w0 * value(t.o0)
              sum += t.w1 * value(t.o1)
              sum += t.w2 * value(t.o2)
              sum += t.w3 * value(t.o3)
              rows[m * channels + c] = sum
            }
          }
        }
      }
    }
  }
  return Tensor(shape: Shape(positions.count, channels, 1, 1), data: data)
}

/// Optimized twin of `Backend.warpGatherBackward`: `warpBackward(scatterPixels(gradRows,
/// positions, shape), affines)` without the mostly-zero (N, C, H, W) gradient in between, bit for
/// bit the same: for each plane the sampled pixels are visited in pixel order (the order
/// `warpBackward` meets them), rows landing on the same pixel are first added to 0 in row order (as
/// `scatterPixels` adds them), and a zero sum is skipped (as `warpBackward` skips it). Returns
/// (N, C, H, W). Parallel over (image, channel) planes, each owned by one iteration.
public func warpGatherBackward(
  gradRows: Tensor<Float>, affines: [Affine2D], positions: [Int], shape s: Shape, workers: Int
) -> Tensor<Float> {
  checkWorkers(workers)
  precondition(affines.count == s.n, "warpGatherBackward: \(affines.count) affines for batch \(s.n)")
  gradRows.checkShape(Shape(positions.count, s.c, 1, 1), "warpGatherBackward gradRows")
  let plane = s.h * s.w
  precondition(positions.allSatisfy { $0 >= 0 && $0 < s.n * plane }, "warpGatherBackward: a position outside \(s)")
  // The sampled pixels of each image in pixel order, each with its taps and the rows landing on it.
  let order = positions.indices.sorted { (positions[$0], $0) < (positions[$1], $1) }
  let maps = affines.map { PixelAffine($0, height: s.h, width: s.w) }
  var pixels = [[(taps: WarpTaps, rows: [Int])]](repeating: [], count: s.n)
  var previous = -1
  for m in order {
    let p = positions[m]
    let n = p / plane, i = p % plane
    if p == previous {
      pixels[n][pixels[n].count - 1].rows.append(m)
    } else {
      pixels[n].append((warpTaps(maps[n], height: s.h, width: s.w, y: i / s.w, x: i % s.w), [m]))
    }
    previous = p
  }
  let channels = s.c
  let data = makeArray(s.count) { out in
    gradRows.data.withUnsafeBufferPointer { gBuffer in
      // Disjoint writes: plane (n, c) of the input gradient belongs to iteration n * C + c.
      nonisolated(unsafe) let g = gBuffer.baseAddress!
      nonisolated(unsafe) let dx = out
      let sampled = pixels
      parallelFor(s.n * channels, workers: workers) { p in
        let n = p / channels, c = p % channels
        withScratch(plane + 1) { target in
          target.update(repeating: 0, count: plane + 1)
          for (t, rows) in sampled[n] {
            var v: Float = 0
            for m in rows { v += g[m * channels + c] }
            if v == 0 { continue }
            scatter(v, t, into: target)
          }
          (dx + p * plane).update(from: target, count: plane)
        }
      }
    }
  }
  return Tensor(shape: s, data: data)
}
