import CZlib

/// gzip through the system zlib: decompression of single- and multi-member streams, and
/// deterministic compression.
///
/// Guarantees:
/// - `decompress` never traps on bad input: a truncated stream, a corrupt block, a wrong CRC-32 or
///   length in a member trailer, or trailing garbage all throw a `GzipError` with a one-line reason.
/// - `compress` output depends only on the input bytes, the level and the zlib build: the gzip
///   header carries no file name and a zero modification time, and the OS byte is fixed (255,
///   "unknown"), so the same input gives the same bytes on every run.
public enum Gzip {
  /// The largest output `decompress` produces by default (2 GiB): a bound for corrupt inputs that
  /// claim to expand without end. NIfTI volumes of this project are a few megabytes.
  public static let defaultOutputLimit = 1 << 31

  /// True when `bytes` starts with the gzip magic 1f 8b.
  public static func hasMagic(_ bytes: [UInt8]) -> Bool {
    bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
  }

  /// Inflates a gzip (or zlib) stream. Concatenated gzip members are decompressed one after the
  /// other and their outputs joined, as `gzip -d` does; zero bytes after the last member (tape
  /// padding) are ignored; any other trailing byte is an error.
  /// - Parameter limit: the largest output accepted; more is an error.
  public static func decompress(_ input: [UInt8], limit: Int = defaultOutputLimit) throws(GzipError) -> [UInt8] {
    guard input.count <= Int(UInt32.max) else { throw GzipError("compressed input larger than 4 GiB") }
    guard !input.isEmpty else { throw GzipError("the gzip stream is empty") }
    var stream = z_stream()
    // 15 + 32: the largest window, with automatic gzip/zlib header detection.
    guard inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
      throw GzipError("zlib could not start a decompressor")
    }
    defer { inflateEnd(&stream) }
    let chunkSize = 1 << 18
    let chunk = UnsafeMutablePointer<UInt8>.allocate(capacity: chunkSize)
    defer { chunk.deallocate() }
    var output = [UInt8]()
    output.reserveCapacity(min(sizeHint(input), limit))
    var failure: GzipError?
    input.withUnsafeBufferPointer { inBuffer in
      guard let base = inBuffer.baseAddress else { return }
      stream.next_in = UnsafeMutablePointer(mutating: base)
      stream.avail_in = uInt(inBuffer.count)
      while true {
        stream.next_out = chunk
        stream.avail_out = uInt(chunkSize)
        let status = inflate(&stream, Z_NO_FLUSH)
        let produced = chunkSize - Int(stream.avail_out)
        if output.count + produced > limit {
          failure = GzipError("the stream expands beyond \(limit) bytes")
          return
        }
        output.append(contentsOf: UnsafeBufferPointer(start: chunk, count: produced))
        switch status {
        case Z_OK:
          continue
        case Z_STREAM_END:
          let remaining = Int(stream.avail_in)
          if remaining == 0 { return }
          let rest = UnsafeBufferPointer(start: base + (inBuffer.count - remaining), count: remaining)
          if remaining >= 2 && rest[0] == 0x1F && rest[1] == 0x8B {
            inflateReset(&stream)  // Next member: next_in and avail_in are kept.
            continue
          }
          if rest.allSatisfy({ $0 == 0 }) { return }
          failure = GzipError("\(remaining) unexpected bytes after the end of the gzip stream")
          return
        case Z_BUF_ERROR:
          // We always offer output space, so no progress means the input ran out.
          failure = GzipError("the gzip stream is truncated (ends before its end-of-stream marker)")
          return
        case Z_NEED_DICT:
          failure = GzipError("the stream needs a preset dictionary (not a gzip file)")
          return
        case Z_MEM_ERROR:
          failure = GzipError("zlib ran out of memory")
          return
        default:
          let reason = stream.msg.map { String(cString: $0) } ?? "error \(status)"
          failure = GzipError("corrupt gzip stream (zlib: \(reason))")
          return
        }
      }
    }
    if let failure { throw failure }
    return output
  }

  /// Deflates `input` into one gzip member at `level` (1 fastest ... 9 smallest).
  public static func compress(_ input: [UInt8], level: Int = 6) -> [UInt8] {
    precondition((1...9).contains(level), "gzip level must be in 1...9")
    precondition(input.count <= Int(UInt32.max), "gzip input larger than 4 GiB")
    var stream = z_stream()
    // 15 + 16: the largest window, with a gzip header and trailer.
    let started = deflateInit2_(
      &stream, Int32(level), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
      Int32(MemoryLayout<z_stream>.size))
    precondition(started == Z_OK, "zlib could not start a compressor")
    defer { deflateEnd(&stream) }
    var header = gz_header()
    header.time = 0
    header.os = 255
    let bound = Int(deflateBound(&stream, uLong(input.count))) + 64
    var output = [UInt8](repeating: 0, count: bound)
    var written = 0
    withUnsafeMutablePointer(to: &header) { headerPointer in
      deflateSetHeader(&stream, headerPointer)
      input.withUnsafeBufferPointer { inBuffer in
        output.withUnsafeMutableBufferPointer { outBuffer in
          stream.next_in = UnsafeMutablePointer(mutating: inBuffer.baseAddress)
          stream.avail_in = uInt(inBuffer.count)
          stream.next_out = outBuffer.baseAddress
          stream.avail_out = uInt(outBuffer.count)
          let status = deflate(&stream, Z_FINISH)
          precondition(status == Z_STREAM_END, "deflate did not finish within deflateBound")
          written = outBuffer.count - Int(stream.avail_out)
        }
      }
    }
    output.removeLast(output.count - written)
    return output
  }

  /// CRC-32 (the gzip and PNG polynomial) of `bytes`, continuing from `crc`.
  public static func crc32(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
    bytes.withUnsafeBufferPointer { buffer in
      UInt32(CZlib.crc32(uLong(crc), buffer.baseAddress, uInt(buffer.count)))
    }
  }

  /// The uncompressed size stored in the last member's trailer (modulo 2^32), used only to reserve
  /// capacity; 0 when the input is too short to have one.
  private static func sizeHint(_ input: [UInt8]) -> Int {
    guard input.count >= 18 else { return 0 }
    let n = input.count
    let isize = Int(input[n - 4]) | Int(input[n - 3]) << 8 | Int(input[n - 2]) << 16 | Int(input[n - 1]) << 24
    return min(isize, 1 << 28)
  }
}

/// A gzip stream that could not be decompressed; `reason` is one line without the file name.
public struct GzipError: Error, CustomStringConvertible, Sendable {
  public let reason: String
  public init(_ reason: String) { self.reason = reason }
  public var description: String { reason }
}
