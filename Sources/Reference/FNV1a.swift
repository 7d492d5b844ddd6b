/// 64-bit FNV-1a, the package's one non-cryptographic hash: run-folder checksums (weights files, the
/// phantom's folder), seeds derived from names (`Reproduction.stageSeed`, the regression harness),
/// and the identity of an `--init` backbone. Not for anything an adversary chooses.
public struct FNV1a: Sendable {
  public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

  public init() {}

  /// Mixes `bytes` into the hash, in order.
  public mutating func combine<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
    for byte in bytes { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
  }

  /// The hash of `bytes`.
  public static func hash<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
    var h = FNV1a()
    h.combine(bytes)
    return h.value
  }
}
