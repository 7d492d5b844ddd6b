// MARK: - Pixel positions for the dense losses (docs/PROTOCOL.md section 3)
//
// A flat pixel position over a batch of H x W maps is `n·H·W + y·W + x`. The losses see the
// feature vectors at M such positions as the rows of an (M, C, 1, 1) matrix; the same positions are
// used in both views. These functions only move data, so both backends use them as they are.

/// Draws `count` positions uniformly without replacement among those with `valid[position]` true,
/// from `rng`: a partial Fisher-Yates shuffle of the list of valid positions in ascending order.
///
/// valid: N·H·W flags, e.g. `validityMask(affines:height:width:)`. Returns `min(count, V)` distinct
/// positions, V the number of valid ones: when fewer than `count` are valid, all of them in
/// ascending order (no randomness used); otherwise in the order drawn. Deterministic given `rng`.
@inlinable
public func samplePixelPositions(valid: [Bool], count: Int, rng: inout SplitMix64) -> [Int] {
  precondition(count >= 0, "samplePixelPositions: negative count \(count)")
  var candidates = [Int]()
  for position in 0..<valid.count where valid[position] {
    candidates.append(position)
  }
  if candidates.count <= count { return candidates }
  for i in 0..<count {
    let j = i + rng.int(below: candidates.count - i)
    candidates.swapAt(i, j)
  }
  return Array(candidates[0..<count])
}

/// The feature vectors at `positions`, as rows: `rows[m, c] = tensor[n, c, y, x]` where
/// `positions[m] = n·H·W + y·W + x`.
///
/// tensor: (N, C, H, W); positions: M flat positions in 0 ..< N·H·W. Returns (M, C, 1, 1).
@inlinable
public func gatherPixels<Scalar>(tensor: Tensor<Scalar>, positions: [Int]) -> Tensor<Scalar> {
  let s = tensor.shape
  var rows = Tensor<Scalar>(zeros: Shape(positions.count, s.c, 1, 1))
  for m in 0..<positions.count {
    let p = positions[m]
    precondition(p >= 0 && p < s.n * s.plane, "gatherPixels: position \(p) outside \(s)")
    let n = p / s.plane, y = (p % s.plane) / s.w, x = p % s.w
    for c in 0..<s.c {
      rows[m, c, 0, 0] = tensor[n, c, y, x]
    }
  }
  return rows
}

/// The adjoint of `gatherPixels`: a tensor of `shape`, zero except at `positions`, where row m is
/// added back (`out[n, c, y, x] += rows[m, c]`).
///
/// rows: (M, C, 1, 1); positions: M flat positions; shape: (N, C, H, W). Returns a tensor of
/// `shape`, so `<gatherPixels(t, p), r> = <t, scatterPixels(r, p, t.shape)>`.
@inlinable
public func scatterPixels<Scalar>(rows: Tensor<Scalar>, positions: [Int], shape: Shape) -> Tensor<Scalar> {
  rows.checkShape(Shape(positions.count, shape.c, 1, 1), "scatterPixels rows")
  var output = Tensor<Scalar>(zeros: shape)
  for m in 0..<positions.count {
    let p = positions[m]
    precondition(p >= 0 && p < shape.n * shape.plane, "scatterPixels: position \(p) outside \(shape)")
    let n = p / shape.plane, y = (p % shape.plane) / shape.w, x = p % shape.w
    for c in 0..<shape.c {
      output[n, c, y, x] += rows[m, c, 0, 0]
    }
  }
  return output
}

/// Rows (M, C, 1, 1) as one image of M pixels, (1, C, 1, M): `out[0, c, 0, m] = rows[m, c]`.
@inlinable
public func rowsAsPixels<Scalar>(_ rows: Tensor<Scalar>) -> Tensor<Scalar> {
  let m = rows.shape.n, c = rows.shape.c
  rows.checkShape(Shape(m, c, 1, 1), "rowsAsPixels")
  var out = Tensor<Scalar>(zeros: Shape(1, c, 1, m))
  for i in 0..<m {
    for k in 0..<c { out.data[k * m + i] = rows.data[i * c + k] }
  }
  return out
}

/// The inverse of `rowsAsPixels`: (1, C, 1, M) -> (M, C, 1, 1).
@inlinable
public func pixelsAsRows<Scalar>(_ pixels: Tensor<Scalar>) -> Tensor<Scalar> {
  let m = pixels.shape.w, c = pixels.shape.c
  pixels.checkShape(Shape(1, c, 1, m), "pixelsAsRows")
  var out = Tensor<Scalar>(zeros: Shape(m, c, 1, 1))
  for i in 0..<m {
    for k in 0..<c { out.data[i * c + k] = pixels.data[k * m + i] }
  }
  return out
}
