/// An affine map of normalised image coordinates in [-1, 1] (x right, y down; the corner pixel
/// centres sit at -1 and +1, `align_corners = true`):
/// `(x, y) -> (a·x + b·y + tx, c·x + d·y + ty)`, the 2 x 3 matrix `[[a, b, tx], [c, d, ty]]` of
/// PyTorch's `affine_grid`. A warp by A gives output pixel p the input value at A·p.
public struct Affine2D: Hashable, Sendable, Codable {
  public var a: Double, b: Double, tx: Double
  public var c: Double, d: Double, ty: Double

  public init(a: Double, b: Double, tx: Double, c: Double, d: Double, ty: Double) {
    self.a = a; self.b = b; self.tx = tx
    self.c = c; self.d = d; self.ty = ty
  }

  public static let identity = Affine2D(a: 1, b: 0, tx: 0, c: 0, d: 1, ty: 0)

  /// A·p.
  public func apply(_ x: Double, _ y: Double) -> (x: Double, y: Double) {
    (a * x + b * y + tx, c * x + d * y + ty)
  }

  /// self · other: apply `other` first, then `self`.
  public func composed(with other: Affine2D) -> Affine2D {
    Affine2D(
      a: a * other.a + b * other.c, b: a * other.b + b * other.d, tx: a * other.tx + b * other.ty + tx,
      c: c * other.a + d * other.c, d: c * other.b + d * other.d, ty: c * other.tx + d * other.ty + ty)
  }
}
