import Dataset
import Testing
import TestSupport

// Swift Testing expectations shared by the test targets. A library of its own because it imports
// Testing, which the `verify` executable (through TestSupport's tolerances) must not link.

// MARK: - Values

/// Expects `actual` to equal `expected` within `tolerance`, count first; a failure carries label,
/// index, expected, actual, delta and limit, and points at the caller.
public func expectClose<A: BinaryFloatingPoint, B: BinaryFloatingPoint>(
  _ label: String, _ actual: [A], _ expected: [B], tolerance: Tolerance,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  let mismatch = firstMismatch(label, actual: actual, expected: expected, tolerance: tolerance)
  #expect(mismatch == nil, "\(mismatch?.description ?? "")", sourceLocation: sourceLocation)
}

/// `expectClose` for one value.
public func expectClose(
  _ label: String, _ actual: Double, _ expected: Double, tolerance: Tolerance,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  expectClose(label, [actual], [expected], tolerance: tolerance, sourceLocation: sourceLocation)
}

// MARK: - Files

/// Splits a PNG into its chunks, checking the signature, that no chunk runs past the end, and
/// every CRC.
public func pngChunks(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws -> [(type: String, data: [UInt8])] {
  try #require(Array(bytes.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "PNG signature", sourceLocation: sourceLocation)
  func be32(_ i: Int) -> Int { (0..<4).reduce(0) { $0 << 8 | Int(bytes[i + $1]) } }
  var chunks: [(String, [UInt8])] = []
  var pos = 8
  while pos < bytes.count {
    try #require(pos + 12 <= bytes.count, "chunk header at \(pos) runs past the end", sourceLocation: sourceLocation)
    let length = be32(pos)
    try #require(pos + 12 + length <= bytes.count, "chunk at \(pos) runs past the end", sourceLocation: sourceLocation)
    let typeAndData = Array(bytes[(pos + 4)..<(pos + 8 + length)])
    #expect(UInt32(be32(pos + 8 + length)) == Gzip.crc32(typeAndData), "CRC of chunk at \(pos)", sourceLocation: sourceLocation)
    chunks.append((String(decoding: typeAndData.prefix(4), as: UTF8.self), Array(typeAndData.dropFirst(4))))
    pos += 12 + length
  }
  return chunks
}
