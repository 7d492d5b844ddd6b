import Reference

// MARK: - Spatial warp

/// The four bilinear corners of one output pixel: plane offsets (-1 for a corner that the reference
/// skips: outside the image, or weight 0) and Float weights, in the reference's order (0,0), (1,0),
/// (0,1), (1,1) as (i, j).
struct WarpTaps {
  var offsets: SIMD4<Int32>
  var weights: SIMD4<Float>
}

/// Taps of every output pixel of image n, computed exactly as the reference's `BilinearTaps` (same
/// `PixelAffine`, same floor, in Double), only the weights rounded to Float.
func warpTaps(_ map: PixelAffine, height: Int, width: Int, y: Int, x: Int) -> WarpTaps {
  let source = map.source(x: x, y: y)
  let fx = source.x.rounded(.down), fy = source.y.rounded(.down)
  let x0 = fx.isFinite && abs(fx) < 1e9 ? Int(fx) : Int.min / 2
  let y0 = fy.isFinite && abs(fy) < 1e9 ? Int(fy) : Int.min / 2
  let wx1 = source.x - fx, wy1 = source.y - fy
  let wx = (1 - wx1, wx1), wy = (1 - wy1, wy1)
  var taps = WarpTaps(offsets: SIMD4(repeating: -1), weights: SIMD4())
  for j in 0...1 {
    for i in 0...1 {
      let cx = x0 + i, cy = y0 + j
      let weight = (i == 0 ? wx.0 : wx.1) * (j == 0 ? wy.0 : wy.1)
      let k = 2 * j + i
      if cx >= 0 && cx < width && cy >= 0 && cy < height && weight != 0 {
        taps.offsets[k] = Int32(cy * width + cx)
        taps.weights[k] = Float(weight)
      }
    }
  }
  return taps
}

/// Taps for all pixels of all images: (N, H, W). Parallel over images (each owns its slice).
func warpTapTable(affines: [Affine2D], height: Int, width: Int, workers: Int) -> [WarpTaps] {
  let plane = height * width
  let empty = WarpTaps(offsets: SIMD4(repeating: -1), weights: SIMD4())
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
/// weights and the 4-term sums are in Float. Parallel over (image, channel) planes.
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
          let n = p / s.c
          let src = x + p * plane, dst = y + p * plane
          let imageTaps = taps + n * plane
          for i in 0..<plane {
            let t = imageTaps[i]
            var sum: Float = 0
            for k in 0..<4 where t.offsets[k] >= 0 {
              sum += t.weights[k] * src[Int(t.offsets[k])]
            }
            dst[i] = sum
          }
        }
      }
    }
  }
  return Tensor(shape: s, data: data)
}

/// Optimized twin of `Reference.warpBackward`: the adjoint of `warpForward`, scattering each output
/// gradient onto its four corners. gradOutput: (N, C, H, W). Returns (N, C, H, W).
///
/// Each (image, channel) plane is scattered by one iteration, in pixel order, so the result does not
/// depend on `workers`. Differs from the reference only in precision.
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
          let n = p / s.c
          let src = g + p * plane, dst = dx + p * plane
          dst.update(repeating: 0, count: plane)
          let imageTaps = taps + n * plane
          for i in 0..<plane {
            let t = imageTaps[i]
            let v = src[i]
            for k in 0..<4 where t.offsets[k] >= 0 {
              dst[Int(t.offsets[k])] += t.weights[k] * v
            }
          }
        }
      }
    }
  }
  return Tensor(shape: s, data: data)
}
