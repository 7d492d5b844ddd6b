import Foundation
import Reference

/// The state of a training run in the middle of training, saved now and then into the run folder
/// (`stages/NAME.checkpoint`) so that an interrupted run resumes where it was instead of starting
/// over: at the cpu preset a pretraining or a 100-patient downstream run trains for an hour or more.
/// Everything that decides the rest of the run is in it (the parameter arrays with their BatchNorm
/// running statistics, Adam's moments and step, every random stream, every batch order, the best
/// weights, the curves), so a resumed run ends with the same bits as an uninterrupted one. The
/// arrays are raw; what the loop carries besides them is its `Progress` (`DownstreamProgress`,
/// `PretrainingProgress`). Which array, stream and sampler is which is the trainer's convention
/// (`trainDownstream`, `trainMeanTeacher`, `pretrain`, `pretrainSimCLR`).
struct Checkpoint<Scalar: BinaryFloatingPoint, Progress: CheckpointProgress> {
  /// What the header records besides the arrays.
  struct Header: Codable {
    /// The build that saved it (`Build.fingerprint`): another build's checkpoint is not resumed,
    /// since its kernels may round differently.
    var build: String
    var scalarBytes: Int
    /// The length of every array, in order.
    var arrayLengths: [Int]
    var progress: Progress
  }

  var header: Header
  /// The trainer's arrays, e.g. the values, Adam's two moments, then the best values.
  var arrays: [[Scalar]]

  init(header: Header, arrays: [[Scalar]]) {
    (self.header, self.arrays) = (header, arrays)
  }

  /// A checkpoint of this build.
  init(progress: Progress, arrays: [[Scalar]]) {
    header = Header(
      build: Build.fingerprint, scalarBytes: MemoryLayout<Scalar>.size, arrayLengths: arrays.map(\.count), progress: progress)
    self.arrays = arrays
  }

  static var magic: [UInt8] { Array(checkpointMagic.utf8) }

  /// Losses may be infinite (no best yet) or NaN (a diverged step); JSON has no such numbers.
  static var nonConforming: (positiveInfinity: String, negativeInfinity: String, nan: String) { checkpointNonConforming }

  /// magic, header length (UInt64 little-endian), header JSON, then the arrays' raw bytes.
  func write(to url: URL) throws {
    precondition(arrays.map(\.count) == header.arrayLengths)
    var data = Data(Self.magic)
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let n = Self.nonConforming
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
      positiveInfinity: n.positiveInfinity, negativeInfinity: n.negativeInfinity, nan: n.nan)
    let json = try encoder.encode(header)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(json)
    for array in arrays {
      array.withUnsafeBytes { data.append(contentsOf: $0) }
    }
    try writeAtomically(data, to: url)
  }

  /// The checkpoint at `url`, or nil with the reason when it cannot be resumed by this build for
  /// this schedule and these array lengths (another build, a damaged or truncated file).
  static func read(
    from url: URL, schedule: Progress.Schedule, arrayLengths: [Int]
  ) -> (checkpoint: Self?, problem: String?) {
    guard let data = FileManager.default.contents(atPath: url.path) else { return (nil, "cannot be read") }
    let bytes = [UInt8](data)
    guard bytes.starts(with: magic) else { return (nil, "is not a checkpoint of this version of the package") }
    let scalarBytes = MemoryLayout<Scalar>.size
    guard let (json, body) = checkpointHeader(bytes), let header = try? checkpointDecoder().decode(Header.self, from: json)
    else { return (nil, "has a damaged header") }
    guard header.build == Build.fingerprint else { return (nil, "was saved by another build (\(header.build))") }
    guard header.scalarBytes == scalarBytes, header.arrayLengths == arrayLengths, header.progress.schedule == schedule
    else { return (nil, "belongs to another model, trainer or schedule") }
    guard bytes.count == body + arrayLengths.reduce(0, +) * scalarBytes else {
      return (nil, "is truncated (\(bytes.count) bytes)")
    }
    var offset = body
    let arrays = arrayLengths.map { count in
      defer { offset += count * scalarBytes }
      return bytes[offset..<(offset + count * scalarBytes)].withUnsafeBytes { raw in Array(raw.bindMemory(to: Scalar.self)) }
    }
    return (Self(header: header, arrays: arrays), nil)
  }
}

/// The first bytes of a checkpoint file of this version.
private let checkpointMagic = "P2RCKPT3"

