// MARK: - The register tile shared by the convolution and GEMM kernels

/// Twelve 8-lane accumulators: 4 rows (output channels) by 3 vectors (24 pixels, or 3 taps).
///
/// With AVX2 this is 12 of the 16 ymm registers; the other 4 hold the three shared operands and a
/// broadcast (the 3x3 convolution's loop keeps one accumulator on the stack; on L1-resident data
/// the tile still runs at about 95% of the FMA peak).
struct Tile4x3 {
  var a00 = Vec8(), a01 = Vec8(), a02 = Vec8()
  var a10 = Vec8(), a11 = Vec8(), a12 = Vec8()
  var a20 = Vec8(), a21 = Vec8(), a22 = Vec8()
  var a30 = Vec8(), a31 = Vec8(), a32 = Vec8()

  @inline(__always) init() {}

  /// a[m][j] += w[m] · b_j: four broadcast scalars times three vectors (an outer-product step).
  @inline(__always)
  mutating func broadcastStep(_ w: UnsafePointer<Float>, _ b0: Vec8, _ b1: Vec8, _ b2: Vec8) {
    var s = Vec8(repeating: w[0])
    a00.addProduct(s, b0); a01.addProduct(s, b1); a02.addProduct(s, b2)
    s = Vec8(repeating: w[1])
    a10.addProduct(s, b0); a11.addProduct(s, b1); a12.addProduct(s, b2)
    s = Vec8(repeating: w[2])
    a20.addProduct(s, b0); a21.addProduct(s, b1); a22.addProduct(s, b2)
    s = Vec8(repeating: w[3])
    a30.addProduct(s, b0); a31.addProduct(s, b1); a32.addProduct(s, b2)
  }

  /// Accumulator (m, j).
  @inline(__always)
  func get(_ m: Int, _ j: Int) -> Vec8 {
    switch (m, j) {
    case (0, 0): a00
    case (0, 1): a01
    case (0, 2): a02
    case (1, 0): a10
    case (1, 1): a11
    case (1, 2): a12
    case (2, 0): a20
    case (2, 1): a21
    case (2, 2): a22
    case (3, 0): a30
    case (3, 1): a31
    default: a32
    }
  }
}

/// Nine 8-lane accumulators for lane-parallel dot products: 3 rows (e.g. output channels) by 3
/// columns (taps or input channels). A step loads 3 + 3 vectors for 9 FMAs; with 9 accumulators and
/// the 3 shared column vectors live, the unrolled loop fits in the 16 ymm registers without spills
/// (a 4 x 3 tile spilled).
struct LaneTile3x3 {
  var a00 = Vec8(), a01 = Vec8(), a02 = Vec8()
  var a10 = Vec8(), a11 = Vec8(), a12 = Vec8()
  var a20 = Vec8(), a21 = Vec8(), a22 = Vec8()

  @inline(__always) init() {}

  /// a[m][j] += g_m · x_j lane by lane.
  @inline(__always)
  mutating func step(_ g0: Vec8, _ g1: Vec8, _ g2: Vec8, _ x0: Vec8, _ x1: Vec8, _ x2: Vec8) {
    a00.addProduct(g0, x0); a01.addProduct(g0, x1); a02.addProduct(g0, x2)
    a10.addProduct(g1, x0); a11.addProduct(g1, x1); a12.addProduct(g1, x2)
    a20.addProduct(g2, x0); a21.addProduct(g2, x1); a22.addProduct(g2, x2)
  }

  /// The lane sums of accumulator row m, in column order.
  @inline(__always)
  func sums(_ m: Int) -> (Float, Float, Float) {
    switch m {
    case 0: (laneSum(a00), laneSum(a01), laneSum(a02))
    case 1: (laneSum(a10), laneSum(a11), laneSum(a12))
    default: (laneSum(a20), laneSum(a21), laneSum(a22))
    }
  }
}

/// Runs `steps` lane steps over contiguous vectors: g_m = g_m[8s ..< 8s + 8], x_j = x_j[8s ...].
@inline(__always)
func laneDots(
  _ acc: inout LaneTile3x3, steps: Int,
  _ g0: UnsafePointer<Float>, _ g1: UnsafePointer<Float>, _ g2: UnsafePointer<Float>,
  _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>
) {
  var i = 0
  for _ in 0..<steps {
    acc.step(load8(g0 + i), load8(g1 + i), load8(g2 + i), load8(x0 + i), load8(x1 + i), load8(x2 + i))
    i += 8
  }
}
