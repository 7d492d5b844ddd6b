import Reference

/// Training and validation slices.
public struct SliceSplit: Sendable, Equatable {
  public var train: [PreparedSlice]
  public var validation: [PreparedSlice]

  /// Splits `slices` by a seeded shuffle: the first `floor(trainFraction * n)` of the permutation
  /// train, the rest validate (the code's `int(0.9 * n)` and `random_split`). The input order must
  /// be deterministic for the result to be.
  public init(slices: [PreparedSlice], trainFraction: Double = 0.9, rng: inout SplitMix64) {
    precondition((0...1).contains(trainFraction), "trainFraction must be in 0...1")
    let order = rng.permutation(slices.count)
    let trainCount = Int((trainFraction * Double(slices.count)).rounded(.down))
    train = order[..<trainCount].map { slices[$0] }
    validation = order[trainCount...].map { slices[$0] }
  }
}

/// The labelled training patients drawn for one experiment, and how.
public struct PatientDraw: Sendable, Equatable, CustomStringConvertible {
  public var count: Int
  public var seed: UInt64
  /// Patient numbers in ascending order, with their groups.
  public var patients: [Int]
  public var groups: [PathologyGroup]

  /// e.g. "3 labelled patients (seed 7): patient012 NOR, patient047 DCM, patient088 RV".
  public var description: String {
    let list = zip(patients, groups).map { "patient\(threeDigits($0)) \($1)" }.joined(separator: ", ")
    return "\(count) labelled patient\(count == 1 ? "" : "s") (seed \(seed)): \(list)"
  }
}

/// "7" -> "007".
func threeDigits(_ n: Int) -> String {
  let s = String(n)
  return s.count >= 3 ? s : String(repeating: "0", count: 3 - s.count) + s
}

extension ACDCDataset {
  /// Stream tags of the seeded draws (so the pretraining split, the patient draw and the labelled
  /// split are independent for one seed).
  static let pretrainingStream: UInt64 = 0x5052_4554  // "PRET"
  static let drawStream: UInt64 = 0x4452_4157  // "DRAW"
  static let labelledStream: UInt64 = 0x4C41_4245  // "LABE"

  /// Pretraining data: every kept slice of every training patient (ED and ES), in (patient, ED
  /// then ES, z) order, split 90/10 by slice with a shuffle seeded by `seed`.
  public func pretrainingSplit(seed: UInt64, trainFraction: Double = 0.9) -> SliceSplit {
    var rng = SplitMix64(seed: seed, stream: Self.pretrainingStream)
    return SliceSplit(slices: training.flatMap(\.slices), trainFraction: trainFraction, rng: &rng)
  }

  /// Test data: every testing patient's ED and ES volumes (for per-volume 3D Dice), in (patient,
  /// ED then ES) order.
  public var testVolumes: [PreparedVolume] { testing.flatMap(\.volumes) }

  /// Draws `count` labelled training patients, balanced by pathology group (docs/PROTOCOL.md
  /// section 1): for count < 5, `count` distinct groups drawn at random and one patient drawn from
  /// each; for count >= 5 (a multiple of 5), count / 5 patients drawn from each group. Groups are
  /// visited in the order NOR, MINF, DCM, HCM, RV; every choice comes from
  /// `SplitMix64(seed:stream:)`.
  /// - Throws: `DataError` naming the dataset root when `count` < 1, is not a multiple of 5 above
  ///   5, or exceeds what the training patients offer.
  public func drawLabelledPatients(count: Int, seed: UInt64) throws(DataError) -> PatientDraw {
    func fail(_ problem: String) -> DataError { DataError(url: root, "cannot draw \(count) labelled patients: \(problem)") }
    guard count >= 1 else { throw fail("the count must be at least 1") }
    var byGroup: [PathologyGroup: [Int]] = [:]
    for patient in training { byGroup[patient.group, default: []].append(patient.id) }
    var rng = SplitMix64(seed: seed, stream: Self.drawStream)
    var chosen: [(Int, PathologyGroup)] = []
    if count < 5 {
      let available = PathologyGroup.allCases.filter { !(byGroup[$0] ?? []).isEmpty }
      guard count <= available.count else {
        throw fail("only \(available.count) groups have training patients")
      }
      let groups = rng.permutation(available.count).prefix(count).map { available[$0] }
      for group in groups {
        let ids = byGroup[group]!
        chosen.append((ids[rng.int(below: ids.count)], group))
      }
    } else {
      guard count % 5 == 0 else { throw fail("above 5 the count must be a multiple of 5 (count / 5 from each group)") }
      let perGroup = count / 5
      for group in PathologyGroup.allCases {
        let ids = byGroup[group] ?? []
        guard ids.count >= perGroup else {
          throw fail("group \(group) has \(ids.count) training patients, \(perGroup) needed")
        }
        for k in rng.permutation(ids.count).prefix(perGroup) { chosen.append((ids[k], group)) }
      }
    }
    chosen.sort { $0.0 < $1.0 }
    return PatientDraw(count: count, seed: seed, patients: chosen.map(\.0), groups: chosen.map(\.1))
  }

  /// The drawn patients' kept slices (both frames, in patient order), split 90/10 by slice with a
  /// shuffle seeded by `draw.seed`.
  public func labelledSplit(_ draw: PatientDraw, trainFraction: Double = 0.9) -> SliceSplit {
    let chosen = Set(draw.patients)
    var rng = SplitMix64(seed: draw.seed, stream: Self.labelledStream)
    return SliceSplit(slices: training.filter { chosen.contains($0.id) }.flatMap(\.slices), trainFraction: trainFraction, rng: &rng)
  }
}
