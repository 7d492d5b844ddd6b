import Reference
import TestSupport

// The nearest-neighbour search of in-context segmentation, listed in `kernelCatalog`: the
// blocked-GEMM search against the brute-force reference, ties included (the labelling rule's
// identities are tests in RegressionTests/NearestNeighbourIdentityTests.swift).

/// `n` queries and `other` support rows of dimension `c`. Variant 0: L2-normalised Gaussian support
/// rows, each query a normalised noisy copy of a random support row, so the nearest row is clear by
/// far more than Float rounding (at c = 1 every row is +-1: ties everywhere). Variant 1: multiples of
/// 0.5 drawn from 3 distinct rows, so many support rows are equal and their dot products tie
/// exactly in any precision: the lowest index must win in both. Query counts around the 192-query
/// items (1, 7, 191, 192, 193, 400), support counts around the 4-row packing and the 256-row blocks
/// (1, 3, 5, 255, 256, 257, 600), dimensions 1, 3, 8, 16, 17, 33.
package struct NearestNeighbourKernel: CatalogKernel {
  package let name = "nearestNeighbours"
  /// Indices are integers: any different row differs by at least 1.
  package let tolerance = Tolerance.float32Kernel
  package let cases = [
    KernelShape(1, 3, 1, 1, other: 1), KernelShape(7, 1, 1, 1, other: 5), KernelShape(9, 3, 1, 1, other: 3),
    KernelShape(191, 16, 1, 1, other: 255), KernelShape(192, 17, 1, 1, other: 256), KernelShape(193, 33, 1, 1, other: 257),
    KernelShape(400, 16, 1, 1, other: 600), KernelShape(200, 8, 1, 1, other: 300, variant: 1),
    KernelShape(13, 17, 1, 1, other: 9, variant: 1),
  ]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    var support: [Double] = [], queries: [Double] = []
    if s.variant == 1 {
      let pool = (0..<3).map { _ in inputs.quantized(s.c) }
      for _ in 0..<s.other { support += pool[inputs.int(below: 3)] }
      queries = inputs.quantized(s.n * s.c)
    } else {
      let rows = (0..<s.other).map { _ in normalized(inputs.normal(s.c)) }
      support = rows.flatMap { $0 }
      for _ in 0..<s.n {
        let source = rows[inputs.int(below: s.other)]
        queries += normalized(zip(source, inputs.normal(s.c, scale: 0.1)).map { $0 + $1 })
      }
    }
    let q = tensor(Shape(s.n, s.c, 1, 1), queries, for: b), rows = tensor(Shape(s.other, s.c, 1, 1), support, for: b)
    return PreparedKernel(forward: {
      let result = b.nearestNeighbours(queries: q, support: rows)
      return [KernelOutput("index", result.index.map(Double.init)), KernelOutput("similarity", result.similarity)]
    })
  }

  /// The row divided by its norm, rounded through Float (both backends see the same values).
  package func normalized(_ row: [Double]) -> [Double] {
    let norm = max(row.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
    return row.map { Double(Float($0 / norm)) }
  }
}
