import Dispatch
import Foundation
import Reference

/// The synthetic ACDC-like phantom of docs/PHANTOM.md: a seeded generator of short-axis cardiac
/// "cine MRI" frames and their labels, written in the ACDC layout. It is a synthetic phantom, not
/// ACDC: every file it writes says so.
///
/// Guarantees:
/// - Everything derives from (seed, difficulty, grid size, patient id): the same parameters give
///   byte-identical files (with the same zlib), and a patient does not change when others are
///   added or removed (each patient has its own random streams).
/// - Patient ids and groups follow ACDC: training 1-100 and testing 101-150, in blocks of 20
///   (training) and 10 (testing) per group in the order DCM, HCM, MINF, NOR, RV.
/// - Per patient: `Info.cfg` (ED: 1, ES, Group, Height, NbFrame, Weight), and for the ED and ES
///   frames `patientNNN_frameXX.nii.gz` (float32 in [0, 1] in steps of 2^-12, G x G x n, n = 8-12 slices base to
///   apex, pixdim 1.4 * 128 / G mm in-plane and 10 mm between slices) and
///   `patientNNN_frameXX_gt.nii.gz` (uint8: 0 background, 1 RV cavity, 2 myocardium, 3 LV
///   cavity). No `_4d.nii.gz` cine is written: the loader does not use it.
///
/// Choices where docs/PHANTOM.md is silent, and deviations from it:
/// - Base to apex is t = k / (n - 1): the last slice is the apex, a solid myocardial cap with no
///   cavity and no RV. The wall thickens by 25% from base to apex, and the LV axis drifts by up
///   to 3 px from base to apex (besides the per-slice misregistration).
/// - The RV crescent is an ellipse from 0.3 R inside the LV epicardium to `depth` beyond it, with a
///   half-width of `wrap` times the slice's end-diastolic LV radius (cavity plus half the wall),
///   under the LV myocardium; its free wall is a 1-1.8 px rim of myocardial intensity. The RV
///   group's wrap is capped at 2 (docs/PHANTOM.md's 1.5-2x would give up to 3.2: a crescent wider
///   than the thorax).
/// - DCM keeps 30% of the normal systolic wall thickening (poor contraction); the MINF sector's
///   edges taper over 15 degrees.
/// - Posterior mediastinum intensity 0.38, aorta 0.95 x blood; the liver is clipped to the
///   thoracic wall.
/// - Geometry, blur, ghosting, bias, gamma and noise level are per patient (one acquisition);
///   the noise itself is drawn per frame. The ghost wraps around (MRI aliasing).
/// - Images are stored in steps of 2^-12 (exact in float32, far below the noise) so that they
///   compress.
/// - The acceptance fractions of docs/PHANTOM.md (LV 1-6%, myocardium 1-5%, RV 0.5-5% of the volume
///   at ED) hold for NOR and MINF; DCM's cavity, HCM's wall and the RV group's RV, as specified, go
///   beyond (up to about 9% of the volume; see PhantomTests).
public struct PhantomGenerator: Sendable {
  public var seed: UInt64
  /// d: scales variability, distractors and artefacts (0 gives a clean, regular phantom).
  public var difficulty: Double
  /// G: the side of every slice in pixels.
  public var gridSize: Int
  /// The patients to generate (default: all 150), a subset of 1...150.
  public var patients: [Int]

  /// The version of the generator; part of the cache folder name, bumped whenever output changes.
  public static let version = 2
  /// ACDC's group order by patient-number block.
  static let blockOrder: [PathologyGroup] = [.dcm, .hcm, .minf, .nor, .rv]

  public init(seed: UInt64, difficulty: Double = 1, gridSize: Int = 128, patients: [Int] = Array(1...150)) {
    precondition(difficulty.isFinite && difficulty >= 0 && difficulty <= 4, "difficulty must be in 0...4")
    precondition(gridSize >= 16 && gridSize <= 1024, "grid size must be in 16...1024")
    precondition(patients.allSatisfy { (1...150).contains($0) }, "phantom patients are numbered 1...150")
    self.seed = seed
    self.difficulty = difficulty
    self.gridSize = gridSize
    self.patients = Array(Set(patients)).sorted()
  }

