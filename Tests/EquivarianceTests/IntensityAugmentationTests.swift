import Foundation
import Reference
import TestExpectations
import Testing
import TestSupport

/// The intensity transforms are invariances: each is the identity at its neutral parameter, and none
/// moves structure (they commute with flips and 90-degree rotations, and keep a slice's labels).
@Suite struct IntensityAugmentationTests {
  static let shape = Shape(2, 1, 5, 7)

  // MARK: - Neutral parameters

  @Test("noise with sigma 0 is the identity")
  func noiseSigmaZero() {
    let image = randomTensor(Self.shape, seed: 21)
    let field = gaussianNoiseField(shape: Self.shape, seed: 22)
    expectExact("noise sigma 0", addGaussianNoise(image, field: field, sigma: 0), image)
  }

  @Test("blur with sigma 0 on both axes is the identity")
  func blurSigmaZero() {
    let image = randomTensor(Self.shape, seed: 23)
    expectExact("blur sigma 0", gaussianBlur(image, sigmaX: 0, sigmaY: 0), image)
  }

  @Test("gamma with log-gamma 0 is the identity")
  func gammaLogZero() {
    let image = randomTensor(Self.shape, seed: 24)
    expectExact("gamma b = 0", applyGamma(image, logGamma: 0), image)
  }

  @Test("a bias field with zero coefficients is the identity")
  func biasFieldZero() {
    let image = randomTensor(Self.shape, seed: 25)
    let zeros = [Double](repeating: 0, count: biasFieldTermCount)
    expectExact("bias field 0", multiplyBiasField(image, coefficients: zeros), image)
  }

  @Test("the identity parameter set applies nothing")
  func identityParameters() {
    let image = randomTensor(Self.shape, seed: 26)
    expectExact("augment identity", augmentIntensity(image, parameters: .identity), image)
  }

  @Test("inversion twice is the identity: exactly on a grid of k/256, within rounding elsewhere")
  func inversionTwice() {
    // 1 - x is exact when x is a multiple of 2^-8 in [0, 1] (Sterbenz), so 1 - (1 - x) = x exactly;
    // for arbitrary x the first subtraction rounds.
    var rng = SplitMix64(seed: 27)
    let grid = Tensor(shape: Self.shape, data: (0..<Self.shape.count).map { _ in Double(rng.int(below: 257)) / 256 })
    expectExact("inversion twice on k/256", invertIntensity(invertIntensity(grid)), grid)
    let image = randomTensor(Self.shape, seed: 28)
    expectClose("inversion twice", invertIntensity(invertIntensity(image)).data, image.data, tolerance: .doubleRounding)
    expectClose("inversion", invertIntensity(image).data, image.data.map { 1 - $0 }, tolerance: .exact)
  }

  // MARK: - No transform moves structure

  /// An image of the right shape for `permutation` (non-square when it keeps the axes).
  static func image(for permutation: AxisPermutation, seed: UInt64) -> Tensor<Double> {
    randomTensor(permutation.keepsAxes ? Shape(2, 2, 6, 9) : Shape(2, 2, 7, 7), seed: seed)
  }

  @Test("noise, gamma and inversion commute exactly with flips and 90-degree rotations (noise field permuted too)",
    arguments: AxisPermutation.allCases)
  func pointwiseCommute(permutation: AxisPermutation) {
    let image = Self.image(for: permutation, seed: 31)
    let field = gaussianNoiseField(shape: image.shape, seed: 32)
    let moved = permutation.apply(image)
    expectExact("noise after \(permutation)",
      addGaussianNoise(moved, field: permutation.apply(field), sigma: 0.3),
      permutation.apply(addGaussianNoise(image, field: field, sigma: 0.3)))
    expectExact("gamma after \(permutation)",
      applyGamma(moved, logGamma: 0.04), permutation.apply(applyGamma(image, logGamma: 0.04)))
    expectExact("inversion after \(permutation)",
      invertIntensity(moved), permutation.apply(invertIntensity(image)))
  }

  @Test("blur commutes with flips exactly, and with 90-degree rotations (sigmas swapped) within rounding",
    arguments: AxisPermutation.allCases)
  func blurCommutes(permutation: AxisPermutation) {
    // A permutation that swaps the axes swaps which sigma acts along which image axis; the two
    // separable passes then run in the other order, which moves the rounding only.
    let image = Self.image(for: permutation, seed: 33)
    let (sx, sy) = (0.8, 1.3)
    let (px, py) = permutation.keepsAxes ? (sx, sy) : (sy, sx)
    let blurredThenMoved = permutation.apply(gaussianBlur(image, sigmaX: sx, sigmaY: sy))
    let movedThenBlurred = gaussianBlur(permutation.apply(image), sigmaX: px, sigmaY: py)
    let tolerance: Tolerance = permutation.keepsAxes ? .exact : .doubleRounding
    expectClose("blur after \(permutation)", movedThenBlurred.data, blurredThenMoved.data, tolerance: tolerance)
  }

