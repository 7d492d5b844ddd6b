import Foundation

// MARK: - The spatial transform phi (docs/PROTOCOL.md section 3)

/// Which axis F mirrors.
public enum Flip: String, Hashable, Sendable, Codable, CaseIterable {
  case none, x, y
}

/// The drawn parameters of one phi, and the affine `A = R · C · F` they define (apply F first, then
/// C, then R), in normalised coordinates [-1, 1] (see `Affine2D`):
/// - F mirrors the x axis (`x -> -x`), the y axis, or neither;
/// - C is the zoom `(x, y) -> (s·x + t_x, s·y + t_y)`: output [-1, 1]² reads the square of side s
///   (in units of the half-image) centred at (t_x, t_y), inside the image when |t| <= 1 - s;
/// - R is the rotation `(x, y) -> (cos θ·x - sin θ·y, sin θ·x + cos θ·y)` about the image centre,
///   which can carry part of that square outside the image (see `validityMask`).
public struct SpatialTransformParameters: Hashable, Sendable, Codable {
  public var theta: Double
  public var scale: Double
  public var offsetX: Double
  public var offsetY: Double
  public var flip: Flip

  public init(theta: Double, scale: Double, offsetX: Double, offsetY: Double, flip: Flip) {
    self.theta = theta
    self.scale = scale
    self.offsetX = offsetX
    self.offsetY = offsetY
    self.flip = flip
  }

  /// A = R · C · F.
  public var affine: Affine2D {
    Affine2D.rotation(theta)
      .composed(with: Affine2D.zoom(scale: scale, offsetX: offsetX, offsetY: offsetY))
      .composed(with: Affine2D.flip(flip))
  }
}

/// docs/PROTOCOL.md section 3's ranges and probabilities for phi (code).
public enum SpatialTransformDistribution {
  /// theta ~ U(-maxAngle, maxAngle).
  public static let maxAngle = Double.pi / 2
  /// s ~ U(minScale, maxScale); then t_x, t_y ~ U(-(1 - s), 1 - s).
  public static let minScale = 0.33
  public static let maxScale = 0.95
  /// P(F mirrors x) and P(F mirrors y); neither with the rest, 0.23.
  public static let flipXProbability = 0.45
  public static let flipYProbability = 0.32
}

/// Draws one phi per docs/PROTOCOL.md section 3, consuming exactly five uniforms from `rng`, in
/// this order: theta, s, t_x, t_y, then one uniform u choosing the flip (x when u < 0.45, y when
/// u < 0.77, otherwise none).
public func sampleSpatialTransform(rng: inout SplitMix64) -> SpatialTransformParameters {
  let p = SpatialTransformDistribution.self
  let theta = rng.uniform(-p.maxAngle, p.maxAngle)
  let scale = rng.uniform(p.minScale, p.maxScale)
  let offsetX = rng.uniform(-(1 - scale), 1 - scale)
  let offsetY = rng.uniform(-(1 - scale), 1 - scale)
  let u = rng.uniform()
  let flip: Flip =
    u < p.flipXProbability ? .x : u < p.flipXProbability + p.flipYProbability ? .y : .none
  return SpatialTransformParameters(theta: theta, scale: scale, offsetX: offsetX, offsetY: offsetY, flip: flip)
}

// MARK: - The factors of A

extension Affine2D {
  /// R: rotation by `theta` radians, `(x, y) -> (cos θ·x - sin θ·y, sin θ·x + cos θ·y)`.
  public static func rotation(_ theta: Double) -> Affine2D {
    Affine2D(a: cos(theta), b: -sin(theta), tx: 0, c: sin(theta), d: cos(theta), ty: 0)
  }

  /// C: `(x, y) -> (s·x + t_x, s·y + t_y)`.
  public static func zoom(scale: Double, offsetX: Double, offsetY: Double) -> Affine2D {
    Affine2D(a: scale, b: 0, tx: offsetX, c: 0, d: scale, ty: offsetY)
  }

  /// F: `x -> -x` for `.x`, `y -> -y` for `.y`, the identity for `.none`.
  public static func flip(_ flip: Flip) -> Affine2D {
    Affine2D(a: flip == .x ? -1 : 1, b: 0, tx: 0, c: 0, d: flip == .y ? -1 : 1, ty: 0)
  }
}