  /// The group of a patient number (1...150).
  public static func group(of patient: Int) -> PathologyGroup {
    patient <= 100 ? blockOrder[(patient - 1) / 20] : blockOrder[(patient - 101) / 10]
  }

  /// "training" for 1...100, "testing" for 101...150.
  public static func subset(of patient: Int) -> String { patient <= 100 ? "training" : "testing" }

  /// The first `perGroup` patients of each group's block: training (perGroup <= 20) or testing
  /// (perGroup <= 10). Handy for small test datasets.
  public static func patients(trainingPerGroup: Int, testingPerGroup: Int) -> [Int] {
    precondition((0...20).contains(trainingPerGroup) && (0...10).contains(testingPerGroup))
    let training = (0..<5).flatMap { block in (1...20).prefix(trainingPerGroup).map { block * 20 + $0 } }
    let testing = (0..<5).flatMap { block in (1...10).prefix(testingPerGroup).map { 100 + block * 10 + $0 } }
    return training + testing
  }

  // MARK: - One patient in memory

  /// A generated patient: its Info.cfg and the four volumes.
  public struct Patient: Sendable {
    public var id: Int
    public var info: PatientInfo
    /// float32-valued images in [0, 1] and uint8-valued labels, ED then ES.
    public var endDiastole: (image: NIfTIVolume, labels: NIfTIVolume)
    public var endSystole: (image: NIfTIVolume, labels: NIfTIVolume)
  }

  /// Stream tags: the anatomy and acquisition of a patient, and the noise of each frame.
  private func stream(_ patient: Int, _ tag: UInt64) -> SplitMix64 {
    SplitMix64(seed: seed, stream: UInt64(patient) << 4 | tag)
  }

  /// Generates one patient (1...150) in memory.
  public func patient(_ id: Int) -> Patient {
    var rng = stream(id, 0)
    let anatomy = PhantomAnatomy(group: Self.group(of: id), difficulty: difficulty, rng: &rng)
    let info = PatientInfo(
      endDiastoleFrame: 1, endSystoleFrame: anatomy.endSystoleFrame, group: anatomy.group,
      height: (anatomy.height * 10).rounded() / 10, weight: (anatomy.weight * 10).rounded() / 10,
      frameCount: anatomy.frameCount)
    let spacing = [1.4 * 128 / Double(gridSize), 1.4 * 128 / Double(gridSize), 10]
    let shape = [gridSize, gridSize, anatomy.sliceCount]
    let origin = [-spacing[0] * Double(gridSize - 1) / 2, -spacing[1] * Double(gridSize - 1) / 2, 0]
    func frame(_ phase: CardiacPhase, noiseTag: UInt64) -> (image: NIfTIVolume, labels: NIfTIVolume) {
      let painted = PhantomImaging.paint(anatomy, phase: phase, gridSize: gridSize)
      var noise = stream(id, noiseTag)
      let image = PhantomImaging.acquire(painted.image, anatomy, gridSize: gridSize, noise: &noise)
      let description = "Pix2Rep synthetic phantom v\(Self.version) (not ACDC)"
      var imageValues = [Double](repeating: 0, count: image.count)
      var labelValues = [Double](repeating: 0, count: image.count)
      for v in 0..<image.count {
        // Quantised to multiples of 2^-12 (exact in float32, far below the noise) so that the
        // files compress; and kept exactly as written.
        imageValues[v] = (image[v] * 4096).rounded() / 4096
        labelValues[v] = Double(painted.labels[v])
      }
      return (
        NIfTIVolume(
          shape: shape, spacing: spacing, dataType: .float32, values: imageValues, origin: origin,
          descriptionText: description),
        NIfTIVolume(
          shape: shape, spacing: spacing, dataType: .uint8, values: labelValues, origin: origin,
          descriptionText: description)
      )
    }
    return Patient(id: id, info: info, endDiastole: frame(.ed, noiseTag: 1), endSystole: frame(.es, noiseTag: 2))
  }

  // MARK: - Writing

