import Foundation
import Reference
import Testing
import TestExpectations
import TestSupport

// MARK: - Build

/// False in a debug build, where the statistics at docs/PROTOCOL.md's M = 1000 take minutes; those
/// tests run in release builds (`swift test -c release`, as test.sh does).
#if DEBUG
let optimizedBuild = false
#else
let optimizedBuild = true
#endif

// MARK: - Assertions

/// Expects `actual` equal to `expected` element for element (shape first).
func expectExact(
  _ label: String, _ actual: Tensor<Double>, _ expected: Tensor<Double>,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(actual.shape == expected.shape, "\(label): shape", sourceLocation: sourceLocation)
  expectClose(label, actual.data, expected.data, tolerance: .exact, sourceLocation: sourceLocation)
}

/// Expects a frequency `hits / total` within 4 standard errors of the probability p.
func expectRate(
  _ label: String, hits: Int, total: Int, probability p: Double,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  let rate = Double(hits) / Double(total)
  let standardError = (p * (1 - p) / Double(total)).squareRoot()
  #expect(
    abs(rate - p) <= 4 * standardError,
    "\(label): rate \(rate), expected \(p) ± 4 SE (\(4 * standardError))", sourceLocation: sourceLocation)
}

/// Expects every value of `values`, all drawn from U(low, high), inside [low, high), and their mean
/// and (biased) variance within 4 standard errors of the uniform's, (low + high) / 2 and
/// (high - low)² / 12; the variance's standard error is sqrt((mu4 - sigma⁴) / n) =
/// (high - low)² / sqrt(180 n).
func expectUniform(
  _ label: String, _ values: [Double], low: Double, high: Double,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  let outside = values.filter { !($0 >= low && $0 < high) }
  #expect(outside.isEmpty, "\(label): \(outside.count) values outside [\(low), \(high)), e.g. \(outside.first ?? 0)",
    sourceLocation: sourceLocation)
  let mean = values.reduce(0, +) / Double(values.count)
  let standardError = (high - low) / (12 * Double(values.count)).squareRoot()
  #expect(
    abs(mean - (low + high) / 2) <= 4 * standardError,
    "\(label): mean \(mean), expected \((low + high) / 2) ± 4 SE (\(4 * standardError))", sourceLocation: sourceLocation)
  let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
  let width2 = (high - low) * (high - low)
  let varianceError = width2 / (180 * Double(values.count)).squareRoot()
  #expect(
    abs(variance - width2 / 12) <= 4 * varianceError,
    "\(label): variance \(variance), expected \(width2 / 12) ± 4 SE (\(4 * varianceError))",
    sourceLocation: sourceLocation)
}

// MARK: - Seeded inputs

/// A tensor of values uniform in [-1, 1), from `seed`.
func randomTensor(_ shape: Shape, seed: UInt64) -> Tensor<Double> {
  var rng = SplitMix64(seed: seed, stream: 0xE0)
  return Tensor(shape: shape, data: (0..<shape.count).map { _ in rng.uniform(-1, 1) })
}

/// M rows of d standard normal values, each divided by its norm: (M, d, 1, 1).
func randomUnitRows(_ m: Int, _ d: Int, seed: UInt64) -> Tensor<Double> {
  var rng = SplitMix64(seed: seed, stream: 0xE1)
  let rows = Tensor(shape: Shape(m, d, 1, 1), data: (0..<(m * d)).map { _ in rng.normal() })
  return l2NormalizeForward(input: rows)
}

/// Every channel a plane wave `cos(wx·x + wy·y + phase)` in pixel units, with |(wx, wy)| = `frequency`
/// and a direction and phase drawn per (sample, channel) from `seed`: smooth, with
/// |f_xx| + |f_yy| <= frequency².
func planeWaves(_ shape: Shape, frequency: Double, seed: UInt64) -> Tensor<Double> {
  var rng = SplitMix64(seed: seed, stream: 0xE2)
  var t = Tensor<Double>(zeros: shape)
  for n in 0..<shape.n {
    for c in 0..<shape.c {
      let direction = rng.uniform(0, 2 * Double.pi), phase = rng.uniform(0, 2 * Double.pi)
      let wx = frequency * cos(direction), wy = frequency * sin(direction)
      for y in 0..<shape.h {
        for x in 0..<shape.w { t[n, c, y, x] = cos(wx * Double(x) + wy * Double(y) + phase) }
      }
    }
  }
  return t
}

