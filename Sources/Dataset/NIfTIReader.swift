import Foundation

// MARK: - Reading

extension NIfTIVolume {
  /// Reads a single-file NIfTI-1 or NIfTI-2 image (`.nii`, or `.nii.gz` recognised by the gzip
  /// magic), in either byte order.
  ///
  /// Guarantees: bad input of any kind (missing or unreadable file, corrupt gzip, wrong magic,
  /// invalid dimensions, unsupported data type, inconsistent bitpix, vox_offset inside the header,
  /// malformed extensions, truncated data) throws a `DataError` naming the file; it never traps.
  public static func read(from url: URL) throws(DataError) -> NIfTIVolume {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
      throw DataError(url: url, "no such file")
    }
    guard !isFolder.boolValue else { throw DataError(url: url, "is a folder, expected a NIfTI file") }
    let data: Data
    do {
      data = try Data(contentsOf: url)
    } catch {
      throw DataError(url: url, "could not be read (\(error.localizedDescription))")
    }
    return try decode([UInt8](data), file: url.path)
  }

  /// Decodes the bytes of a `.nii` or `.nii.gz` file; `file` names it in errors.
  public static func decode(_ fileBytes: [UInt8], file: String) throws(DataError) -> NIfTIVolume {
    var bytes = fileBytes
    var compressed = false
    if Gzip.hasMagic(bytes) {
      do {
        bytes = try Gzip.decompress(bytes)
      } catch {
        throw DataError(file: file, error.reason)
      }
      compressed = true
    } else if file.hasSuffix(".gz") {
      throw DataError(file: file, "is named .gz but does not start with the gzip magic bytes 1f 8b")
    }
    var volume = try decodeUncompressed(bytes, file: file)
    volume.storage.compressed = compressed
    return volume
  }

  /// Decodes an uncompressed NIfTI-1 or NIfTI-2 file.
  static func decodeUncompressed(_ bytes: [UInt8], file: String) throws(DataError) -> NIfTIVolume {
    func fail(_ problem: String) -> DataError { DataError(file: file, problem) }
    guard bytes.count >= 4 else {
      throw fail("is too short to be a NIfTI file (\(bytes.count) bytes)")
    }
    let little = HeaderBytes(bytes: bytes, bigEndian: false)
    let big = HeaderBytes(bytes: bytes, bigEndian: true)
    let header: HeaderBytes
    let version: NIfTIStorage.Version
    switch (little.int32(0), big.int32(0)) {
    case (348, _): (header, version) = (little, .nifti1)
    case (_, 348): (header, version) = (big, .nifti1)
    case (540, _): (header, version) = (little, .nifti2)
    case (_, 540): (header, version) = (big, .nifti2)
    default:
      throw fail(
        "not a NIfTI file: sizeof_hdr is \(little.int32(0)) (expected 348 or 540 in either byte order)")
    }
    let headerSize = version == .nifti1 ? 348 : 540
    guard bytes.count >= headerSize else {
      throw fail("truncated: \(bytes.count) bytes, shorter than the \(headerSize)-byte NIfTI-\(version.rawValue) header")
    }
    let layout = version == .nifti1 ? HeaderLayout.nifti1 : HeaderLayout.nifti2

    // Magic.
    let magic = Array(bytes[layout.magic..<(layout.magic + layout.magicBytes.count)])
    if magic != layout.magicBytes {
      if magic.count >= 3 && magic[0] == 0x6E && magic[1] == 0x69 {  // "ni1" / "ni2"
        throw fail("is the header of a .hdr/.img pair (magic '\(printable(magic))'); only single-file .nii is supported")
      }
      throw fail("wrong magic '\(printable(magic))' (expected '\(printable(layout.magicBytes))')")
    }

    // Dimensions.
    let dims = (0..<8).map { layout.wideFields ? header.int64(layout.dim + 8 * $0) : header.int16(layout.dim + 2 * $0) }
    let rank = dims[0]
    guard (1...7).contains(rank) else {
      throw fail("dim[0] = \(rank): the number of dimensions must be 1 to 7")
    }
    for axis in 1...rank where dims[axis] < 1 {
      throw fail("dim[\(axis)] = \(dims[axis]): every extent must be at least 1")
    }
    if rank > 4, let axis = (5...rank).first(where: { dims[$0] > 1 }) {
      throw fail("has \(rank) dimensions with dim[\(axis)] = \(dims[axis]); only up to 4 are supported")
    }
    let shape = Array(dims[1...min(rank, 4)])
    var count = 1
    for extent in shape {
      let (product, overflow) = count.multipliedReportingOverflow(by: extent)
      guard !overflow else { throw fail("dimensions \(shape) overflow the voxel count") }
      count = product
    }

    // Data type.
    let code = header.int16(layout.datatype)
    guard let dataType = NIfTIDataType(rawValue: code) else {
      if let name = NIfTIDataType.unsupportedName(code) {
        throw fail("unsupported data type \(code) (\(name)); supported: uint8, int8, int16, uint16, int32, float32, float64")
      }
      throw fail("unknown data type code \(code)")
    }
    let bitpix = header.int16(layout.bitpix)
    guard bitpix == dataType.size * 8 else {
      throw fail("bitpix \(bitpix) does not match data type \(dataType) (\(dataType.size * 8) bits)")
    }
    let (dataBytes, overflow) = count.multipliedReportingOverflow(by: dataType.size)
    guard !overflow, dataBytes <= 1 << 40 else { throw fail("dimensions \(shape) give an absurd data size") }

    // Voxel offset.
    var voxelOffset: Int
    if layout.wideFields {
      voxelOffset = header.int64(layout.voxOffset)
    } else {
      let raw = header.float32(layout.voxOffset)
      guard raw.isFinite, raw >= 0, raw <= 1e12, raw == raw.rounded(.towardZero) else {
        throw fail("vox_offset \(raw) is not a whole, non-negative byte offset")
      }
      voxelOffset = Int(raw)
    }
    if voxelOffset == 0 { voxelOffset = headerSize + 4 }  // Old writers; nibabel reads it this way too.
    guard voxelOffset >= headerSize else {
      throw fail("vox_offset \(voxelOffset) lies inside the \(headerSize)-byte header")
    }
    let available = max(0, bytes.count - min(voxelOffset, bytes.count))
    guard available >= dataBytes else {
      throw fail(
        "header claims \(groupedDigits(dataBytes)) bytes of data (\(shape.map(String.init).joined(separator: " x ")) \(dataType)) "
          + "but the file has \(groupedDigits(available)) after vox_offset \(voxelOffset)")
    }

    // Extensions.
    var extensions: [NIfTIStorage.Extension] = []
    if voxelOffset >= headerSize + 4 && bytes[headerSize] != 0 {
      var position = headerSize + 4
      while position + 8 <= voxelOffset {
        let size = header.int32(position)
        let code = header.int32(position + 4)
        guard size >= 8, size <= voxelOffset - position else {
          throw fail("header extension at byte \(position) has esize \(size), which does not fit before the data at vox_offset \(voxelOffset)")
        }
        extensions.append(.init(code: code, content: Array(bytes[(position + 8)..<(position + size)])))
        position += size
      }
    }

    // Scaling, spacing, orientation.
    let slope = header.real(layout.sclSlope, wide: layout.wideFields)
    let intercept = header.real(layout.sclInter, wide: layout.wideFields)
    var storage = NIfTIStorage()
    storage.version = version
    storage.byteOrder = header.bigEndian ? .bigEndian : .littleEndian
    storage.voxelOffset = voxelOffset
    storage.extensions = extensions
    if slope.isFinite && slope != 0 {
      let scaling = NIfTIStorage.Scaling(slope: slope, intercept: intercept.isFinite ? intercept : 0)
      if scaling.slope != 1 || scaling.intercept != 0 { storage.scaling = scaling }
    }
    let pixdim = (0..<8).map { header.real(layout.pixdim + layout.realSize * $0, wide: layout.wideFields) }
    let reals = { (offset: Int, n: Int) in (0..<n).map { header.real(offset + layout.realSize * $0, wide: layout.wideFields) } }
    let geometry = NIfTIGeometry(
      qformCode: layout.wideFields ? header.int32(layout.qformCode) : header.int16(layout.qformCode),
      sformCode: layout.wideFields ? header.int32(layout.sformCode) : header.int16(layout.sformCode),
      qfac: pixdim[0] < 0 ? -1 : 1,
      quaternion: reals(layout.quaternion, 3),
      qoffset: reals(layout.quaternion + 3 * layout.realSize, 3),
      srow: (0..<3).map { reals(layout.srow + 4 * layout.realSize * $0, 4) },
      xyztUnits: layout.wideFields ? header.int32(layout.xyztUnits) : Int(bytes[layout.xyztUnits]))
    let descrip = bytes[layout.descrip..<(layout.descrip + 80)].prefix { $0 != 0 }

    let values = decodeValues(
      bytes, offset: voxelOffset, count: count, dataType: dataType, bigEndian: header.bigEndian,
      scaling: storage.scaling)
    return NIfTIVolume(
      shape: shape, spacing: Array(pixdim[1...shape.count]), dataType: dataType, values: values,
      geometry: geometry, descriptionText: String(decoding: descrip, as: UTF8.self), storage: storage)
  }

  /// Converts `count` stored voxels at `offset` to Double, applying the scaling if any. The caller
  /// has checked that the bytes are there.
  private static func decodeValues(
    _ bytes: [UInt8], offset: Int, count: Int, dataType: NIfTIDataType, bigEndian: Bool,
    scaling: NIfTIStorage.Scaling?
  ) -> [Double] {
    var values = [Double](repeating: 0, count: count)
    bytes.withUnsafeBytes { raw in
      let base = raw.baseAddress! + offset
      values.withUnsafeMutableBufferPointer { out in
        switch dataType {
        case .uint8:
          for i in 0..<count { out[i] = Double(base.load(fromByteOffset: i, as: UInt8.self)) }
        case .int8:
          for i in 0..<count { out[i] = Double(base.load(fromByteOffset: i, as: Int8.self)) }
        case .int16:
          for i in 0..<count {
            let v = base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
            out[i] = Double(Int16(bitPattern: bigEndian ? v.bigEndian : v.littleEndian))
          }
        case .uint16:
          for i in 0..<count {
            let v = base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
            out[i] = Double(bigEndian ? v.bigEndian : v.littleEndian)
          }
        case .int32:
          for i in 0..<count {
            let v = base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
            out[i] = Double(Int32(bitPattern: bigEndian ? v.bigEndian : v.littleEndian))
          }
        case .float32:
          for i in 0..<count {
            let v = base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
            out[i] = Double(Float(bitPattern: bigEndian ? v.bigEndian : v.littleEndian))
          }
        case .float64:
          for i in 0..<count {
            let v = base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)
            out[i] = Double(bitPattern: bigEndian ? v.bigEndian : v.littleEndian)
          }
        }
        if let scaling {
          for i in 0..<count { out[i] = scaling.slope * out[i] + scaling.intercept }
        }
      }
    }
    return values
  }

  /// Magic bytes as text, with non-printable bytes as \xNN.
  private static func printable(_ bytes: [UInt8]) -> String {
    bytes.map { (32...126).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }.joined()
  }
}

