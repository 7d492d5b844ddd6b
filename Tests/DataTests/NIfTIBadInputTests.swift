import Dataset
import Foundation
import Testing

/// Each kind of bad NIfTI input gets a one-line `DataError` that names the file and the problem.
struct NIfTIBadInputTests {
  /// A valid little-endian NIfTI-1 file of `smallVolume()` (6 x 5 x 4 int16, 240 data bytes).
  static func validBytes() throws -> [UInt8] { try smallVolume().encoded() }

  static func setInt16(_ bytes: inout [UInt8], _ offset: Int, _ value: Int16) {
    let v = UInt16(bitPattern: value)
    bytes[offset] = UInt8(v & 0xFF)
    bytes[offset + 1] = UInt8(v >> 8)
  }

  static func setFloat(_ bytes: inout [UInt8], _ offset: Int, _ value: Float) {
    let v = value.bitPattern
    for k in 0..<4 { bytes[offset + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
  }

  @Test("a missing file") func missingFile() {
    let folder = TemporaryFolder()
    expectDataError(naming: "patient001_frame01.nii.gz", containing: "no such file") {
      _ = try NIfTIVolume.read(from: folder.file("patient001_frame01.nii.gz"))
    }
  }

  @Test("a folder where a file is expected") func folderInsteadOfFile() {
    let folder = TemporaryFolder()
    expectDataError(naming: folder.url.lastPathComponent, containing: "is a folder") {
      _ = try NIfTIVolume.read(from: folder.url)
    }
  }

  @Test("a truncated header") func truncatedHeader() throws {
    let bytes = Array(try Self.validBytes()[..<200])
    expectDataError(naming: "t.nii", containing: "shorter than the 348-byte NIfTI-1 header") {
      _ = try NIfTIVolume.decode(bytes, file: "t.nii")
    }
    expectDataError(naming: "t.nii", containing: "too short") {
      _ = try NIfTIVolume.decode([1, 2], file: "t.nii")
    }
  }

  @Test("truncated voxel data: the header claims more data than the file has") func truncatedData() throws {
    let bytes = Array(try Self.validBytes().dropLast(100))
    expectDataError(naming: "patient001_frame01.nii", containing: "header claims 240 bytes of data (6 x 5 x 4 int16) but the file has 140") {
      _ = try NIfTIVolume.decode(bytes, file: "patient001_frame01.nii")
    }
  }

  @Test("a header that claims far more data than present") func headerClaimsTooMuch() throws {
    var bytes = try Self.validBytes()
    Self.setInt16(&bytes, 42, 1024)
    Self.setInt16(&bytes, 44, 1024)
    expectDataError(naming: "big.nii", containing: "header claims 8,388,608 bytes of data") {
      _ = try NIfTIVolume.decode(bytes, file: "big.nii")
    }
  }

  @Test("a wrong sizeof_hdr and a wrong magic") func wrongMagic() throws {
    var bytes = try Self.validBytes()
    bytes[0] = 0x5D
    expectDataError(naming: "x.nii", containing: "not a NIfTI file: sizeof_hdr is 349") {
      _ = try NIfTIVolume.decode(bytes, file: "x.nii")
    }
    bytes = try Self.validBytes()
    bytes[345] = 0x2D  // "n-1"
    expectDataError(naming: "x.nii", containing: "wrong magic 'n-1") {
      _ = try NIfTIVolume.decode(bytes, file: "x.nii")
    }
    bytes = try Self.validBytes()
    bytes[345] = 0x69  // "ni1": a .hdr/.img pair
    expectDataError(naming: "x.hdr", containing: ".hdr/.img pair") {
      _ = try NIfTIVolume.decode(bytes, file: "x.hdr")
    }
  }

  @Test("zero and negative dimensions, and too many", arguments: [
    (40, Int16(0), "dim[0] = 0"), (40, 8, "dim[0] = 8"), (42, 0, "dim[1] = 0"), (44, -5, "dim[2] = -5"),
    (46, -32768, "dim[3] = -32768"),
  ])
  func badDimensions(offset: Int, value: Int16, phrase: String) throws {
    var bytes = try Self.validBytes()
    Self.setInt16(&bytes, offset, value)
    expectDataError(naming: "d.nii", containing: phrase) {
      _ = try NIfTIVolume.decode(bytes, file: "d.nii")
    }
  }

  @Test("five dimensions with extent > 1 are refused") func fiveDimensions() throws {
    var bytes = try Self.validBytes()
    Self.setInt16(&bytes, 40, 5)
    Self.setInt16(&bytes, 50, 2)
    expectDataError(naming: "d.nii", containing: "only up to 4 are supported") {
      _ = try NIfTIVolume.decode(bytes, file: "d.nii")
    }
  }

  @Test("unsupported and unknown data types, and a bitpix that disagrees") func badDataType() throws {
    var bytes = try Self.validBytes()
    Self.setInt16(&bytes, 70, 32)
    expectDataError(naming: "c.nii", containing: "unsupported data type 32 (complex64)") {
      _ = try NIfTIVolume.decode(bytes, file: "c.nii")
    }
    Self.setInt16(&bytes, 70, 3)
    expectDataError(naming: "c.nii", containing: "unknown data type code 3") {
      _ = try NIfTIVolume.decode(bytes, file: "c.nii")
    }
    bytes = try Self.validBytes()
    Self.setInt16(&bytes, 72, 8)
    expectDataError(naming: "c.nii", containing: "bitpix 8 does not match data type int16") {
      _ = try NIfTIVolume.decode(bytes, file: "c.nii")
    }
  }

  @Test("a vox_offset inside the header, or not a whole number") func badVoxOffset() throws {
    var bytes = try Self.validBytes()
    Self.setFloat(&bytes, 108, 100)
    expectDataError(naming: "v.nii", containing: "vox_offset 100 lies inside the 348-byte header") {
      _ = try NIfTIVolume.decode(bytes, file: "v.nii")
    }
    Self.setFloat(&bytes, 108, .nan)
    expectDataError(naming: "v.nii", containing: "vox_offset nan is not a whole") {
      _ = try NIfTIVolume.decode(bytes, file: "v.nii")
    }
  }

  @Test("a header extension that overruns vox_offset") func badExtension() throws {
    var bytes = try Self.validBytes()
    // Move the data to 368 and declare one extension of 64 bytes: it does not fit.
    bytes.insert(contentsOf: [UInt8](repeating: 0, count: 16), at: 352)
    Self.setFloat(&bytes, 108, 368)
    bytes[348] = 1
    bytes[352] = 64
    bytes[356] = 6
    expectDataError(naming: "e.nii", containing: "header extension at byte 352 has esize 64") {
      _ = try NIfTIVolume.decode(bytes, file: "e.nii")
    }
    bytes[352] = 16  // Now it fits exactly: 8 bytes of esize/ecode, 8 of content.
    let volume = try NIfTIVolume.decode(bytes, file: "e.nii")
    #expect(volume.storage.extensions.count == 1)
    #expect(volume.values == smallVolume().values)
  }

  @Test("corrupt and truncated gzip streams") func corruptGzip() throws {
    let gz = Gzip.compress(try Self.validBytes())
    var corrupt = gz
    for k in 20..<40 { corrupt[k] ^= 0x5A }
    expectDataError(naming: "g.nii.gz", containing: "corrupt gzip stream") {
      _ = try NIfTIVolume.decode(corrupt, file: "g.nii.gz")
    }
    expectDataError(naming: "g.nii.gz", containing: "gzip stream is truncated") {
      _ = try NIfTIVolume.decode(Array(gz.dropLast(30)), file: "g.nii.gz")
    }
    var badCRC = gz
    badCRC[gz.count - 6] ^= 1
    expectDataError(naming: "g.nii.gz", containing: "incorrect data check") {
      _ = try NIfTIVolume.decode(badCRC, file: "g.nii.gz")
    }
    expectDataError(naming: "g.nii.gz", containing: "unexpected bytes after the end") {
      _ = try NIfTIVolume.decode(gz + [1, 2, 3], file: "g.nii.gz")
    }
    expectDataError(naming: "g.nii.gz", containing: "does not start with the gzip magic") {
      _ = try NIfTIVolume.decode(Array(gz.dropFirst()), file: "g.nii.gz")
    }
  }

  @Test("a truncated .nii.gz file on disk") func truncatedFileOnDisk() throws {
    let folder = TemporaryFolder()
    let url = folder.file("patient001_frame01.nii.gz")
    try smallVolume(dataType: .float32).write(to: url)
    let data = try Data(contentsOf: url)
    try data.prefix(data.count / 2).write(to: url)
    expectDataError(naming: "patient001_frame01.nii.gz", containing: "truncated") {
      _ = try NIfTIVolume.read(from: url)
    }
  }
}
