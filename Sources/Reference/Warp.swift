// MARK: - Spatial warp (phi applied to an image or to a feature map)

/// The pixel-space form of an `Affine2D`: the source pixel `(sx, sy)` that output pixel `(x, y)`
/// reads, `sx = xx·x + xy·y + x0`, `sy = yx·x + yy·y + y0`.
///
/// With `align_corners = true` a pixel index i of an axis of size S has the normalised coordinate
/// `-1 + 2i / (S - 1)` (S > 1), and 0 when S = 1, as in PyTorch's `affine_grid`. Substituting that
/// into A·p and mapping back gives, for S_x = W and S_y = H both above 1,
/// `sx = a·x + b·(W - 1)/(H - 1)·y + (W - 1)/2·(tx + 1 - a - b)` and the same for y. Composing in
/// pixel space instead of going through normalised coordinates makes the identity, the flips and the
/// 90-degree rotations (entries 0 and ±1) land exactly on pixel centres, so they only move data.
public struct PixelAffine: Hashable, Sendable {
  public var xx: Double, xy: Double, x0: Double
  public var yx: Double, yy: Double, y0: Double

  /// The pixel map of `affine` on an image of `height` x `width` pixels.
  public init(_ affine: Affine2D, height: Int, width: Int) {
    precondition(height > 0 && width > 0, "PixelAffine: empty image \(height) x \(width)")
    let halfW = Double(width - 1) / 2
    let halfH = Double(height - 1) / 2
    // A size-1 axis has the single normalised coordinate 0: it contributes no term, and its output
    // coordinate is always pixel 0.
    let hasX = width > 1 ? 1.0 : 0.0
    let hasY = height > 1 ? 1.0 : 0.0
    xx = hasX * affine.a
    xy = hasX * hasY * affine.b * (halfW / max(halfH, 0.5))
    x0 = hasX * halfW * (affine.tx + 1 - affine.a - hasY * affine.b)
    yx = hasY * hasX * affine.c * (halfH / max(halfW, 0.5))
    yy = hasY * affine.d
    y0 = hasY * halfH * (affine.ty + 1 - hasX * affine.c - affine.d)
  }

  /// The source pixel of output pixel (x, y), in fractional pixel units.
  public func source(x: Int, y: Int) -> (x: Double, y: Double) {
    let px = Double(x), py = Double(y)
    return (xx * px + xy * py + x0, yx * px + yy * py + y0)
  }
}

/// The four bilinear taps of a fractional source pixel: integer corners and their weights.
/// Corners outside the image are reported with weight 0 by the caller's bounds test (zero padding).
struct BilinearTaps {
  let x0: Int, y0: Int
  let wx0: Double, wx1: Double, wy0: Double, wy1: Double

  init(_ source: (x: Double, y: Double)) {
    let fx = source.x.rounded(.down), fy = source.y.rounded(.down)
    // Out-of-range sources (far outside, or NaN) collapse to a corner no image contains.
    x0 = fx.isFinite && abs(fx) < 1e9 ? Int(fx) : Int.min / 2
    y0 = fy.isFinite && abs(fy) < 1e9 ? Int(fy) : Int.min / 2
    wx1 = source.x - fx
    wx0 = 1 - wx1
    wy1 = source.y - fy
    wy0 = 1 - wy1
  }

  /// The corner (x0 + i, y0 + j) for i, j in {0, 1}, with its weight.
  func tap(_ i: Int, _ j: Int) -> (x: Int, y: Int, weight: Double) {
    (x0 + i, y0 + j, (i == 0 ? wx0 : wx1) * (j == 0 ? wy0 : wy1))
  }
}

/// Bilinear warp with `align_corners = true` and zero padding: output pixel p of sample n takes
/// input sample n at affines[n]·p (docs/PROTOCOL.md section 3; Backend.warpForward).
///
/// input: (N, C, H, W), W fastest; affines: N maps. Returns (N, C, H, W). Corners of the bilinear
/// stencil outside the image contribute 0. The identity, flips and 90-degree rotations (square
/// images) reproduce exact index permutations of the input (see `PixelAffine`).
public func warpForward(input: Tensor<Double>, affines: [Affine2D]) -> Tensor<Double> {
  let s = input.shape
  precondition(affines.count == s.n, "warpForward: \(affines.count) affines for batch \(s.n)")
  var output = Tensor<Double>(zeros: s)
  for n in 0..<s.n {
    let map = PixelAffine(affines[n], height: s.h, width: s.w)
    for y in 0..<s.h {
      for x in 0..<s.w {
        let taps = BilinearTaps(map.source(x: x, y: y))
        for c in 0..<s.c {
          var sum = 0.0
          for j in 0...1 {
            for i in 0...1 {
              let t = taps.tap(i, j)
              if t.x >= 0 && t.x < s.w && t.y >= 0 && t.y < s.h && t.weight != 0 {
                sum += t.weight * input[n, c, t.y, t.x]
              }
            }
          }
          output[n, c, y, x] = sum
        }
      }
    }
  }
  return output
}

/// Gradient of `warpForward` with respect to the warped tensor: its adjoint, which scatters each
/// output gradient back onto the four input corners it was read from, with the same weights.
///
/// gradOutput: (N, C, H, W); affines: N maps. Returns gradInput (N, C, H, W):
/// `<warpForward(x), g> = <x, warpBackward(g)>` for all x and g.
public func warpBackward(gradOutput: Tensor<Double>, affines: [Affine2D]) -> Tensor<Double> {
  let s = gradOutput.shape
  precondition(affines.count == s.n, "warpBackward: \(affines.count) affines for batch \(s.n)")
  var gradInput = Tensor<Double>(zeros: s)
  for n in 0..<s.n {
    let map = PixelAffine(affines[n], height: s.h, width: s.w)
    for y in 0..<s.h {
      for x in 0..<s.w {
        let taps = BilinearTaps(map.source(x: x, y: y))
        for c in 0..<s.c {
          let g = gradOutput[n, c, y, x]
          for j in 0...1 {
            for i in 0...1 {
              let t = taps.tap(i, j)
              if t.x >= 0 && t.x < s.w && t.y >= 0 && t.y < s.h && t.weight != 0 {
                gradInput[n, c, t.y, t.x] += t.weight * g
              }
            }
          }
        }
      }
    }
  }
  return gradInput
}

// MARK: - Validity

/// The output positions whose source A·p lies inside the image, i.e. within [-1, 1]² in normalised
/// coordinates (equivalently within [0, W - 1] x [0, H - 1] in pixels, tested on the same pixel map
/// the warp uses, so a valid position never reads zero padding).
///
/// Returns H·W flags, index `y·W + x`.
public func validityMask(affine: Affine2D, height: Int, width: Int) -> [Bool] {
  let map = PixelAffine(affine, height: height, width: width)
  var valid = [Bool](repeating: false, count: height * width)
  for y in 0..<height {
    for x in 0..<width {
      let p = map.source(x: x, y: y)
      valid[y * width + x] =
        p.x >= 0 && p.x <= Double(width - 1) && p.y >= 0 && p.y <= Double(height - 1)
    }
  }
  return valid
}

/// `validityMask(affine:height:width:)` for each sample of a batch, concatenated: N·H·W flags, index
/// `n·H·W + y·W + x`, the flat pixel positions `samplePixelPositions` draws from.
public func validityMask(affines: [Affine2D], height: Int, width: Int) -> [Bool] {
  var valid = [Bool]()
  valid.reserveCapacity(affines.count * height * width)
  for affine in affines {
    valid += validityMask(affine: affine, height: height, width: width)
  }
  return valid
}
