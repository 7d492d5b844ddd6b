import Foundation
import Reference
import TestExpectations
import Testing
import TestSupport

/// The spatial warp phi: bilinear, `align_corners = true`, zero padding, output p reading A·p.
@Suite struct WarpTests {
  @Test("warp with the identity affine returns the input exactly", arguments: [
    Shape(1, 1, 1, 1), Shape(2, 3, 5, 7), Shape(1, 2, 8, 1), Shape(1, 1, 1, 6),
  ])
  func identityIsExact(shape: Shape) {
    let input = randomTensor(shape, seed: 11)
    let output = warpForward(input: input, affines: Array(repeating: .identity, count: shape.n))
    expectExact("identity warp \(shape)", output, input)
  }

  @Test("warp by a flip or a rotation by a multiple of 90 degrees is the exact index permutation",
    arguments: AxisPermutation.allCases)
  func axisPermutationsAreExact(permutation: AxisPermutation) {
    // Non-square images where the permutation keeps the axes; odd and even square sizes otherwise.
    let shapes = permutation.keepsAxes
      ? [Shape(2, 3, 5, 7), Shape(1, 1, 4, 6)] : [Shape(2, 3, 5, 5), Shape(1, 2, 6, 6)]
    for shape in shapes {
      let input = randomTensor(shape, seed: 12)
      let output = warpForward(input: input, affines: Array(repeating: permutation.affine, count: shape.n))
      expectExact("warp by \(permutation) \(shape)", output, permutation.apply(input))
    }
  }

  @Test("rotating by 90 degrees through the warp four times is the identity")
  func fourQuarterTurns() {
    let input = randomTensor(Shape(1, 2, 7, 7), seed: 13)
    var output = input
    for _ in 0..<4 { output = warpForward(input: output, affines: [AxisPermutation.rotate90.affine]) }
    expectExact("rot90⁴", output, input)
  }

  @Test("warping a coordinate image by A gives A·p at every valid p, and 0 where A·p is a pixel outside")
  func coordinateImage() {
    let h = 9, w = 13
    var coordinates = Tensor<Double>(zeros: Shape(1, 2, h, w))
    for y in 0..<h {
      for x in 0..<w {
        coordinates[0, 0, y, x] = normalised(x, size: w)
        coordinates[0, 1, y, x] = normalised(y, size: h)
      }
    }
    var rng = SplitMix64(seed: 14)
    var affines = [Affine2D.identity, Affine2D(a: 0.7, b: 0.2, tx: 0.1, c: -0.3, d: 1.1, ty: -0.2)]
    for _ in 0..<8 { affines.append(sampleSpatialTransform(rng: &rng).affine) }
    for (k, affine) in affines.enumerated() {
      let output = warpForward(input: coordinates, affines: [affine])
      let valid = validityMask(affine: affine, height: h, width: w)
      var validCount = 0
      for y in 0..<h {
        for x in 0..<w {
          let p = affine.apply(normalised(x, size: w), normalised(y, size: h))
          let inside = abs(p.x) <= 1 && abs(p.y) <= 1
          // The mask is A·p in [-1, 1]², except for rounding at the border itself.
          if max(abs(p.x), abs(p.y)) < 1 - 1e-9 || max(abs(p.x), abs(p.y)) > 1 + 1e-9 {
            #expect(valid[y * w + x] == inside, "affine \(k) pixel (\(x), \(y)): mask \(valid[y * w + x]), A·p \(p)")
          }
          let src = sourcePixel(affine, x: x, y: y, height: h, width: w)
          if valid[y * w + x] {
            validCount += 1
            expectClose(
              "affine \(k) pixel (\(x), \(y))", [output[0, 0, y, x], output[0, 1, y, x]], [p.x, p.y],
              tolerance: .doubleRounding)
          } else if src.x < -1 - 1e-9 || src.x > Double(w) + 1e-9 || src.y < -1 - 1e-9 || src.y > Double(h) + 1e-9 {
            // No bilinear corner of a source more than a pixel outside (beyond rounding) is inside.
            expectClose("affine \(k) padding (\(x), \(y))", [output[0, 0, y, x], output[0, 1, y, x]], [0.0, 0.0],
              tolerance: .exact)
          }
        }
      }
      #expect(validCount > 0, "affine \(k): no valid pixel")
    }
  }

  @Test("warp(A) then warp(B) equals warp(A·B) on smooth images at interior pixels, within 3|w|²/8")
  func composition() throws {
    // Bilinear interpolation of f on a unit grid errs by at most (max|f_xx| + max|f_yy|) / 8. For a
    // plane wave of frequency |w| and contractive A, B (rotation, zoom s <= 1, flip), warp(A)·warp(B)
    // and warp(A·B) each stay within |w|²/8 per interpolation of v(A·B·p): three in all.
    let frequency = 2 * Double.pi / 32
    let interpolation = Tolerance(
      "bilinear interpolation bound 3|w|²/8", absolute: 3 * frequency * frequency / 8, relative: 0)
    let h = 24, w = 24
    let input = planeWaves(Shape(1, 2, h, w), frequency: frequency, seed: 15)
    var rng = SplitMix64(seed: 16)
    var checked = 0
    for pair in 0..<12 {
      let a = sampleSpatialTransform(rng: &rng).affine, b = sampleSpatialTransform(rng: &rng).affine
      let twice = warpForward(input: warpForward(input: input, affines: [a]), affines: [b])
      let once = warpForward(input: input, affines: [a.composed(with: b)])
      let validA = validityMask(affine: a, height: h, width: w)
      let validB = validityMask(affine: b, height: h, width: w)
      for y in 0..<h {
        for x in 0..<w where validB[y * w + x] {
          // Interior: every grid corner around B·p must read A-valid pixels.
          let q = sourcePixel(b, x: x, y: y, height: h, width: w)
          let corners = [(q.x.rounded(.down), q.y.rounded(.down)), (q.x.rounded(.up), q.y.rounded(.up)),
                         (q.x.rounded(.down), q.y.rounded(.up)), (q.x.rounded(.up), q.y.rounded(.down))]
          let interior = corners.allSatisfy { cx, cy in
            cx >= 0 && cy >= 0 && cx < Double(w) && cy < Double(h) && validA[Int(cy) * w + Int(cx)]
          }
          guard interior else { continue }
          checked += 1
          expectClose("pair \(pair) pixel (\(x), \(y))", [twice[0, 0, y, x], twice[0, 1, y, x]],
            [once[0, 0, y, x], once[0, 1, y, x]], tolerance: interpolation)
        }
      }
    }
    #expect(checked > 12 * h * w / 10, "only \(checked) interior pixels checked")
  }

  @Test("the validity mask of the identity, flips and 90-degree rotations is everywhere true",
    arguments: AxisPermutation.allCases)
  func permutationsAreValidEverywhere(permutation: AxisPermutation) {
    let mask = validityMask(affine: permutation.affine, height: 6, width: 6)
    #expect(mask.allSatisfy { $0 })
    let batch = validityMask(affines: [permutation.affine, Affine2D(a: 2, b: 0, tx: 0, c: 0, d: 2, ty: 0)],
      height: 6, width: 6)
    #expect(batch.count == 72)
    #expect(Array(batch[0..<36]) == mask)
    // A zoom out by 2 reads inside only for the middle half of each axis: x, y in 2 ... 3.
    #expect(batch[36...].filter { $0 }.count == 4)
  }
}
