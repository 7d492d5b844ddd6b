import Dataset
import Foundation

/// `verify phantom --out DIR [--seed N] [--difficulty D] [--grid G] [--patients LIST] [--png FILE]
/// [--checksum]`: writes the synthetic ACDC-like phantom and/or a picture of it.
enum PhantomCommand: VerifyCommand {
  static let name = "phantom"
  static let summary = "write the synthetic ACDC-like phantom (docs/PHANTOM.md) and/or a PNG of it"
  static let options = [
    OptionSpec("out", value: true), OptionSpec("seed", value: true), OptionSpec("difficulty", value: true),
    OptionSpec("grid", value: true), OptionSpec("patients", value: true), OptionSpec("png", value: true),
    OptionSpec("checksum", value: false),
  ]
  static let help = """
    usage: verify phantom --out DIR [--seed N] [--difficulty D] [--grid G] [--patients LIST]
                          [--png FILE] [--checksum]

    Writes the synthetic phantom of docs/PHANTOM.md in the ACDC layout under DIR: training/patient001-100
    and testing/patient101-150 (groups DCM, HCM, MINF, NOR, RV in blocks of 20 and 10, as ACDC),
    each with Info.cfg and the ED and ES frames as NIfTI (float32 images in [0, 1], uint8 labels
    0 background, 1 RV, 2 myocardium, 3 LV). No 4D cine is written. It is a synthetic phantom, not
    ACDC. The same options give byte-identical files.

      --out DIR         dataset folder (created; the written files replace existing ones, other
                        files are left alone)
      --seed N          random seed (default 1)
      --difficulty D    variability, distractors and artefacts, 0...4 (default 1.0)
      --grid G          pixels per slice side, 16...1024 (default 128)
      --patients LIST   patient numbers to write, e.g. 1-100 or 1,21,101 (default 1-150)
      --png FILE        also (or only, without --out) draw a few slices with label overlays
      --checksum        print the dataset checksum (paths and decompressed contents) after writing
    """

  static func run(_ options: inout Options) throws {
    try options.requireNoPositional(name)
    let seed = try options.uint64("seed", default: 1)
    let difficulty = try options.double("difficulty", default: 1, range: 0...4)
    let grid = try options.int("grid", default: 128, range: 16...1024)
    let patients = try parsePatients(options.string("patients") ?? "1-150")
    let out = options.string("out")
    let png = options.string("png")
    guard out != nil || png != nil else {
      throw VerifyError("nothing to do: give --out DIR and/or --png FILE (see --help)", exitCode: 64)
    }
    if options.flag("checksum") && out == nil { throw VerifyError("--checksum needs --out", exitCode: 64) }
    let generator = PhantomGenerator(seed: seed, difficulty: difficulty, gridSize: grid, patients: patients)
    if let out {
      let root = URL(fileURLWithPath: out)
      print("synthetic phantom (not ACDC): seed \(seed), difficulty \(difficulty), grid \(grid), \(patients.count) patient\(patients.count == 1 ? "" : "s") -> \(root.path)")
      let start = Date()
      let step = max(1, patients.count / 10)
      try generator.write(to: root) { done, total in
        if done % step == 0 || done == total {
          // Progress goes to standard error, unbuffered, from whichever worker thread finished.
          FileHandle.standardError.write(Data("  \(done)/\(total) patients\n".utf8))
        }
      }
      print(String(format: "wrote %d patients in %.1f s", patients.count, Date().timeIntervalSince(start)))
      if options.flag("checksum") {
        print("checksum \(try PhantomGenerator.checksum(ofDatasetAt: root))")
      }
    }
    if let png {
      let url = URL(fileURLWithPath: png)
      let sheet = generator.previewPNG()
      do {
        try Data(sheet).write(to: url, options: .atomic)
      } catch {
        throw VerifyError("\(url.path): could not be written (\(error.localizedDescription))")
      }
      print("wrote \(url.path): rows patients 1, 21, 41, 61, 81 (DCM, HCM, MINF, NOR, RV); columns ED base, "
        + "ED mid, ED mid + labels, ED apex + labels, ES mid, ES mid + labels (RV blue, myocardium green, LV red)")
    }
  }

  /// "1-100", "1,21,101", "1-5,101-105" -> sorted patient numbers in 1...150.
  static func parsePatients(_ text: String) throws -> [Int] {
    var ids: Set<Int> = []
    for part in text.split(separator: ",") {
      let bounds = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
      guard (1...2).contains(bounds.count), bounds.allSatisfy({ $0 != nil }), let lo = bounds.first!, let hi = bounds.last!,
        lo <= hi, lo >= 1, hi <= 150
      else {
        throw VerifyError("--patients: '\(part)' is not a patient number or range within 1-150", exitCode: 64)
      }
      ids.formUnion(lo...hi)
    }
    guard !ids.isEmpty else { throw VerifyError("--patients: no patient given", exitCode: 64) }
    return ids.sorted()
  }
}