  /// gzip levels of the written files: fixed, so the bytes are reproducible. Level 1 for the
  /// noisy images (level 6 is 7x slower for 10% smaller files), 6 for the labels.
  public static let imageCompressionLevel = 1
  public static let labelCompressionLevel = 6

  /// Writes every patient of `patients` under `root` in the ACDC layout, plus a `README.txt`
  /// that says what this is. Patients are generated in parallel, each writing only its own folder.
  /// - Parameter progress: called after each patient with (patients done, total), from any thread.
  /// - Throws: `DataError` naming the first file or folder that could not be written.
  public func write(to root: URL, progress: (@Sendable (Int, Int) -> Void)? = nil) throws(DataError) {
    try createFolder(root)
    for subset in ["training", "testing"] where patients.contains(where: { Self.subset(of: $0) == subset }) {
      try createFolder(root.appendingPathComponent(subset))
    }
    let readme = """
      Pix2Rep synthetic phantom (not ACDC): a seeded imitation of the ACDC layout, specified in
      docs/PHANTOM.md of the Pix2Rep Swift package that generated it.
      generator version \(Self.version), seed \(seed), difficulty \(difficulty), grid \(gridSize), \(patients.count) patients.
      ED and ES frames only (no 4D cine). Labels: 0 background, 1 RV cavity, 2 myocardium, 3 LV cavity.

      """
    do {
      try Data(readme.utf8).write(to: root.appendingPathComponent("README.txt"), options: .atomic)
    } catch {
      throw DataError(url: root.appendingPathComponent("README.txt"), "could not be written (\(error.localizedDescription))")
    }
    let ids = patients
    let failures = UnsafeMutableBufferPointer<DataError?>.allocate(capacity: ids.count)
    failures.initialize(repeating: nil)
    defer { failures.deallocate() }
    // Each iteration writes its own slot and its own patient folder: disjoint.
    nonisolated(unsafe) let slots = failures
    let counter = Counter()
    let generator = self
    DispatchQueue.concurrentPerform(iterations: ids.count) { k in
      do throws(DataError) {
        try generator.writePatient(ids[k], root: root)
      } catch {
        slots[k] = error
      }
      let done = counter.increment()
      progress?(done, ids.count)
    }
    if let failure = failures.compactMap({ $0 }).first { throw failure }
  }

  /// Writes one patient's folder.
  func writePatient(_ id: Int, root: URL) throws(DataError) {
    let patient = patient(id)
    let name = "patient" + threeDigits(id)
    let folder = root.appendingPathComponent(Self.subset(of: id)).appendingPathComponent(name)
    try createFolder(folder)
    do {
      try Data(patient.info.text.utf8).write(to: folder.appendingPathComponent("Info.cfg"), options: .atomic)
    } catch {
      throw DataError(url: folder.appendingPathComponent("Info.cfg"), "could not be written (\(error.localizedDescription))")
    }
    for (frameNumber, volumes) in [(patient.info.endDiastoleFrame, patient.endDiastole), (patient.info.endSystoleFrame, patient.endSystole)] {
      let stem = name + "_frame" + (frameNumber < 10 ? "0" : "") + String(frameNumber)
      try volumes.image.write(to: folder.appendingPathComponent(stem + ".nii.gz"), compressionLevel: Self.imageCompressionLevel)
      try volumes.labels.write(to: folder.appendingPathComponent(stem + "_gt.nii.gz"), compressionLevel: Self.labelCompressionLevel)
    }
  }

  private func createFolder(_ url: URL) throws(DataError) {
    do {
      try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    } catch {
      throw DataError(url: url, "could not create the folder (\(error.localizedDescription))")
    }
  }

  // MARK: - Cache

  /// The cache folder name of this configuration (all patients).
  public var cacheName: String {
    "phantom-v\(Self.version)-seed\(seed)-d\(difficulty)-g\(gridSize)" + (patients == Array(1...150) ? "" : "-n\(patients.count)")
  }