// MARK: - Coordinates, independent of the warp's pixel arithmetic

/// The normalised coordinate of pixel i of an axis of `size` > 1, `align_corners = true`.
func normalised(_ i: Int, size: Int) -> Double { -1 + 2 * Double(i) / Double(size - 1) }

/// The fractional source pixel of output pixel (x, y) under `affine`, computed through normalised
/// coordinates.
func sourcePixel(_ affine: Affine2D, x: Int, y: Int, height: Int, width: Int) -> (x: Double, y: Double) {
  let p = affine.apply(normalised(x, size: width), normalised(y, size: height))
  return ((p.x + 1) / 2 * Double(width - 1), (p.y + 1) / 2 * Double(height - 1))
}

// MARK: - Exact index permutations

/// The signed axis permutations of the square, each with its affine (entries 0 and ±1) and the
/// source (row, column) that output pixel (y, x) reads, written out by hand.
enum AxisPermutation: String, CaseIterable, Sendable, CustomStringConvertible {
  case identity, flipX, flipY, rotate180, rotate90, rotate270, transpose, antiTranspose

  var description: String { rawValue }

  /// True when the permutation keeps the axes (so it applies to non-square images too).
  var keepsAxes: Bool { [.identity, .flipX, .flipY, .rotate180].contains(self) }

  /// A, with output p reading the input at A·p.
  var affine: Affine2D {
    switch self {
    case .identity: return Affine2D(a: 1, b: 0, tx: 0, c: 0, d: 1, ty: 0)
    case .flipX: return Affine2D(a: -1, b: 0, tx: 0, c: 0, d: 1, ty: 0)
    case .flipY: return Affine2D(a: 1, b: 0, tx: 0, c: 0, d: -1, ty: 0)
    case .rotate180: return Affine2D(a: -1, b: 0, tx: 0, c: 0, d: -1, ty: 0)
    case .rotate90: return Affine2D(a: 0, b: -1, tx: 0, c: 1, d: 0, ty: 0)
    case .rotate270: return Affine2D(a: 0, b: 1, tx: 0, c: -1, d: 0, ty: 0)
    case .transpose: return Affine2D(a: 0, b: 1, tx: 0, c: 1, d: 0, ty: 0)
    case .antiTranspose: return Affine2D(a: 0, b: -1, tx: 0, c: -1, d: 0, ty: 0)
    }
  }

  /// The input (row, column) read by output (y, x) of an h x w image (h = w unless `keepsAxes`).
  func source(y: Int, x: Int, h: Int, w: Int) -> (y: Int, x: Int) {
    switch self {
    case .identity: return (y, x)
    case .flipX: return (y, w - 1 - x)
    case .flipY: return (h - 1 - y, x)
    case .rotate180: return (h - 1 - y, w - 1 - x)
    case .rotate90: return (x, w - 1 - y)  // source (x_n, y_n) = (-y_n, x_n)
    case .rotate270: return (h - 1 - x, y)  // source (y_n, -x_n)
    case .transpose: return (x, y)
    case .antiTranspose: return (h - 1 - x, w - 1 - y)  // source (-y_n, -x_n)
    }
  }

  /// The tensor permuted by hand: `out[n, c, y, x] = t[n, c, source(y, x)]`.
  func apply(_ t: Tensor<Double>) -> Tensor<Double> {
    let s = t.shape
    precondition(keepsAxes || s.h == s.w, "\(self) needs a square image")
    var out = Tensor<Double>(zeros: s)
    for n in 0..<s.n {
      for c in 0..<s.c {
        for y in 0..<s.h {
          for x in 0..<s.w {
            let src = source(y: y, x: x, h: s.h, w: s.w)
            out[n, c, y, x] = t[n, c, src.y, src.x]
          }
        }
      }
    }
    return out
  }
}
