import CZlib
import Foundation

/// A minimal PNG encoder: 8-bit greyscale or RGB, no interlacing, filter type 0 on every row,
/// pixel data deflated by zlib (`compress2`, level 9) and chunk CRCs from zlib's `crc32`.
///
/// Layout of `pixels`: row-major from the top-left, `width * height` bytes for greyscale,
/// `3 * width * height` bytes (R, G, B) for RGB. The output is deterministic.
public enum PNG {
  public enum ColorType: UInt8, Sendable {
    case grey = 0
    case rgb = 2
    var channels: Int { self == .grey ? 1 : 3 }
  }

  /// The bytes of a PNG file.
  public static func encode(width: Int, height: Int, color: ColorType, pixels: [UInt8]) -> [UInt8] {
    precondition(width >= 1 && height >= 1 && width <= Int(Int32.max) && height <= Int(Int32.max), "PNG size")
    let rowBytes = width * color.channels
    precondition(pixels.count == rowBytes * height, "PNG: expected \(rowBytes * height) pixel bytes")
    // Scanlines, each prefixed by its filter type (0: none).
    var raw = [UInt8]()
    raw.reserveCapacity((rowBytes + 1) * height)
    for y in 0..<height {
      raw.append(0)
      raw.append(contentsOf: pixels[(y * rowBytes)..<((y + 1) * rowBytes)])
    }
    var header = [UInt8]()
    header += bigEndian32(width) + bigEndian32(height)
    header += [8, color.rawValue, 0, 0, 0]  // bit depth, colour type, deflate, filter 0, no interlace
    var file: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    file += chunk("IHDR", header)
    file += chunk("IDAT", zlibCompress(raw))
    file += chunk("IEND", [])
    return file
  }

  /// Writes a PNG file.
  public static func write(to url: URL, width: Int, height: Int, color: ColorType, pixels: [UInt8]) throws(DataError) {
    let bytes = encode(width: width, height: height, color: color, pixels: pixels)
    do {
      try Data(bytes).write(to: url, options: .atomic)
    } catch {
      throw DataError(url: url, "could not be written (\(error.localizedDescription))")
    }
  }

  /// length, type, data, CRC-32 of type and data.
  private static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
    let typeBytes = Array(type.utf8)
    return bigEndian32(data.count) + typeBytes + data + bigEndian32(Int(Gzip.crc32(typeBytes + data)))
  }

  private static func bigEndian32(_ value: Int) -> [UInt8] {
    (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * (3 - $0))) }
  }

  /// A zlib stream (RFC 1950) of `input`.
  private static func zlibCompress(_ input: [UInt8]) -> [UInt8] {
    var length = compressBound(uLong(input.count))
    var output = [UInt8](repeating: 0, count: Int(length))
    let status = output.withUnsafeMutableBufferPointer { out in
      input.withUnsafeBufferPointer { inBuffer in
        compress2(out.baseAddress, &length, inBuffer.baseAddress, uLong(inBuffer.count), 9)
      }
    }
    precondition(status == Z_OK, "zlib compress2 failed (\(status))")
    return Array(output[0..<Int(length)])
  }
}