// MARK: - Header layout

/// Byte offsets of the header fields used here, for NIfTI-1 (348 bytes) and NIfTI-2 (540 bytes).
struct HeaderLayout {
  var wideFields: Bool  // NIfTI-2: 64-bit dims and offsets, Double reals, Int32 codes.
  var magic: Int
  var magicBytes: [UInt8]
  var dim: Int
  var datatype: Int
  var bitpix: Int
  var pixdim: Int
  var voxOffset: Int
  var sclSlope: Int
  var sclInter: Int
  var xyztUnits: Int
  var descrip: Int
  var qformCode: Int
  var sformCode: Int
  var quaternion: Int  // quatern_b, c, d, then qoffset_x, y, z
  var srow: Int  // srow_x, srow_y, srow_z
  var realSize: Int { wideFields ? 8 : 4 }

  static let nifti1 = HeaderLayout(
    wideFields: false, magic: 344, magicBytes: Array("n+1\0".utf8), dim: 40, datatype: 70, bitpix: 72,
    pixdim: 76, voxOffset: 108, sclSlope: 112, sclInter: 116, xyztUnits: 123, descrip: 148,
    qformCode: 252, sformCode: 254, quaternion: 256, srow: 280)

  static let nifti2 = HeaderLayout(
    wideFields: true, magic: 4, magicBytes: [0x6E, 0x2B, 0x32, 0x00, 0x0D, 0x0A, 0x1A, 0x0A], dim: 16,
    datatype: 12, bitpix: 14, pixdim: 104, voxOffset: 168, sclSlope: 176, sclInter: 184, xyztUnits: 500,
    descrip: 240, qformCode: 344, sformCode: 348, quaternion: 352, srow: 400)
}

/// Reads header fields in a given byte order. Every offset passed is within the header, whose
/// length the caller has checked (and extension reads are bounded by vox_offset <= file length).
struct HeaderBytes {
  let bytes: [UInt8]
  let bigEndian: Bool

  func unsigned(_ offset: Int, _ width: Int) -> UInt64 {
    var value: UInt64 = 0
    for k in 0..<width {
      let byte = UInt64(bytes[offset + (bigEndian ? k : width - 1 - k)])
      value = value << 8 | byte
    }
    return value
  }

  func int16(_ offset: Int) -> Int { Int(Int16(truncatingIfNeeded: unsigned(offset, 2))) }
  func int32(_ offset: Int) -> Int { Int(Int32(truncatingIfNeeded: unsigned(offset, 4))) }
  func int64(_ offset: Int) -> Int { Int(Int64(bitPattern: unsigned(offset, 8))) }
  func float32(_ offset: Int) -> Double { Double(Float(bitPattern: UInt32(truncatingIfNeeded: unsigned(offset, 4)))) }
  func float64(_ offset: Int) -> Double { Double(bitPattern: unsigned(offset, 8)) }
  func real(_ offset: Int, wide: Bool) -> Double { wide ? float64(offset) : float32(offset) }
}
