import Foundation

// The phantom paints soft-edged shapes back to front. Coordinates are reference pixels (the
// 128-pixel grid of docs/PHANTOM.md; a G-pixel image samples the same plane at 128 / G spacing), x
// to the right, y down.

/// A rotated ellipse; semi-axes `a` along the rotated x axis, `b` along the rotated y axis.
struct Ellipse {
  let cx: Double
  let cy: Double
  let a: Double
  let b: Double
  /// Rotation of the a-axis from +x, radians.
  let angle: Double
  private let c: Double
  private let s: Double

  init(cx: Double, cy: Double, a: Double, b: Double, angle: Double = 0) {
    self.cx = cx
    self.cy = cy
    self.a = a
    self.b = b
    self.angle = angle
    c = cos(angle)
    s = sin(angle)
  }

  /// Approximate signed distance (negative inside): exact for circles, first-order accurate near
  /// the boundary of an ellipse (level-set value over gradient norm). A degenerate ellipse (a or b
  /// below 1e-3) is its centre point.
  func signedDistance(_ x: Double, _ y: Double) -> Double {
    let dx = x - cx, dy = y - cy
    if a < 1e-3 || b < 1e-3 { return (dx * dx + dy * dy).squareRoot() }
    let u = c * dx + s * dy
    let v = -s * dx + c * dy
    let f = ((u / a) * (u / a) + (v / b) * (v / b)).squareRoot()
    if f < 1e-9 { return -min(a, b) }
    let gu = u / (a * a), gv = v / (b * b)
    let gradient = (gu * gu + gv * gv).squareRoot() / f
    return (f - 1) / gradient
  }

  /// Angle of (x, y) seen from the centre, radians in (-pi, pi].
  func polarAngle(_ x: Double, _ y: Double) -> Double { atan2(y - cy, x - cx) }

  /// The ellipse scaled about its centre.
  func scaled(_ k: Double) -> Ellipse { Ellipse(cx: cx, cy: cy, a: a * k, b: b * k, angle: angle) }

  /// The ellipse grown by `d` on both semi-axes.
  func grown(_ d: Double) -> Ellipse { Ellipse(cx: cx, cy: cy, a: max(0, a + d), b: max(0, b + d), angle: angle) }
}

/// A region of the plane with a soft edge.
enum Region {
  /// Inside an ellipse.
  case ellipse(Ellipse)
  /// Inside an ellipse and within `halfWidth` radians of `direction`, seen from its centre.
  case sector(Ellipse, direction: Double, halfWidth: Double)
  /// Inside both ellipses (e.g. the liver, kept inside the thoracic wall).
  case clipped(Ellipse, to: Ellipse)
  /// Within `thickness(angle)` outside the boundary of `inner` (and inside it): an ellipse dilated
  /// by an angle-dependent amount, used for the myocardium around the LV cavity.
  case dilated(Ellipse, thickness: [Double])

  /// Signed distance to the region boundary (negative inside), in reference pixels.
  func signedDistance(_ x: Double, _ y: Double) -> Double {
    switch self {
    case .ellipse(let e):
      return e.signedDistance(x, y)
    case .sector(let e, let direction, let halfWidth):
      let inside = e.signedDistance(x, y)
      let r = ((x - e.cx) * (x - e.cx) + (y - e.cy) * (y - e.cy)).squareRoot()
      let delta = abs(remainder(e.polarAngle(x, y) - direction, 2 * Double.pi))
      let angular = (delta - halfWidth) * max(r, 1)
      return max(inside, angular)
    case .clipped(let e, let clip):
      return max(e.signedDistance(x, y), clip.signedDistance(x, y))
    case .dilated(let e, let thickness):
      let t = Region.interpolate(thickness, angle: e.polarAngle(x, y))
      return e.signedDistance(x, y) - t
    }
  }

  /// A circle (centre x, y, radius) that contains the region: outside it, the signed distance is
  /// at least the distance to the circle.
  var boundingCircle: (x: Double, y: Double, radius: Double) {
    switch self {
    case .ellipse(let e), .sector(let e, _, _), .clipped(let e, _):
      return (e.cx, e.cy, max(e.a, e.b))
    case .dilated(let e, let thickness):
      return (e.cx, e.cy, max(e.a, e.b) + (thickness.max() ?? 0))
    }
  }

  /// Linear interpolation of a periodic table of values over [0, 2 pi).
  static func interpolate(_ table: [Double], angle: Double) -> Double {
    let n = table.count
    var position = angle / (2 * Double.pi) * Double(n)
    position -= (position / Double(n)).rounded(.down) * Double(n)
    let i0 = min(Int(position), n - 1)
    let i1 = (i0 + 1) % n
    let f = position - Double(i0)
    return table[i0] * (1 - f) + table[i1] * f
  }
}

/// One painted structure: a region, its intensity, and the label it writes where it covers at
/// least half a pixel (0 for everything outside the three cardiac classes).
struct Layer {
  var region: Region
  var intensity: Double
  var label: UInt8
}
