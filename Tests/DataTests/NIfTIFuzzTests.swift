import Dataset
import Foundation
import Reference
import Testing
import TestSupport

/// Seeded random corruptions of valid files: the reader must throw a `DataError` or return a
/// consistent volume, and never trap (a trap would end the test process).
struct NIfTIFuzzTests {
  /// Header fields worth corrupting: (offset, width) in the NIfTI-1 header.
  static let fields: [(Int, Int)] = [
    (0, 4), (40, 2), (42, 2), (44, 2), (46, 2), (48, 2), (50, 2), (70, 2), (72, 2), (76, 4), (80, 4),
    (108, 4), (112, 4), (116, 4), (252, 2), (254, 2), (344, 4), (348, 1),
  ]
  /// Values that hit edge cases: 0, ±1, extremes, NaN/Inf patterns, sizes near the header.
  static let interesting: [UInt64] = [
    0, 1, 0xFFFF_FFFF_FFFF_FFFF, 7, 8, 0x7FFF, 0x8000, 0x7FFF_FFFF, 0x8000_0000, 0x7FC0_0000, 0x7F80_0000,
    0xFF80_0000, 348, 352, 0x43B0_0000, 0x4F00_0000, 540, 1024,
  ]

  static func corrupt(_ base: [UInt8], rng: inout SplitMix64) -> [UInt8] {
    var bytes = base
    switch rng.int(below: 5) {
    case 0:  // Bit flips, mostly in the header.
      for _ in 0..<(1 + rng.int(below: 8)) {
        let limit = rng.bernoulli(0.7) ? min(352, bytes.count) : bytes.count
        bytes[rng.int(below: limit)] ^= UInt8(1 << rng.int(below: 8))
      }
    case 1:  // Truncation.
      bytes = Array(bytes.prefix(rng.int(below: bytes.count)))
    case 2:  // One header field set to an interesting value.
      let (offset, width) = fields[rng.int(below: fields.count)]
      let value = interesting[rng.int(below: interesting.count)]
      let bigEndian = rng.bernoulli(0.5)
      for k in 0..<width where offset + k < bytes.count {
        let shift = 8 * (bigEndian ? width - 1 - k : k)
        bytes[offset + k] = UInt8(truncatingIfNeeded: value >> UInt64(shift))
      }
    case 3:  // Random bytes over a random run.
      let start = rng.int(below: bytes.count)
      for k in start..<min(bytes.count, start + 1 + rng.int(below: 16)) { bytes[k] = UInt8(rng.int(below: 256)) }
    default:  // Several field changes at once.
      for _ in 0..<3 {
        let (offset, width) = fields[rng.int(below: fields.count)]
        let value = UInt64(truncatingIfNeeded: rng.next())
        for k in 0..<width where offset + k < bytes.count {
          bytes[offset + k] = UInt8(truncatingIfNeeded: value >> UInt64(8 * k))
        }
      }
    }
    return bytes
  }

  static func check(_ bytes: [UInt8], name: String) -> Bool {
    do {
      let volume = try NIfTIVolume.decode(bytes, file: name)
      return volume.values.count == volume.shape.reduce(1, *) && volume.spacing.count == volume.shape.count
        && (1...4).contains(volume.shape.count)
    } catch {
      return !error.description.contains("\n") && error.description.hasPrefix(name)
    }
  }

  @Test("2,000 seeded corruptions of valid files give an error or a consistent volume")
  func corruptionsNeverTrap() throws {
    let nifti1 = try smallVolume().encoded()
    let bigEndian = try smallVolume(dataType: .float32, shape: [4, 3, 2]).encoded(byteOrder: .bigEndian)
    let nifti2Gz = try Data(contentsOf: fixturesDirectory.appendingPathComponent("nifti/nibabel/example_nifti2.nii.gz"))
    let nifti2 = try Gzip.decompress([UInt8](nifti2Gz))
    let bases: [(String, [UInt8], Bool)] = [
      ("le.nii", nifti1, false), ("be.nii", bigEndian, false), ("le.nii.gz", nifti1, true),
      ("n2.nii", nifti2, false),
    ]
    var rng = SplitMix64(seed: 2024, stream: 4)
    var errors = 0, accepted = 0
    for case_ in 0..<2000 {
      let (name, base, compress) = bases[case_ % bases.count]
      var bytes = base
      // NIfTI-2 fields sit elsewhere: corrupt its header by flips and truncation only.
      bytes = name == "n2.nii" && rng.bernoulli(0.5) ? Array(bytes.prefix(rng.int(below: 700))) : Self.corrupt(bytes, rng: &rng)
      if compress {
        // Corrupt either the payload before compression or the compressed stream itself.
        bytes = rng.bernoulli(0.5) ? Gzip.compress(bytes, level: 1) : Self.corrupt(Gzip.compress(base, level: 1), rng: &rng)
      }
      let fine = Self.check(bytes, name: name)
      #expect(fine, "case \(case_) (\(name)) broke the contract")
      do { _ = try NIfTIVolume.decode(bytes, file: name); accepted += 1 } catch { errors += 1 }
    }
    // Both outcomes occur: the corruptions are neither all harmless nor all fatal.
    #expect(errors > 200 && accepted > 200, "errors \(errors), accepted \(accepted)")
  }
}
