import Dataset
import Foundation
import Testing

/// The ACDC loader on small hand-written datasets: the layout, and every bad input.
struct ACDCLoaderTests {
  /// Writes `training/patientNNN` (or testing for id > 100) with Info.cfg (ED 1, ES 5) and 20 x 16
  /// x 3 volumes: a labelled square on slices 0 and 1, none on slice 2.
  static func writePatient(_ id: Int, group: PathologyGroup, root: URL) throws {
    let folder = root.appendingPathComponent(id <= 100 ? "training" : "testing")
      .appendingPathComponent(String(format: "patient%03d", id))
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    try Data("ED: 1\nES: 5\nGroup: \(group.rawValue)\nHeight: 170.0\nNbFrame: 20\nWeight: 70.0\n".utf8)
      .write(to: folder.appendingPathComponent("Info.cfg"))
    let shape = [20, 16, 3]
    var image: [Double] = [], labels: [Double] = []
    for z in 0..<3 {
      for y in 0..<16 {
        for x in 0..<20 {
          image.append(Double((x * 7 + y * 3 + z * 11 + id) % 50))
          labels.append(z < 2 && (6...9).contains(x) && (5...8).contains(y) ? Double(1 + (x + y) % 3) : 0)
        }
      }
    }
    for frame in [1, 5] {
      let stem = String(format: "patient%03d_frame%02d", id, frame)
      try NIfTIVolume(shape: shape, spacing: [1.5, 1.5, 10], dataType: .float32, values: image)
        .write(to: folder.appendingPathComponent(stem + ".nii.gz"))
      try NIfTIVolume(shape: shape, spacing: [1.5, 1.5, 10], dataType: .uint8, values: labels)
        .write(to: folder.appendingPathComponent(stem + "_gt.nii.gz"))
    }
  }

  static func smallDataset() throws -> TemporaryFolder {
    let folder = TemporaryFolder("acdc")
    try writePatient(3, group: .nor, root: folder.url)
    try writePatient(1, group: .dcm, root: folder.url)
    try writePatient(102, group: .rv, root: folder.url)
    // Entries the loader ignores.
    try Data("x".utf8).write(to: folder.url.appendingPathComponent("training/MANDATORY_CITATION.md"))
    try FileManager.default.createDirectory(
      at: folder.url.appendingPathComponent("training/notapatient"), withIntermediateDirectories: true)
    return folder
  }

  static func patientFile(_ root: URL, _ id: Int, _ name: String) -> URL {
    root.appendingPathComponent(id <= 100 ? "training" : "testing")
      .appendingPathComponent(String(format: "patient%03d", id)).appendingPathComponent(name)
  }

  @Test("whatever patient folders exist are loaded, sorted, with groups and kept slices")
  func loadsLayout() throws {
    let folder = try Self.smallDataset()
    let data = try ACDCDataset.load(root: folder.url, preprocessing: Preprocessing(size: 24))
    #expect(data.training.map(\.id) == [1, 3])
    #expect(data.testing.map(\.id) == [102])
    #expect(data.training.map(\.group) == [.dcm, .nor])
    for patient in data.training + data.testing {
      #expect(patient.info.endSystoleFrame == 5)
      for volume in patient.volumes {
        #expect(volume.geometry.keptSlices == [0, 1])
        #expect(volume.geometry.cropX == 0..<20 && volume.geometry.cropY == 0..<16)
        #expect(volume.slices.allSatisfy { $0.image.count == 576 && $0.label.count == 576 })
      }
    }
    #expect(data.testVolumes.count == 2)
  }

  @Test("a missing dataset folder, and a folder without the ACDC layout")
  func missingFolder() throws {
    let folder = TemporaryFolder()
    expectDataError(naming: "nowhere", containing: "no such folder") {
      _ = try ACDCDataset.load(root: folder.file("nowhere"))
    }
    expectDataError(naming: folder.url.lastPathComponent, containing: "neither a training/ nor a testing/") {
      _ = try ACDCDataset.load(root: folder.url)
    }
  }

  @Test("a missing frame file") func missingFrame() throws {
    let folder = try Self.smallDataset()
    try FileManager.default.removeItem(at: Self.patientFile(folder.url, 3, "patient003_frame05_gt.nii.gz"))
    expectDataError(naming: "patient003_frame05_gt.nii.gz", containing: "missing frame file") {
      _ = try ACDCDataset.load(root: folder.url)
    }
  }

  @Test("a missing Info.cfg, and one missing a key") func badInfo() throws {
    let folder = try Self.smallDataset()
    let info = Self.patientFile(folder.url, 1, "Info.cfg")
    try Data("ED: 1\nES: 5\n".utf8).write(to: info)
    expectDataError(naming: "patient001/Info.cfg", containing: "missing required key 'Group'") {
      _ = try ACDCDataset.load(root: folder.url)
    }
    try FileManager.default.removeItem(at: info)
    expectDataError(naming: "patient001/Info.cfg", containing: "missing") {
      _ = try ACDCDataset.load(root: folder.url)
    }
  }

  @Test("a truncated frame file") func truncatedFrame() throws {
    let folder = try Self.smallDataset()
    let url = Self.patientFile(folder.url, 102, "patient102_frame01.nii.gz")
    let data = try Data(contentsOf: url)
    try data.prefix(data.count - 40).write(to: url)
    expectDataError(naming: "patient102_frame01.nii.gz", containing: "truncated") {
      _ = try ACDCDataset.load(root: folder.url)
    }
  }

  @Test("a label value outside 0-3") func labelOutOfRange() throws {
    let folder = try Self.smallDataset()
    let url = Self.patientFile(folder.url, 3, "patient003_frame01_gt.nii.gz")
    var labels = try NIfTIVolume.read(from: url)
    labels.values[20 * 6 + 7] = 4
    try labels.write(to: url)
    expectDataError(naming: "patient003_frame01_gt.nii.gz", containing: "label value 4.0 at voxel (7, 6, 0) is outside 0-3") {
      _ = try ACDCDataset.load(root: folder.url)
    }
  }

  @Test("image and label shapes that differ") func shapeMismatch() throws {
    let folder = try Self.smallDataset()
    let url = Self.patientFile(folder.url, 1, "patient001_frame05_gt.nii.gz")
    try NIfTIVolume(shape: [20, 16, 2], spacing: [1.5, 1.5, 10], dataType: .uint8, values: Array(repeating: 1, count: 640))
      .write(to: url)
    expectDataError(naming: "patient001_frame05_gt.nii.gz", containing: "label shape [20, 16, 2] differs from the image shape [20, 16, 3]") {
      _ = try ACDCDataset.load(root: folder.url)
    }
  }

  @Test("a frame file that is not NIfTI at all, and a corrupt gzip stream") func garbageFrame() throws {
    let folder = try Self.smallDataset()
    let url = Self.patientFile(folder.url, 3, "patient003_frame05.nii.gz")
    try Data(Gzip.compress(Array("hello, I am not a NIfTI file at all".utf8))).write(to: url)
    expectDataError(naming: "patient003_frame05.nii.gz", containing: "not a NIfTI file") {
      _ = try ACDCDataset.load(root: folder.url)
    }
    var bytes = Gzip.compress(try NIfTIVolume.read(from: Self.patientFile(folder.url, 1, "patient001_frame01.nii.gz")).encoded())
    for k in 30..<60 { bytes[k] = 0xFF }
    try Data(bytes).write(to: url)
    expectDataError(naming: "patient003_frame05.nii.gz", containing: "corrupt gzip stream") {
      _ = try ACDCDataset.load(root: folder.url)
    }
  }
}
