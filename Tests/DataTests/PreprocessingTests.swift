import Dataset
import Foundation
import Reference
import Testing
import TestSupport

/// The building blocks of the docs/PROTOCOL.md section 1 preprocessing, on hand-made volumes.
struct PreprocessingTests {
  /// A 3D volume from a closure over (x, y, z).
  static func volume(_ shape: [Int], _ dataType: NIfTIDataType, _ value: (Int, Int, Int) -> Double) -> NIfTIVolume {
    var values: [Double] = []
    for z in 0..<shape[2] { for y in 0..<shape[1] { for x in 0..<shape[0] { values.append(value(x, y, z)) } } }
    return NIfTIVolume(shape: shape, spacing: [1.5, 1.5, 10], dataType: dataType, values: values)
  }

  @Test("percentiles are numpy's linear interpolation: 1st and 99th of 1...10 are 1.09 and 9.91")
  func percentileMatchesNumpy() {
    var rng = SplitMix64(seed: 11, stream: 1)
    let values = (1...10).map(Double.init).shuffled(using: &rng)
    let p = Percentile.of(values, [0, 1, 50, 99, 100])
    let expected = [1, 1.09, 5.5, 9.91, 10]
    #expect(firstMismatch("percentiles", actual: p, expected: expected, tolerance: .doubleRounding) == nil)
  }

  @Test("selection gives the same percentiles as sorting, with many ties", arguments: [1, 2, 17, 1000, 4099])
  func percentileMatchesSorting(count: Int) {
    var rng = SplitMix64(seed: UInt64(count), stream: 2)
    let values = (0..<count).map { _ in Double(rng.int(below: 50)) / 7 }
    let sorted = values.sorted()
    for p in [0.0, 0.5, 1, 25, 50, 98.7, 99, 100] {
      let position = p / 100 * Double(count - 1)
      let below = Int(position.rounded(.down))
      let above = min(below + 1, count - 1)
      let want = sorted[below] + (sorted[above] - sorted[below]) * (position - Double(below))
      #expect(Tolerance.doubleRounding.accepts(Percentile.of(values, [p])[0], want), "p \(p) of \(count)")
    }
  }

  @Test("bilinear resize with align_corners = false: 2x2 to 4x4 gives torch's values")
  func bilinearHalfPixel() {
    let out = Preprocessing.resizeBilinear([0, 1, 2, 3], width: 2, height: 2, size: 4)
    let expected: [Double] = [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]
    #expect(firstMismatch("bilinear", actual: out, expected: expected, tolerance: .doubleRounding) == nil)
  }

  @Test("resizing to the same size is the identity, bilinear and nearest")
  func resizeIdentity() {
    var rng = SplitMix64(seed: 3, stream: 3)
    let plane = (0..<49).map { _ in rng.uniform() }
    #expect(Preprocessing.resizeBilinear(plane, width: 7, height: 7, size: 7) == plane)
    #expect(Preprocessing.resizeNearest(plane, width: 7, height: 7, size: 7) == plane)
  }

  @Test("nearest resize samples on the half-pixel grid: 3 -> 6 repeats each pixel twice")
  func nearestHalfPixel() {
    let out = Preprocessing.resizeNearest([UInt8]([1, 2, 3, 4, 5, 6, 7, 8, 9]), width: 3, height: 3, size: 6)
    #expect(Array(out[0..<6]) == [1, 1, 2, 2, 3, 3])
    #expect(Array(out[30..<36]) == [7, 7, 8, 8, 9, 9])
  }

  @Test("crop box: labelled bounding box plus the margin, clamped; slices without labels dropped")
  func cropAndFilter() throws {
    // 40 x 30 x 4; labels in x 5...12, y 20...27 on slices 1 and 3 only.
    let labels = Self.volume([40, 30, 4], .uint8) { x, y, z in
      (z == 1 || z == 3) && (5...12).contains(x) && (20...27).contains(y) ? Double(1 + (x + y) % 3) : 0
    }
    let image = Self.volume([40, 30, 4], .float32) { x, y, z in Double(x + 2 * y + 5 * z) }
    let prepared = try Preprocessing(size: 16, margin: 10).prepare(
      image: image, labels: labels, patient: 7, group: .nor, phase: .es, imageFile: "i.nii", labelFile: "l.nii")
    #expect(prepared.geometry.cropX == 0..<23)  // 5 - 10 clamped to 0; 12 + 10 + 1 = 23
    #expect(prepared.geometry.cropY == 10..<30)  // 20 - 10; 27 + 11 = 38 clamped to 30
    #expect(prepared.geometry.keptSlices == [1, 3])
    #expect(prepared.slices.map(\.sliceIndex) == [1, 3])
    #expect(prepared.slices.allSatisfy { $0.patient == 7 && $0.phase == .es && $0.image.count == 256 && $0.label.count == 256 })
    #expect(prepared.geometry.originalShape == [40, 30, 4])
    #expect(prepared.geometry.spacing == [1.5, 1.5, 10])
    let all = prepared.slices.flatMap(\.image)
    #expect(all.min()! >= 0 && all.max()! <= 1)
  }

  @Test("intensities are clipped to the 1st-99th percentiles and rescaled to [0, 1]; labels are not clipped")
  func intensityWindow() throws {
    // One slice, 10 x 10, all labelled; intensities 0...99 plus one huge outlier.
    let image = Self.volume([10, 10, 1], .float32) { x, y, _ in x == 9 && y == 9 ? 1e6 : Double(10 * y + x) }
    let labels = Self.volume([10, 10, 1], .uint8) { x, y, _ in x == 4 && y == 4 ? 0 : Double(1 + (x + y) % 3) }
    let prepared = try Preprocessing(size: 10, margin: 0).prepare(
      image: image, labels: labels, patient: 1, group: .dcm, phase: .ed, imageFile: "i.nii", labelFile: "l.nii")
    let slice = try #require(prepared.slices.first)
    // numpy: percentile([0, ..., 98, 1e6], 1) = 0.99 and 99th = 98 + 0.01 * (1e6 - 98) = 10097.02.
    #expect(Tolerance.doubleRounding.accepts(prepared.geometry.intensityWindow.lowerBound, 0.99))
    #expect(Tolerance.doubleRounding.accepts(prepared.geometry.intensityWindow.upperBound, 10097.02))
    #expect(slice.image[0] == 0 && slice.image[99] == 1)
    #expect(Tolerance.float32Kernel.accepts(Double(slice.image[50]), (50 - 0.99) / (10097.02 - 0.99)))
    // Labels: resize 10 -> 10 is the identity, and every class survives (the code's clipping of
    // the label volume would have erased the top class).
    #expect(slice.label == labels.values.map { UInt8($0) })
  }
}
