import Dataset
import Foundation
import Testing
import TestSupport

/// Real NIfTI files nobody here wrote (ITK's examples, nibabel's test data) and tiny files nibabel
/// wrote, against the values nibabel reads from them (fixtures/nifti/expected.json, made by
/// fixtures/nifti/make_expected.py; no Python at test time).
struct NIfTIFixtureTests {
  struct Expected: Decodable {
    struct Scaling: Decodable { var slope: Double; var intercept: Double }
    struct Extension: Decodable { var code: Int; var esize: Int; var contentHex: String }
    struct Voxel: Decodable { var index: Int; var value: Double }
    var file: String
    var version: Int
    var byteOrder: String
    var shape: [Int]
    var dataType: String
    var voxOffset: Int
    var scaling: Scaling?
    var extensions: [Extension]
    var pixdim: [Double]
    var qformCode: Int
    var sformCode: Int
    var srow: [[Double]]
    var min: Double
    var max: Double
    var sum: Double
    var voxels: [Voxel]
  }

  struct ExpectedFile: Decodable { var files: [Expected] }

  static let directory = fixturesDirectory.appendingPathComponent("nifti")

  static func expected(_ file: String) throws -> Expected {
    let data = try Data(contentsOf: directory.appendingPathComponent("expected.json"))
    let all = try JSONDecoder().decode(ExpectedFile.self, from: data)
    return try #require(all.files.first { $0.file == file }, "no expected values for \(file)")
  }

  static let files = [
    "itk/KmeansTest_T1UCharRaw.nii.gz",
    "itk/KmeansTest_T1KmeansPrelimSegmentation.nii.gz",
    "nibabel/anatomical.nii",
    "nibabel/functional.nii",
    "nibabel/example4d.nii.gz",
    "nibabel/example_nifti2.nii.gz",
    "nibabel/reoriented_anat_moved.nii",
    "nibabel/standard.nii.gz",
    "nibabel-written/int8.nii",
    "nibabel-written/uint16.nii",
    "nibabel-written/uint16_be.nii",
    "nibabel-written/int32.nii",
    "nibabel-written/int32_be.nii",
    "nibabel-written/float64.nii",
    "nibabel-written/float64_be.nii",
    "nibabel-written/uint8_scaled.nii",
  ]

  @Test("reading a fixture gives nibabel's shape, type, header fields and values", arguments: files)
  func fixtureMatchesNibabel(file: String) throws {
    let want = try Self.expected(file)
    let volume = try NIfTIVolume.read(from: Self.directory.appendingPathComponent(file))
    // Shape and header before values.
    #expect(volume.shape == want.shape)
    #expect(volume.dataType.description == want.dataType)
    #expect(volume.storage.version.rawValue == want.version)
    #expect((volume.storage.byteOrder == .bigEndian ? "big" : "little") == want.byteOrder)
    #expect(volume.storage.voxelOffset == want.voxOffset)
    #expect(volume.storage.compressed == file.hasSuffix(".gz"))
    #expect(volume.storage.extensions.map(\.code) == want.extensions.map(\.code))
    // nibabel reports the content without the zero padding up to esize.
    #expect(volume.storage.extensions.map { $0.content.count + 8 } == want.extensions.map(\.esize))
    for (got, extensionWanted) in zip(volume.storage.extensions, want.extensions) {
      let hex = got.content.map { String(format: "%02x", $0) }.joined()
      #expect(hex.hasPrefix(extensionWanted.contentHex), "\(file): extension content")
    }
    #expect(volume.geometry.qformCode == want.qformCode)
    #expect(volume.geometry.sformCode == want.sformCode)
    #expect(volume.geometry.srow == want.srow)
    #expect(volume.spacing == want.pixdim)
    if let scaling = want.scaling {
      let got = try #require(volume.storage.scaling, "\(file): expected scaling")
      #expect(got.slope == scaling.slope)
      #expect(got.intercept == scaling.intercept)
    }
    try #require(volume.values.count == want.shape.reduce(1, *))
    // Values: exact where nibabel's float64 arithmetic is exact; the sum up to summation order.
    #expect(volume.values.min() == want.min)
    #expect(volume.values.max() == want.max)
    let sum = volume.values.reduce(0, +)
    #expect(Tolerance.doubleRounding.accepts(sum, want.sum), "\(file): sum \(sum), expected \(want.sum)")
    for voxel in want.voxels {
      #expect(volume.values[voxel.index] == voxel.value, "\(file): voxel \(voxel.index)")
    }
  }

  @Test("the ITK k-means map has classes 0...6 and its largest class is the dark background")
  func itkLabelMapLinesUp() throws {
    let image = try NIfTIVolume.read(from: Self.directory.appendingPathComponent("itk/KmeansTest_T1UCharRaw.nii.gz"))
    let labels = try NIfTIVolume.read(
      from: Self.directory.appendingPathComponent("itk/KmeansTest_T1KmeansPrelimSegmentation.nii.gz"))
    try #require(image.shape == labels.shape)
    #expect(Set(labels.values) == Set((0...6).map(Double.init)))
    var sums = [Double](repeating: 0, count: 7), counts = [Int](repeating: 0, count: 7)
    for (v, l) in zip(image.values, labels.values) {
      sums[Int(l)] += v
      counts[Int(l)] += 1
    }
    // nibabel: class 1 has 729,202 voxels with mean intensity 1.21, the lowest of all classes.
    #expect(counts[1] == 729_202)
    let means = (0..<7).map { sums[$0] / Double(max(counts[$0], 1)) }
    #expect(means.firstIndex(of: means.min()!) == 1, "class means \(means)")
  }
}
