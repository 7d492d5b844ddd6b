// MARK: - Vector loads and stores

/// The vector the kernels compute with: 8 Float lanes, one AVX2 register.
typealias Vec8 = SIMD8<Float>

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> Vec8 {
  UnsafeRawPointer(p).loadUnaligned(as: Vec8.self)
}

@inline(__always)
func load8(_ p: UnsafeMutablePointer<Float>) -> Vec8 {
  UnsafeRawPointer(p).loadUnaligned(as: Vec8.self)
}

@inline(__always)
func store8(_ v: Vec8, _ p: UnsafeMutablePointer<Float>) {
  UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec8.self)
}

/// Stores the first `lanes` lanes of `v` (1 ... 8).
@inline(__always)
func store8(_ v: Vec8, _ p: UnsafeMutablePointer<Float>, lanes: Int) {
  if lanes == 8 {
    store8(v, p)
  } else {
    for l in 0..<lanes { p[l] = v[l] }
  }
}

/// Sum of the 8 lanes in a fixed order: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
@inline(__always)
func laneSum(_ v: Vec8) -> Float {
  let h = v.lowHalf + v.highHalf
  let q = h.lowHalf + h.highHalf
  return q[0] + q[1]
}

// MARK: - Scratch memory

/// An uninitialised Float buffer owned by the caller's scope.
@inline(__always)
func withScratch<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
  let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
  defer { p.deallocate() }
  return try body(p)
}

/// An uninitialised Double buffer owned by the caller's scope (partial sums of long reductions).
@inline(__always)
func withDoubleScratch<R>(_ count: Int, _ body: (UnsafeMutablePointer<Double>) throws -> R) rethrows -> R {
  let p = UnsafeMutablePointer<Double>.allocate(capacity: max(count, 1))
  defer { p.deallocate() }
  return try body(p)
}

/// Elements per block of the long plane reductions: each block is summed in 8 Float lanes (32
/// terms per lane), blocks are added in Double, so the error does not grow with the plane size.
let reductionBlock = 256

/// A new array of `count` Floats, every element written by `body` (which receives its storage).
@inline(__always)
func makeArray(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
  [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
    if count > 0 { body(buffer.baseAddress!) }
    initialized = count
  }
}

// MARK: - Vector exponential

/// e^x lane by lane (Cephes' `expf`: x = n·ln 2 + r with |r| <= ln 2 / 2, a degree-7 polynomial
/// for e^r, and 2^n built in the exponent bits). Relative error about 2e-7 over the clamped range
/// [-87.3, 88.7]; below it the result is about 1e-38 instead of a subnormal or 0. Deterministic:
/// the same input bits give the same output bits on every call. Written with compares, selects and
/// the 1.5·2^23 rounding trick only: the generic SIMD float-to-integer conversions and
/// `pointwiseMin/Max` are per-lane library calls.
@inline(__always)
func exp8(_ x: Vec8) -> Vec8 {
  let low = Vec8(repeating: -87.3), high = Vec8(repeating: 88.7)
  var clamped = x.replacing(with: low, where: x .< low)
  clamped.replace(with: high, where: clamped .> high)
  // n = round(x / ln 2), as a float and as an integer, by adding 1.5·2^23.
  let magic = Vec8(repeating: 12_582_912)
  let shifted = clamped * Vec8(repeating: 1.442_695_04) + magic
  let n = shifted - magic
  let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
  var r = clamped - n * Vec8(repeating: 0.693_359_375)
  r -= n * Vec8(repeating: -2.121_944_4e-4)
  var p = Vec8(repeating: 1.987_569_150_0e-4)
  p = p * r + Vec8(repeating: 1.398_199_950_7e-3)
  p = p * r + Vec8(repeating: 8.333_451_907_3e-3)
  p = p * r + Vec8(repeating: 4.166_579_589_4e-2)
  p = p * r + Vec8(repeating: 1.666_666_545_9e-1)
  p = p * r + Vec8(repeating: 5.000_000_120_1e-1)
  p = p * (r * r) + r + Vec8(repeating: 1)
  let exponent = (integer &+ 127) &<< 23
  return p * unsafeBitCast(exponent, to: Vec8.self)
}

/// The larger of a and b lane by lane (b where a < b; NaN in b is not taken).
@inline(__always)
func lanewiseMax(_ a: Vec8, _ b: Vec8) -> Vec8 { a.replacing(with: b, where: a .< b) }

// MARK: - Keeping overlapping loads as loads

/// 1, from a function the optimizer may not look into. Dot products of a run with its shifts by 1
/// and 2 elements (the 3x3 weight gradient) otherwise let LLVM rebuild the shifted vectors from
/// neighbouring loads with permutes and blends, which take the FMA pipes' slots; measured here that
/// made the weight gradient about 1.5x slower than plain unaligned loads.
@inline(never)
@_optimize(none)
func opaqueUnit() -> Int { 1 }
