import Dataset
import Experiment
import Foundation
import Testing

@Suite("NIfTI predictions")
struct PredictionTests {
  /// A prediction written on the prepared grid reads back as uint8 with shape (S, S, slices), the
  /// same labels, pixdim scaled by crop/S, and voxel (0, 0, 0) at the crop box's first resized
  /// pixel centre in the original image's coordinates.
  @Test func writtenPredictionReadsBackOnThePreparedGrid() throws {
    let (size, slices) = (16, 3)
    var original = NIfTIVolume(shape: [40, 30, 10], spacing: [1.5, 1.25, 8], dataType: .uint8, values: [Double](repeating: 0, count: 12000), origin: [10, -20, 5])
    original.values[0] = 1
    let geometry = VolumeGeometry(
      originalShape: [40, 30, 10], spacing: [1.5, 1.25, 8], orientation: original.geometry, cropX: 4..<36, cropY: 6..<22,
      size: size, intensityWindow: 0...1, keptSlices: [2, 3, 4])
    let labels = (0..<(size * size * slices)).map { Double($0 % 4) }
    let volume = PreparedNIfTI.volume(values: labels, slices: slices, geometry: geometry, dataType: .uint8, description: "test")
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("exchange-\(ProcessInfo.processInfo.processIdentifier)-pred.nii.gz")
    defer { try? FileManager.default.removeItem(at: url) }
    try volume.write(to: url)
    let read = try NIfTIVolume.read(from: url)
    #expect(read.shape == [size, size, slices])
    #expect(read.dataType == .uint8)
    #expect(read.values == labels)
    #expect(read.spacing == [1.5 * 2, 1.25 * 1, 8])
    // x: 4 + (2 - 1)/2 = 4.5 original voxels -> 10 + 4.5 * 1.5; y: 6 + 0 -> -20 + 6 * 1.25; z: 2 -> 5 + 16.
    let expected = [10 + 4.5 * 1.5, -20 + 6 * 1.25, 5 + 2 * 8.0]
    for i in 0..<3 {
      #expect(abs(read.geometry.srow[i][3] - expected[i]) < 1e-4, "sform translation \(i)")
      #expect(abs(read.geometry.qoffset[i] - expected[i]) < 1e-4, "qform offset \(i)")
      #expect(abs(read.geometry.srow[i][i] - read.spacing[i]) < 1e-5, "sform scale \(i)")
    }
  }
}
