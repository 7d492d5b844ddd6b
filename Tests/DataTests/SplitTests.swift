import Dataset
import Foundation
import Testing

/// Seeded splits and the pathology-balanced draw, on a small in-memory dataset.
struct SplitTests {
  /// A dataset of `perGroup` training patients per group (ids 1...) and 3 testing patients, each
  /// volume with `slices` one-pixel slices.
  static func dataset(perGroup: Int = 4, slices: Int = 5) -> ACDCDataset {
    func volume(_ id: Int, _ group: PathologyGroup, _ phase: CardiacPhase) -> PreparedVolume {
      let list = (0..<slices).map { PreparedSlice(image: [Float($0)], label: [1], patient: id, phase: phase, sliceIndex: $0) }
      let geometry = VolumeGeometry(
        originalShape: [1, 1, slices], spacing: [1, 1, 10],
        orientation: NIfTIVolume(shape: [1], spacing: [1], dataType: .uint8, values: [0]).geometry, cropX: 0..<1,
        cropY: 0..<1, size: 1, intensityWindow: 0...1, keptSlices: Array(0..<slices))
      return PreparedVolume(patient: id, group: group, phase: phase, slices: list, geometry: geometry)
    }
    func patient(_ id: Int, _ group: PathologyGroup) -> PreparedPatient {
      PreparedPatient(
        id: id, info: PatientInfo(endDiastoleFrame: 1, endSystoleFrame: 10, group: group),
        endDiastole: volume(id, group, .ed), endSystole: volume(id, group, .es))
    }
    var training: [PreparedPatient] = []
    for (g, group) in PathologyGroup.allCases.enumerated() {
      for k in 0..<perGroup { training.append(patient(1 + g * perGroup + k, group)) }
    }
    let testing = (0..<3).map { patient(101 + $0, PathologyGroup.allCases[$0]) }
    return ACDCDataset(root: URL(fileURLWithPath: "/data/acdc"), preprocessing: Preprocessing(), training: training, testing: testing)
  }

  static func key(_ s: PreparedSlice) -> String { "\(s.patient)-\(s.phase)-\(s.sliceIndex)" }

  @Test("the pretraining split is 90/10 by slice, disjoint, complete, and fixed by its seed")
  func pretrainingSplit() {
    let data = Self.dataset()
    let split = data.pretrainingSplit(seed: 5)
    let total = 20 * 2 * 5
    #expect(split.train.count == 180 && split.validation.count == 20)
    let keys = Set((split.train + split.validation).map(Self.key))
    #expect(keys.count == total)
    #expect(data.pretrainingSplit(seed: 5) == split)
    #expect(data.pretrainingSplit(seed: 6).validation.map(Self.key) != split.validation.map(Self.key))
    #expect((split.train + split.validation).allSatisfy { $0.patient <= 100 })
  }

  @Test("test volumes: every testing patient's ED and ES, in order")
  func testVolumes() {
    let volumes = Self.dataset().testVolumes
    #expect(volumes.map(\.patient) == [101, 101, 102, 102, 103, 103])
    #expect(volumes.map(\.phase) == [.ed, .es, .ed, .es, .ed, .es])
  }

  @Test("n < 5 draws n distinct groups, one patient each", arguments: [1, 2, 3, 4])
  func smallDraw(n: Int) throws {
    let data = Self.dataset()
    for seed in UInt64(0)..<20 {
      let draw = try data.drawLabelledPatients(count: n, seed: seed)
      #expect(draw.patients.count == n && Set(draw.groups).count == n)
      #expect(draw.patients == draw.patients.sorted())
      for (id, group) in zip(draw.patients, draw.groups) {
        #expect(data.training.first { $0.id == id }?.group == group)
      }
      #expect(try data.drawLabelledPatients(count: n, seed: seed) == draw)
    }
    // Over seeds, different patients and groups come up.
    let firsts = Set(try (UInt64(0)..<20).map { try data.drawLabelledPatients(count: n, seed: $0).patients })
    #expect(firsts.count > 3)
  }

  @Test("n >= 5 draws n / 5 patients from every group", arguments: [5, 10, 20])
  func balancedDraw(n: Int) throws {
    let draw = try Self.dataset().drawLabelledPatients(count: n, seed: 3)
    #expect(draw.patients.count == n)
    for group in PathologyGroup.allCases { #expect(draw.groups.filter { $0 == group }.count == n / 5) }
    #expect(Set(draw.patients).count == n)
    #expect(draw.description.hasPrefix("\(n) labelled patients (seed 3): patient0"))
  }

  @Test("impossible draws are clear errors naming the dataset")
  func impossibleDraws() {
    let data = Self.dataset(perGroup: 4)
    expectDataError(naming: "acdc", containing: "group NOR has 4 training patients, 5 needed") {
      _ = try data.drawLabelledPatients(count: 25, seed: 1)
    }
    expectDataError(naming: "acdc", containing: "multiple of 5") {
      _ = try data.drawLabelledPatients(count: 7, seed: 1)
    }
    expectDataError(naming: "acdc", containing: "at least 1") {
      _ = try data.drawLabelledPatients(count: 0, seed: 1)
    }
    var twoGroups = data
    twoGroups.training = data.training.filter { $0.group == .nor || $0.group == .rv }
    expectDataError(naming: "acdc", containing: "only 2 groups have training patients") {
      _ = try twoGroups.drawLabelledPatients(count: 3, seed: 1)
    }
  }

  @Test("the labelled split holds exactly the drawn patients' slices, 90/10")
  func labelledSplit() throws {
    let data = Self.dataset()
    let draw = try data.drawLabelledPatients(count: 2, seed: 9)
    let split = data.labelledSplit(draw)
    #expect(split.train.count == 18 && split.validation.count == 2)
    #expect(Set((split.train + split.validation).map(\.patient)) == Set(draw.patients))
    #expect(data.labelledSplit(draw) == split)
  }
}
