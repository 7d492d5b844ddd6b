import Reference
import TestSupport

// MARK: - Losses

/// Rows (M, d) = (n, c); variant 1 zeroes row 0 (the eps branch).
package struct L2NormalizeKernel: CatalogKernel {
  package let name = "l2Normalize"
  package let tolerance = Tolerance.float32Kernel
  package let cases = [
    KernelShape(1, 1, 1, 1), KernelShape(3, 3, 1, 1), KernelShape(7, 7, 1, 1, variant: 1), KernelShape(9, 8, 1, 1),
    KernelShape(65, 9, 1, 1), KernelShape(15, 15, 1, 1), KernelShape(17, 16, 1, 1, variant: 1),
    KernelShape(33, 17, 1, 1), KernelShape(130, 33, 1, 1), KernelShape(5, 256, 1, 1),
  ]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    var values = inputs.normal(s.shape.count)
    if s.variant == 1 { for c in 0..<s.c { values[c] = 0 } }
    let x = tensor(s.shape, values, for: b)
    let dy = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    return PreparedKernel(
      forward: { [KernelOutput("forward", b.l2NormalizeForward(input: x))] },
      backward: { [KernelOutput("gradInput", b.l2NormalizeBackward(input: x, gradOutput: dy))] })
  }

  /// Per value: a square into the norm, a division, and about one more for the backward.
  package func flops(_ s: KernelShape, _ pass: KernelPass) -> Double { 3 * Double(s.shape.count) }
}

/// L2-normalised rows (rounded to Float after normalising): `rows` rows of dimension `columns`.
package func normalizedRows(_ inputs: inout SeededInputs, rows: Int, columns: Int) -> [Double] {
  var values = [Double]()
  for _ in 0..<rows {
    let row = (0..<columns).map { _ in inputs.rng.normal() }
    let norm = max(row.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
    values += row.map { Double(Float($0 / norm)) }
  }
  return values
}

/// `n` pairs of unit rows of dimension `c`; one call is the loss with both gradients.
package struct InfoNCEKernel: CatalogKernel {
  package let name = "infoNCE"
  package let tolerance = Tolerance.float32Kernel
  package let cases = [
    KernelShape(1, 3, 1, 1), KernelShape(3, 8, 1, 1), KernelShape(7, 17, 1, 1), KernelShape(33, 9, 1, 1),
    KernelShape(65, 16, 1, 1),
  ]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let z = tensor(s.shape, normalizedRows(&inputs, rows: s.n, columns: s.c), for: b)
    let zPrime = tensor(s.shape, normalizedRows(&inputs, rows: s.n, columns: s.c), for: b)
    return PreparedKernel(forward: {
      let r = b.infoNCE(z: z, zPrime: zPrime, temperature: InfoNCEConstants.temperature)
      return [KernelOutput("loss", [r.loss]), KernelOutput("gradZ", r.gradZ), KernelOutput("gradZPrime", r.gradZPrime)]
    })
  }

  /// The (2M x 2M x d) similarity product, forward and its two gradient products.
  package func flops(_ s: KernelShape, _ pass: KernelPass) -> Double { 3 * 2 * Double(4 * s.n * s.n * s.c) }
}

/// `n` pairs of rows of dimension `c`, the second the first plus noise; one call is the loss with
/// both gradients.
package struct BarlowTwinsKernel: CatalogKernel {
  package let name = "barlowTwins"
  package let tolerance = Tolerance.float32Kernel
  package let cases = [
    KernelShape(2, 1, 1, 1), KernelShape(3, 3, 1, 1), KernelShape(9, 7, 1, 1), KernelShape(17, 8, 1, 1),
    KernelShape(33, 17, 1, 1), KernelShape(600, 9, 1, 1),
  ]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let base = inputs.normal(s.shape.count)
    let noise = inputs.normal(s.shape.count, scale: 0.5)
    let z = tensor(s.shape, base, for: b)
    let zPrime = tensor(s.shape, zip(base, noise).map { Double(Float($0 + $1)) }, for: b)
    return PreparedKernel(forward: {
      let r = b.barlowTwins(z: z, zPrime: zPrime, lambda: BarlowTwinsConstants.lambda)
      return [KernelOutput("loss", [r.loss]), KernelOutput("gradZ", r.gradZ), KernelOutput("gradZPrime", r.gradZPrime)]
    })
  }

  /// The (d x M x d) cross-correlation, forward and its two gradient products.
  package func flops(_ s: KernelShape, _ pass: KernelPass) -> Double { 3 * 2 * Double(s.n * s.c * s.c) }
}

/// Logits (N, K, H, W) with K = c classes and random labels; one call is the loss with its
/// gradient.
package struct SoftDiceKernel: CatalogKernel {
  package let name = "softDice"
  package let tolerance = Tolerance.float32Kernel
  package let cases = [KernelShape(1, 4, 9, 13), KernelShape(3, 4, 5, 8), KernelShape(3, 1, 4, 4), KernelShape(2, 7, 3, 17)]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let logits = tensor(s.shape, inputs.normal(s.shape.count, scale: 2), for: b)
    let labels = (0..<(s.n * s.h * s.w)).map { _ in UInt8(inputs.int(below: s.c)) }
    return PreparedKernel(forward: {
      let r = b.softDiceLoss(logits: logits, labels: labels)
      return [KernelOutput("loss", [r.loss]), KernelOutput("gradLogits", r.gradLogits)]
    })
  }
}

// MARK: - Optimiser

/// A flat buffer of n·c·w + 2h entries; the range leaves `h` entries untouched at each end; `other`
/// is the step. One call updates copies of the values and both moments.
package struct AdamKernel: CatalogKernel {
  package let name = "adam"
  package let tolerance = Tolerance.float32Kernel
  package let cases = [KernelShape(1, 1, 0, 9, other: 1), KernelShape(3, 7, 2, 13, other: 7), KernelShape(1, 33, 5, 17, other: 2)]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let count = s.n * s.c * s.w + 2 * s.h
    let values = scalars(inputs.normal(count), for: b)
    let gradients = scalars(inputs.normal(count, scale: 0.1), for: b)
    let first = scalars(inputs.normal(count, scale: 0.01), for: b)
    let second = scalars(inputs.uniform(count, 0, 0.01), for: b)
    return PreparedKernel(forward: {
      var v = values, m = first, v2 = second
      b.adamUpdate(
        values: &v, gradients: gradients, firstMoment: &m, secondMoment: &v2, range: s.h..<(count - s.h),
        learningRate: 1e-3, hyper: AdamHyperparameters(), step: s.other)
      return [KernelOutput("values", v), KernelOutput("first moment", m), KernelOutput("second moment", v2)]
    })
  }

  /// About 12 operations per updated value (two moments, bias corrections, square root, division).
  package func flops(_ s: KernelShape, _ pass: KernelPass) -> Double { 12 * Double(s.n * s.c * s.w) }
}
