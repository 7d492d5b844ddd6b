import Foundation
import Reference

/// A weights file of this package: a header that names the format, the model configuration and
/// a checksum, then the flat parameter buffer (parameters and running statistics, layout order) as
/// little-endian Float32. A damaged file is reported, never loaded.
///
/// Layout: "P2RW" magic, UInt32 version 1, UInt64 value count, UInt64 FNV-1a checksum of the value
/// bytes, UInt32 JSON length, the ModelConfig as JSON, the values.
public enum WeightsFile {
  static let magic: [UInt8] = Array("P2RW".utf8)

  public static func write(values: [Float], config: ModelConfig, to url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys  // the same bytes for the same weights in every process
    let json = try encoder.encode(config)
    var bytes = magic
    append(&bytes, UInt32(1))
    append(&bytes, UInt64(values.count))
    var payload = [UInt8]()
    payload.reserveCapacity(values.count * 4)
    for v in values { append(&payload, v.bitPattern) }
    append(&bytes, FNV1a.hash(payload))
    append(&bytes, UInt32(json.count))
    bytes += json
    bytes += payload
    try writeAtomically(Data(bytes), to: url)
  }

  /// Reads a file written by `write`, checking the magic, the configuration and the checksum.
  public static func read(from url: URL, expecting config: ModelConfig) throws -> [Float] {
    let name = url.lastPathComponent
    guard let data = FileManager.default.contents(atPath: url.path) else {
      throw ExperimentError("\(url.path): cannot read weights file")
    }
    let bytes = [UInt8](data)
    var offset = 0
    func take(_ n: Int) throws -> ArraySlice<UInt8> {
      guard n >= 0, offset + n <= bytes.count else { throw ExperimentError("\(name): weights file truncated") }
      defer { offset += n }
      return bytes[offset..<(offset + n)]
    }
    guard Array(try take(4)) == magic else { throw ExperimentError("\(name): not a weights file (bad magic)") }
    guard read32(try take(4)) == 1 else { throw ExperimentError("\(name): unsupported weights file version") }
    let count = Int(clamping: read64(try take(8)))
    let checksum = read64(try take(8))
    let jsonLength = Int(read32(try take(4)))
    guard let stored = try? JSONDecoder().decode(ModelConfig.self, from: Data(try take(jsonLength))) else {
      throw ExperimentError("\(name): damaged configuration in weights header")
    }
    guard stored == config else { throw ExperimentError("\(name): weights are for another model configuration") }
    guard count == ParameterLayout(config: config).count, count <= (bytes.count - offset) / 4 else {
      throw ExperimentError("\(name): weights file truncated or holds \(count) values for a layout of \(ParameterLayout(config: config).count)")
    }
    let payload = Array(try take(count * 4))
    guard offset == bytes.count else { throw ExperimentError("\(name): trailing bytes after the weights") }
    guard FNV1a.hash(payload) == checksum else { throw ExperimentError("\(name): checksum mismatch, the file is damaged") }
    return (0..<count).map { Float(bitPattern: read32(payload[(4 * $0)..<(4 * $0 + 4)])) }
  }

  static func append<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T) {
    withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
  }

  static func read32(_ s: ArraySlice<UInt8>) -> UInt32 {
    s.reversed().reduce(0) { $0 << 8 | UInt32($1) }
  }

  static func read64(_ s: ArraySlice<UInt8>) -> UInt64 {
    s.reversed().reduce(0) { $0 << 8 | UInt64($1) }
  }
}
