import Foundation

// MARK: - Writing

extension NIfTIVolume {
  /// Writes the volume as single-file NIfTI-1: gzip-compressed when the path ends in `.gz`.
  ///
  /// Layout written: the 348-byte header, 4 zero extension bytes, the voxels at vox_offset 352 in
  /// `dataType`, little-endian, scl_slope 1 and scl_inter 0 (values are stored as they are), the
  /// shape, `spacing` as pixdim, `geometry` as qform/sform (rounded to Float32), no extensions.
  /// The file is written atomically (to a temporary name, then renamed).
  /// - Parameter compressionLevel: the gzip level (1 ... 9); a fixed level gives byte-identical files.
  /// - Throws: `DataError` naming the file when a value does not fit the data type, or the file
  ///   cannot be written.
  public func write(to url: URL, compressionLevel: Int = 6) throws(DataError) {
    var bytes = try encoded(file: url.path)
    if url.path.hasSuffix(".gz") {
      bytes = Gzip.compress(bytes, level: compressionLevel)
    }
    do {
      try Data(bytes).write(to: url, options: .atomic)
    } catch {
      throw DataError(url: url, "could not be written (\(error.localizedDescription))")
    }
  }

  /// The uncompressed bytes of the NIfTI-1 file `write` produces (`byteOrder` only for tests of
  /// readers: files of this project are little-endian).
  /// - Throws: `DataError` naming `file` when a value is not finite for an integer type, not an
  ///   integer, or outside the type's range.
  public func encoded(file: String = "<memory>", byteOrder: NIfTIStorage.ByteOrder = .littleEndian) throws(DataError) -> [UInt8] {
    guard (1...4).contains(shape.count), shape.allSatisfy({ $0 >= 1 }), spacing.count == shape.count,
      values.count == shape.reduce(1, *), shape.allSatisfy({ $0 <= Int(Int16.max) })
    else {
      throw DataError(file: file, "cannot write shape \(shape) with \(values.count) values and \(spacing.count) spacings")
    }
    if let range = dataType.integerRange {
      if let bad = values.firstIndex(where: { !range.contains($0) || $0 != $0.rounded() }) {
        throw DataError(file: file, "value \(values[bad]) at voxel \(bad) does not fit \(dataType)")
      }
    }
    var out = HeaderWriter(count: 352 + values.count * dataType.size, bigEndian: byteOrder == .bigEndian)
    out.int32(0, 348)
    out.bytes[38] = 0x72  // regular = 'r'
    out.int16(40, shape.count)
    for axis in 0..<7 { out.int16(42 + 2 * axis, axis < shape.count ? shape[axis] : 1) }
    out.int16(70, dataType.rawValue)
    out.int16(72, dataType.size * 8)
    out.float32(76, geometry.qfac < 0 ? -1 : 1)
    for axis in 0..<7 { out.float32(80 + 4 * axis, axis < spacing.count ? spacing[axis] : 1) }
    out.float32(108, 352)  // vox_offset
    out.float32(112, 1)  // scl_slope
    out.float32(116, 0)  // scl_inter
    out.bytes[123] = UInt8(truncatingIfNeeded: geometry.xyztUnits)
    for (k, byte) in descriptionText.utf8.prefix(79).enumerated() { out.bytes[148 + k] = byte }
    out.int16(252, geometry.qformCode)
    out.int16(254, geometry.sformCode)
    for k in 0..<3 { out.float32(256 + 4 * k, geometry.quaternion[k]) }
    for k in 0..<3 { out.float32(268 + 4 * k, geometry.qoffset[k]) }
    for row in 0..<3 {
      for column in 0..<4 { out.float32(280 + 16 * row + 4 * column, geometry.srow[row][column]) }
    }
    for (k, byte) in "n+1\0".utf8.enumerated() { out.bytes[344 + k] = byte }
    out.voxels(at: 352, values, as: dataType)
    return out.bytes
  }
}

/// Fills a byte buffer with header fields and voxels in one byte order.
struct HeaderWriter {
  var bytes: [UInt8]
  let bigEndian: Bool

  init(count: Int, bigEndian: Bool) {
    bytes = [UInt8](repeating: 0, count: count)
    self.bigEndian = bigEndian
  }

  mutating func unsigned(_ offset: Int, _ value: UInt64, _ width: Int) {
    for k in 0..<width {
      let shift = 8 * (bigEndian ? width - 1 - k : k)
      bytes[offset + k] = UInt8(truncatingIfNeeded: value >> UInt64(shift))
    }
  }

  mutating func int16(_ offset: Int, _ value: Int) { unsigned(offset, UInt64(UInt16(truncatingIfNeeded: value)), 2) }
  mutating func int32(_ offset: Int, _ value: Int) { unsigned(offset, UInt64(UInt32(truncatingIfNeeded: value)), 4) }
  mutating func float32(_ offset: Int, _ value: Double) { unsigned(offset, UInt64(Float(value).bitPattern), 4) }

  /// Stores `values` (already checked to fit) from `offset` in `type`.
  mutating func voxels(at offset: Int, _ values: [Double], as type: NIfTIDataType) {
    let size = type.size
    for (i, v) in values.enumerated() {
      let pattern: UInt64
      switch type {
      case .uint8: pattern = UInt64(UInt8(v))
      case .int8: pattern = UInt64(UInt8(bitPattern: Int8(v)))
      case .int16: pattern = UInt64(UInt16(bitPattern: Int16(v)))
      case .uint16: pattern = UInt64(UInt16(v))
      case .int32: pattern = UInt64(UInt32(bitPattern: Int32(v)))
      case .float32: pattern = UInt64(Float(v).bitPattern)
      case .float64: pattern = v.bitPattern
      }
      unsigned(offset + size * i, pattern, size)
    }
  }
}