  /// Generates the phantom once into `cacheDirectory/<cacheName>` and returns that folder; later
  /// calls return it at once. Generation goes to a temporary sibling folder
  /// `<cacheName>.partial-<host>-<pid>` that is renamed when complete, so an interrupted run is never
  /// mistaken for a complete dataset; leftovers of processes that no longer run are removed.
  public func ensure(cacheDirectory: URL, progress: (@Sendable (Int, Int) -> Void)? = nil) throws(DataError) -> URL {
    let final = cacheDirectory.appendingPathComponent(cacheName, isDirectory: true)
    if FileManager.default.fileExists(atPath: final.path) { return final }
    try createFolder(cacheDirectory)
    removeAbandonedPartials(in: cacheDirectory)
    let partial = cacheDirectory.appendingPathComponent(
      cacheName + ".partial-\(Self.host)-\(ProcessInfo.processInfo.processIdentifier)", isDirectory: true)
    try? FileManager.default.removeItem(at: partial)
    try write(to: partial, progress: progress)
    do {
      try FileManager.default.moveItem(at: partial, to: final)
    } catch {
      // Another process may have finished first: use its copy.
      try? FileManager.default.removeItem(at: partial)
      guard FileManager.default.fileExists(atPath: final.path) else {
        throw DataError(url: final, "could not move the generated phantom into place (\(error.localizedDescription))")
      }
    }
    return final
  }

  /// This machine's name: partial folders carry it, because on a file system shared by several
  /// machines (a cluster's jobs) a process id means something only on the machine that made it.
  package static let host = ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_")

  /// Removes `<cacheName>.partial-<host>-<pid>` folders of this machine whose process is gone (a
  /// generation that was interrupted); those of running processes, and every other machine's, are
  /// left alone.
  private func removeAbandonedPartials(in cacheDirectory: URL) {
    let prefix = cacheName + ".partial-\(Self.host)-"
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: cacheDirectory.path) else { return }
    for name in names where name.hasPrefix(prefix) {
      guard let pid = Int32(name.dropFirst(prefix.count)), pid > 0 else { continue }
      if kill(pid, 0) != 0 && errno == ESRCH {
        try? FileManager.default.removeItem(at: cacheDirectory.appendingPathComponent(name))
      }
    }
  }

  // MARK: - Checksum

  /// A 64-bit FNV-1a checksum (16 hex digits) of a dataset folder: every regular file's relative
  /// path and *decompressed* content (`.gz` files are inflated, so the checksum does not depend on
  /// the zlib build), in sorted path order.
  public static func checksum(ofDatasetAt root: URL) throws(DataError) -> String {
    guard let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) else {
      throw DataError(url: root, "could not be listed")
    }
    var files: [(String, URL)] = []
    let prefix = root.standardizedFileURL.path + "/"
    for case let url as URL in enumerator {
      guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
      let path = url.standardizedFileURL.path
      files.append((path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path, url))
    }
    var hash = FNV1a()
    for (relative, url) in files.sorted(by: { $0.0 < $1.0 }) {
      guard let data = try? Data(contentsOf: url) else { throw DataError(url: url, "could not be read") }
      var bytes = [UInt8](data)
      if relative.hasSuffix(".gz") {
        do { bytes = try Gzip.decompress(bytes) } catch { throw DataError(url: url, error.reason) }
      }
      hash.combine(relative.utf8)
      hash.combine([0])
      hash.combine(bytes)
    }
    let hex = String(hash.value, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
  }
}

/// Generates (once) the default phantom into a cache folder and returns its root; see
/// `PhantomGenerator.ensure(cacheDirectory:progress:)`.
public func ensurePhantom(
  cacheDirectory: URL, seed: UInt64, difficulty: Double = 1, gridSize: Int = 128,
  progress: (@Sendable (Int, Int) -> Void)? = nil
) throws(DataError) -> URL {
  try PhantomGenerator(seed: seed, difficulty: difficulty, gridSize: gridSize).ensure(
    cacheDirectory: cacheDirectory, progress: progress)
}

/// A thread-safe counter for progress reports.
final class Counter: @unchecked Sendable {
  private let lock = NSLock()
  private var value = 0

  /// Adds one and returns the new value.
  func increment() -> Int {
    lock.lock()
    defer { lock.unlock() }
    value += 1
    return value
  }
}
