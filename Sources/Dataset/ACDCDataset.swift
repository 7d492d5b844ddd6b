import Dispatch
import Foundation

/// A patient with both prepared frames.
public struct PreparedPatient: Sendable, Equatable {
  /// The ACDC patient number (the digits of `patientNNN`).
  public var id: Int
  public var info: PatientInfo
  public var endDiastole: PreparedVolume
  public var endSystole: PreparedVolume

  public init(id: Int, info: PatientInfo, endDiastole: PreparedVolume, endSystole: PreparedVolume) {
    self.id = id
    self.info = info
    self.endDiastole = endDiastole
    self.endSystole = endSystole
  }

  public var group: PathologyGroup { info.group }
  /// ED then ES.
  public var volumes: [PreparedVolume] { [endDiastole, endSystole] }
  /// Every kept slice, ED first, each in ascending z.
  public var slices: [PreparedSlice] { endDiastole.slices + endSystole.slices }
}

/// An ACDC-layout dataset on disk, loaded and preprocessed.
///
/// Layout: `root/training/patientNNN/` and `root/testing/patientNNN/`, each with `Info.cfg`,
/// `patientNNN_frameXX.nii.gz` for the ED and ES frames named in it, and
/// `patientNNN_frameXX_gt.nii.gz` label volumes (`.nii` accepted where `.nii.gz` is absent). Every
/// `patient<digits>` folder present is loaded, in ascending patient number (ACDC has 1-100 in
/// training and 101-150 in testing; any subset works). Other entries are ignored; the 4D cine is
/// not used.
public struct ACDCDataset: Sendable {
  public var root: URL
  public var preprocessing: Preprocessing
  public var training: [PreparedPatient]
  public var testing: [PreparedPatient]

  public init(root: URL, preprocessing: Preprocessing, training: [PreparedPatient], testing: [PreparedPatient]) {
    self.root = root
    self.preprocessing = preprocessing
    self.training = training
    self.testing = testing
  }

  /// Loads and preprocesses every patient under `root`, in parallel across patients (the result
  /// does not depend on the thread count).
  /// - Throws: `DataError` naming the file or folder: a missing root, a root with neither
  ///   `training/` nor `testing/`, a missing `Info.cfg` or frame, an `Info.cfg` missing ED, ES or
  ///   Group, any NIfTI problem, a label outside 0-3, an image/label shape mismatch. When several
  ///   patients fail, the first in (subset, patient number) order is reported.
  public static func load(root: URL, preprocessing: Preprocessing = Preprocessing()) throws(DataError) -> ACDCDataset {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isFolder) else {
      throw DataError(url: root, "no such folder (expected an ACDC-layout dataset with training/ and testing/)")
    }
    guard isFolder.boolValue else { throw DataError(url: root, "is a file, expected an ACDC-layout folder") }
    let subsets = ["training", "testing"].map { root.appendingPathComponent($0) }
    let present = subsets.filter { FileManager.default.fileExists(atPath: $0.path) }
    guard !present.isEmpty else {
      throw DataError(url: root, "has neither a training/ nor a testing/ folder (expected the ACDC layout)")
    }
    let training = try loadSubset(subsets[0], preprocessing: preprocessing)
    let testing = try loadSubset(subsets[1], preprocessing: preprocessing)
    guard !(training.isEmpty && testing.isEmpty) else {
      throw DataError(url: root, "has no patientNNN folders under training/ or testing/")
    }
    return ACDCDataset(root: root, preprocessing: preprocessing, training: training, testing: testing)
  }

  /// The patient folders of one subset folder, by ascending number; empty when it is absent.
  public static func patientFolders(in subset: URL) throws(DataError) -> [(id: Int, folder: URL)] {
    guard FileManager.default.fileExists(atPath: subset.path) else { return [] }
    let names: [String]
    do {
      names = try FileManager.default.contentsOfDirectory(atPath: subset.path)
    } catch {
      throw DataError(url: subset, "could not be listed (\(error.localizedDescription))")
    }
    var found: [(id: Int, folder: URL)] = []
    for name in names where name.hasPrefix("patient") {
      let digits = name.dropFirst("patient".count)
      guard !digits.isEmpty, digits.count <= 6, digits.allSatisfy(\.isASCII), let id = Int(digits) else { continue }
      let folder = subset.appendingPathComponent(name)
      var isFolder: ObjCBool = false
      if FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder), isFolder.boolValue {
        found.append((id, folder))
      }
    }
    return found.sorted { $0.id < $1.id }
  }

  static func loadSubset(_ subset: URL, preprocessing: Preprocessing) throws(DataError) -> [PreparedPatient] {
    let folders = try patientFolders(in: subset)
    let results = UnsafeMutableBufferPointer<Result<PreparedPatient, DataError>?>.allocate(capacity: folders.count)
    results.initialize(repeating: nil)
    defer { results.deallocate() }
    // Each iteration writes only its own slot: the writes are disjoint.
    nonisolated(unsafe) let slots = results
    DispatchQueue.concurrentPerform(iterations: folders.count) { k in
      do throws(DataError) {
        slots[k] = .success(try loadPatient(id: folders[k].id, folder: folders[k].folder, preprocessing: preprocessing))
      } catch {
        slots[k] = .failure(error)
      }
    }
    var patients: [PreparedPatient] = []
    for slot in results {
      switch slot! {
      case .success(let patient): patients.append(patient)
      case .failure(let error): throw error
      }
    }
    return patients
  }

  /// Loads and prepares one patient folder.
  public static func loadPatient(id: Int, folder: URL, preprocessing: Preprocessing) throws(DataError) -> PreparedPatient {
    let infoURL = folder.appendingPathComponent("Info.cfg")
    guard FileManager.default.fileExists(atPath: infoURL.path) else {
      throw DataError(url: infoURL, "missing (every patient folder needs an Info.cfg with ED, ES and Group)")
    }
    let text: String
    do {
      text = try String(contentsOf: infoURL, encoding: .utf8)
    } catch {
      throw DataError(url: infoURL, "could not be read as UTF-8 text")
    }
    let info = try PatientInfo(parsing: text, file: infoURL.path)
    func volume(_ phase: CardiacPhase) throws(DataError) -> PreparedVolume {
      let stem = String(format: "patient%03d_frame%02d", id, info.frame(phase))
      let imageURL = try frameFile(folder: folder, stem: stem)
      let labelURL = try frameFile(folder: folder, stem: stem + "_gt")
      let image = try NIfTIVolume.read(from: imageURL)
      let labels = try NIfTIVolume.read(from: labelURL)
      return try preprocessing.prepare(
        image: image, labels: labels, patient: id, group: info.group, phase: phase, imageFile: imageURL.path,
        labelFile: labelURL.path)
    }
    return PreparedPatient(id: id, info: info, endDiastole: try volume(.ed), endSystole: try volume(.es))
  }

  /// `stem.nii.gz`, else `stem.nii`; a missing file is an error naming the `.nii.gz` path.
  static func frameFile(folder: URL, stem: String) throws(DataError) -> URL {
    let gz = folder.appendingPathComponent(stem + ".nii.gz")
    if FileManager.default.fileExists(atPath: gz.path) { return gz }
    let plain = folder.appendingPathComponent(stem + ".nii")
    if FileManager.default.fileExists(atPath: plain.path) { return plain }
    throw DataError(url: gz, "missing frame file (named by Info.cfg)")
  }
}
