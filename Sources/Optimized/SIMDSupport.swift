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

/// A new array of `count` Floats, every element written by `body` (which receives its storage).
@inline(__always)
func makeArray(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
  [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
    if count > 0 { body(buffer.baseAddress!) }
    initialized = count
  }
}