/// How the header writes the losses JSON has no numbers for (an infinite loss before any best, a NaN
/// of a diverged step).
private let checkpointNonConforming = (positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")

/// A checkpoint file's header JSON and the offset of its arrays, or nil when `bytes` do not start
/// with this version's magic and a header length that fits.
private func checkpointHeader(_ bytes: [UInt8]) -> (json: Data, body: Int)? {
  let magic = Array(checkpointMagic.utf8)
  guard bytes.count >= magic.count + 8, Array(bytes[0..<magic.count]) == magic else { return nil }
  var length: UInt64 = 0
  for k in 0..<8 { length |= UInt64(bytes[magic.count + k]) << (8 * UInt64(k)) }
  let start = magic.count + 8
  guard length <= UInt64(bytes.count - start) else { return nil }
  return (Data(bytes[start..<(start + Int(length))]), start + Int(length))
}

private func checkpointDecoder() -> JSONDecoder {
  let decoder = JSONDecoder()
  let n = checkpointNonConforming
  decoder.nonConformingFloatDecodingStrategy = .convertFromString(
    positiveInfinity: n.positiveInfinity, negativeInfinity: n.negativeInfinity, nan: n.nan)
  return decoder
}

/// How far a run's checkpoint has trained, read from its header alone: what the time-left estimate
/// needs so that it does not count the trained part of a run that will resume again.
package struct CheckpointedProgress: Decodable, Equatable {
  /// The last step trained.
  package var step: Int
  /// A downstream run's validations since its best (nil for a pretraining).
  package var sinceBest: Int?
  /// Seconds trained when it was saved.
  package var seconds: Double

  package init(step: Int, sinceBest: Int?, seconds: Double) {
    (self.step, self.sinceBest, self.seconds) = (step, sinceBest, seconds)
  }

  /// The progress in the checkpoint at `url` if this build saved it, else nil (none, damaged, or
  /// another build's, which is not resumed: its run starts over).
  package static func resumable(at url: URL) -> CheckpointedProgress? {
    struct Header: Decodable {
      var build: String
      var progress: CheckpointedProgress
    }
    guard let data = FileManager.default.contents(atPath: url.path), let (json, _) = checkpointHeader([UInt8](data)),
      let header = try? checkpointDecoder().decode(Header.self, from: json), header.build == Build.fingerprint
    else { return nil }
    return header.progress
  }
}

/// What a training loop records in its checkpoint besides the arrays.
protocol CheckpointProgress: Codable {
  /// What must match for a checkpoint to be resumed (the run's schedule).
  associatedtype Schedule: Codable & Equatable
  var schedule: Schedule { get }
  /// The last step trained.
  var step: Int { get }
  /// The trainer's random streams, batch samplers and Adam steps.
  var streams: TrainerStreams { get }
}

/// A `BatchSampler`'s position: its random stream, the epoch's order and the cursor in it.
struct SamplerState: Codable, Equatable {
  var state: UInt64
  var order: [Int]
  var cursor: Int

  init(_ sampler: BatchSampler) {
    (state, order, cursor) = (sampler.rng.state, sampler.order, sampler.cursor)
  }

  func restore(_ sampler: inout BatchSampler) {
    (sampler.rng, sampler.order, sampler.cursor) = (SplitMix64(seed: state), order, cursor)
  }
}

/// Where and how often a training run (downstream or pretraining) saves its checkpoint.
package struct CheckpointPolicy: Sendable {
  /// The file (`stages/NAME.checkpoint`); removed once the run has finished.
  package var url: URL
  /// The least time between two saves; saves happen at validations only.
  package var interval: TimeInterval
  /// For tests: stop with `TrainingInterrupted` right after the save at this step's validation,
  /// as a killed process would (the save is forced at that validation).
  package var interruptAfterStep: Int? = nil

  package init(url: URL, interval: TimeInterval = 300, interruptAfterStep: Int? = nil) {
    self.url = url
    self.interval = interval
    self.interruptAfterStep = interruptAfterStep
  }

  /// Whether to save at this validation (`lastSave` the time of the previous save or the start).
  func due(step: Int, lastSave: Date) -> Bool {
    interruptAfterStep == step || Date().timeIntervalSince(lastSave) >= interval
  }

  /// Saves `checkpoint`, and throws `TrainingInterrupted` when this is the step a test interrupts.
  func save<Scalar, Progress>(_ checkpoint: Checkpoint<Scalar, Progress>) throws {
    try checkpoint.write(to: url)
    let step = checkpoint.header.progress.step
    if interruptAfterStep == step { throw TrainingInterrupted(step: step) }
  }

  /// Saves a trainer's `state`, its `best` values after the state's arrays, and its loop's
  /// `progress`: the layout `resume` reads.
  func save<Scalar: BinaryFloatingPoint, Progress: CheckpointProgress>(
    _ state: TrainerState<Scalar>, best: [Scalar], progress: Progress
  ) throws {
    try save(Checkpoint(progress: progress, arrays: state.arrays + [best]))
  }

  /// A trainer's state (arrays of `stateLengths`, with the streams its loop's progress records),
  /// its best values (`bestLength`) and its loop's progress, from the checkpoint `save` wrote, when
  /// this run can resume it (`resumable`); else nil.
  func resume<Scalar: BinaryFloatingPoint, Progress: CheckpointProgress>(
    schedule: Progress.Schedule, stateLengths: [Int], bestLength: Int, label: String
  ) -> (state: TrainerState<Scalar>, best: [Scalar], progress: Progress)? {
    guard
      let saved: Checkpoint<Scalar, Progress> = resumable(
        schedule: schedule, arrayLengths: stateLengths + [bestLength], label: label)
    else { return nil }
    let progress = saved.header.progress
    return (TrainerState(arrays: Array(saved.arrays.dropLast()), streams: progress.streams), saved.arrays.last!, progress)
  }

  /// The checkpoint a run resumes from, or nil (no file, or one this run cannot use: said once,
  /// and the run starts over).
  func resumable<Scalar, Progress>(
    schedule: Progress.Schedule, arrayLengths: [Int], label: String
  ) -> Checkpoint<Scalar, Progress>? {
    guard FileManager.default.fileExists(atPath: url.path) else { return nil }
    let (saved, problem) = Checkpoint<Scalar, Progress>.read(from: url, schedule: schedule, arrayLengths: arrayLengths)
    if let problem { say("\(label): checkpoint \(url.path) \(problem); starting the run over") }
    if let saved { say("\(label): resumed from its checkpoint at step \(saved.header.progress.step)") }
    return saved
  }
}

/// Thrown by `trainDownstream`, `trainMeanTeacher`, `pretrain` and `pretrainSimCLR` when
/// `CheckpointPolicy.interruptAfterStep` is reached (tests).
package struct TrainingInterrupted: Error {
  package var step: Int
}
