import Dataset
import Foundation
import Testing

/// Our writer read back by our reader: the same volume, and the same bytes when written again.
struct NIfTIRoundTripTests {
  @Test("write then read gives the same volume, for every data type, .nii and .nii.gz", arguments: NIfTIDataType.allCases)
  func writeThenReadIsIdentity(dataType: NIfTIDataType) throws {
    let folder = TemporaryFolder()
    let volume = smallVolume(dataType: dataType)
    for name in ["v.nii", "v.nii.gz"] {
      try volume.write(to: folder.file(name))
      let back = try NIfTIVolume.read(from: folder.file(name))
      #expect(back.shape == volume.shape)
      #expect(back.dataType == volume.dataType)
      #expect(back.spacing == volume.spacing)
      #expect(back.geometry == volume.geometry)
      #expect(back.descriptionText == volume.descriptionText)
      #expect(back.values == volume.values)
      #expect(back.storage.compressed == name.hasSuffix(".gz"))
      #expect(back.storage.scaling == nil)
    }
  }

  @Test("writing what was read gives byte-identical files")
  func rewriteIsByteIdentical() throws {
    let folder = TemporaryFolder()
    for dataType in [NIfTIDataType.float32, .uint8] {
      let volume = smallVolume(dataType: dataType, shape: [7, 9, 3])
      try volume.write(to: folder.file("a.nii.gz"))
      try NIfTIVolume.read(from: folder.file("a.nii.gz")).write(to: folder.file("b.nii.gz"))
      let a = try Data(contentsOf: folder.file("a.nii.gz"))
      let b = try Data(contentsOf: folder.file("b.nii.gz"))
      #expect(a == b)
    }
  }

  @Test("big-endian encoding decodes to the same values", arguments: NIfTIDataType.allCases)
  func bigEndianRoundTrip(dataType: NIfTIDataType) throws {
    let volume = smallVolume(dataType: dataType, shape: [3, 4, 5, 2])
    let bytes = try volume.encoded(byteOrder: .bigEndian)
    let back = try NIfTIVolume.decode(bytes, file: "be.nii")
    #expect(back.storage.byteOrder == .bigEndian)
    #expect(back.shape == [3, 4, 5, 2])
    #expect(back.values == volume.values)
  }

  @Test("the gzip header has no timestamp and compression is deterministic")
  func gzipIsDeterministic() throws {
    let bytes = try smallVolume(dataType: .float32).encoded()
    let a = Gzip.compress(bytes, level: 6)
    let b = Gzip.compress(bytes, level: 6)
    #expect(a == b)
    #expect(Array(a[0..<4]) == [0x1F, 0x8B, 8, 0])  // magic, deflate, no flags (no name)
    #expect(Array(a[4..<8]) == [0, 0, 0, 0])  // MTIME 0
    #expect(try Gzip.decompress(a) == bytes)
  }

  @Test("concatenated gzip members decompress to the concatenation; zero padding is ignored")
  func multiMemberGzip() throws {
    let first = Array("first member, ".utf8), second = Array("second member".utf8)
    let joined = Gzip.compress(first) + Gzip.compress(second)
    #expect(try Gzip.decompress(joined) == first + second)
    #expect(try Gzip.decompress(joined + [0, 0, 0, 0]) == first + second)
    // A NIfTI file split over two members reads like the single-member file.
    let volume = smallVolume()
    let bytes = try volume.encoded()
    let split = Gzip.compress(Array(bytes[..<200])) + Gzip.compress(Array(bytes[200...]))
    #expect(try NIfTIVolume.decode(split, file: "split.nii.gz").values == volume.values)
  }

  @Test("the writer refuses values that do not fit the data type")
  func writerRefusesOutOfRange() {
    var volume = smallVolume(dataType: .uint8)
    volume.values[3] = 300
    expectDataError(naming: "labels.nii.gz", containing: "does not fit uint8") {
      _ = try volume.encoded(file: "labels.nii.gz")
    }
    volume.values[3] = 2.5
    expectDataError(naming: "labels.nii.gz", containing: "does not fit uint8") {
      _ = try volume.encoded(file: "labels.nii.gz")
    }
  }
}