  @Test("a bias field commutes with flips exactly, and with 90-degree rotations within rounding, its polynomial transformed",
    arguments: AxisPermutation.allCases)
  func biasFieldCommutes(permutation: AxisPermutation) {
    // (P image)(p) = image(A·p), so bias(P image; c') = P bias(image; c) needs P_c'(p) = P_c(A·p):
    // the coefficients of the polynomial composed with A. With flips each term keeps its exponents
    // and only its sign, bit for bit; swapping the axes reorders the terms of the sum.
    let image = Self.image(for: permutation, seed: 34)
    var rng = SplitMix64(seed: 35)
    let coefficients = (0..<biasFieldTermCount).map { _ in rng.uniform(-0.9, 0.9) }
    let moved = multiplyBiasField(
      permutation.apply(image), coefficients: composedBiasCoefficients(coefficients, permutation.affine))
    let expected = permutation.apply(multiplyBiasField(image, coefficients: coefficients))
    let tolerance: Tolerance = permutation.keepsAxes ? .exact : .doubleRounding
    expectClose("bias field after \(permutation)", moved.data, expected.data, tolerance: tolerance)
  }

  @Test("the whole augmentation without noise commutes exactly with flips, its bias field mirrored",
    arguments: [AxisPermutation.flipX, .flipY, .rotate180])
  func augmentationCommutesWithFlips(permutation: AxisPermutation) {
    var rng = SplitMix64(seed: 36)
    for draw in 0..<20 {
      var parameters = sampleIntensityParameters(rng: &rng)
      parameters.noise = nil
      let image = randomTensor(Shape(1, 1, 6, 9), seed: 37 + UInt64(draw)).data.map { 0.5 + 0.5 * $0 }
      let slice = Tensor(shape: Shape(1, 1, 6, 9), data: image)
      var movedParameters = parameters
      movedParameters.biasCoefficients = parameters.biasCoefficients.map {
        composedBiasCoefficients($0, permutation.affine)
      }
      expectExact("draw \(draw) after \(permutation)",
        augmentIntensity(permutation.apply(slice), parameters: movedParameters),
        permutation.apply(augmentIntensity(slice, parameters: parameters)))
    }
  }

  @Test("intensity augmentation keeps the label map of a labelled slice: away from edges, background stays background")
  func labelsUnchanged() {
    // The augmentation maps an image to an image and never sees the labels, so a slice's label map
    // is carried over unchanged; this checks that the image does not move under it. A two-label disk
    // (intensities 0, 0.5 and 1, off-centre on a non-square grid) is augmented with every sampled
    // parameter set, noise removed: without noise, a pixel whose blur neighbourhood holds only
    // background (intensity 0) must stay exactly at the background value (0, or 1 when inverted),
    // and a pixel whose neighbourhood holds only foreground must differ from it. The Dataset
    // phantom was not available when this was written; the disk stands in for it.
    let h = 20, w = 27
    var labels = [UInt8](repeating: 0, count: h * w)
    var image = Tensor<Double>(zeros: Shape(1, 1, h, w))
    for y in 0..<h {
      for x in 0..<w {
        let r = ((Double(x) - 16.5) * (Double(x) - 16.5) + (Double(y) - 8.0) * (Double(y) - 8.0)).squareRoot()
        labels[y * w + x] = r < 4 ? 2 : r < 7 ? 1 : 0
        image[0, 0, y, x] = [0, 0.5, 1][Int(labels[y * w + x])]
      }
    }
    let originalLabels = labels
    var rng = SplitMix64(seed: 38)
    var foregroundChecked = 0
    for draw in 0..<200 {
      var parameters = sampleIntensityParameters(rng: &rng)
      parameters.noise = nil
      let augmented = augmentIntensity(image, parameters: parameters)
      #expect(augmented.shape == image.shape)
      let background = parameters.invert ? 1.0 : 0.0
      // Blur reach: floor(4 sigma + 0.5) pixels per axis.
      let reachX = parameters.blur.map { Int(4 * $0.sigmaX + 0.5) } ?? 0
      let reachY = parameters.blur.map { Int(4 * $0.sigmaY + 0.5) } ?? 0
      for y in 0..<h {
        for x in 0..<w {
          var neighbourhood = Set<UInt8>()
          for dy in -reachY...reachY {
            for dx in -reachX...reachX where (0..<h).contains(y + dy) && (0..<w).contains(x + dx) {
              neighbourhood.insert(labels[(y + dy) * w + x + dx] == 0 ? 0 : 1)
            }
          }
          let value = augmented[0, 0, y, x]
          if neighbourhood == [0] {
            #expect(value == background, "draw \(draw) background pixel (\(x), \(y)): \(value)")
          } else if neighbourhood == [1] {
            foregroundChecked += 1
            #expect(value != background, "draw \(draw) labelled pixel (\(x), \(y)) became background")
          }
        }
      }
    }
    #expect(labels == originalLabels)
    #expect(foregroundChecked > 200 * 100)
  }
}

/// The coefficients of p -> P_c(A·p) for a signed axis permutation A (entries 0 and ±1, no
/// translation), in the order of `biasFieldExponents`.
func composedBiasCoefficients(_ coefficients: [Double], _ affine: Affine2D) -> [Double] {
  let exponents = biasFieldExponents()
  var result = [Double](repeating: 0, count: coefficients.count)
  for (t, e) in exponents.enumerated() {
    // (A·p)_x^i (A·p)_y^j with (A·p)_x = a x + b y and (A·p)_y = c x + d y, one of each pair zero.
    let swaps = affine.a == 0
    let signX = swaps ? affine.b : affine.a, signY = swaps ? affine.c : affine.d
    let sign = pow(signX, Double(e.x)) * pow(signY, Double(e.y))
    let target = swaps ? (x: e.y, y: e.x) : e
    let index = exponents.firstIndex { $0.x == target.x && $0.y == target.y }!
    result[index] = sign * coefficients[t]
  }
  return result
}
