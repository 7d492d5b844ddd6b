import Foundation
import Reference

/// The state of a downstream run in the middle of training, saved now and then into the run folder
/// (`stages/NAME.checkpoint`) so that an interrupted run resumes where it was instead of starting
/// over: at the cpu preset a 100-patient run trains for an hour or more. Everything that decides
/// the rest of the run is in it (the parameter arrays with their BatchNorm running statistics,
/// Adam's moments and step, every random stream, every batch order, the best weights, the curve,
/// the patience count), so a resumed run ends with the same bits as an uninterrupted one. Which
/// array, stream and sampler is which is the trainer's convention (`trainDownstream`,
/// `trainMeanTeacher`).
struct DownstreamCheckpoint<Scalar: BinaryFloatingPoint> {
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

  /// What the header records besides the arrays.
  struct Header: Codable, Equatable {
    /// The build that saved it (`Build.fingerprint`): another build's checkpoint is not resumed,
    /// since its kernels may round differently.
    var build: String
    var scalarBytes: Int
    /// The length of every array (the parameter layout's count).
    var valueCount: Int
    var arrayCount: Int
    var schedule: DownstreamSchedule
    var step: Int
    var sinceBest: Int
    var bestStep: Int
    var bestLoss: Double
    var curve: [CurvePoint]
    /// Random streams' states (`SplitMix64.state`).
    var randomStates: [UInt64]
    var samplers: [SamplerState]
    var adamStep: Int
  }

  var header: Header
  /// Parameter-layout arrays, e.g. the values, the best values and Adam's two moments.
  var arrays: [[Scalar]]

  static var magic: [UInt8] { Array("P2RCKPT2".utf8) }

  /// magic, header length (UInt64 little-endian), header JSON, then the arrays' raw bytes.
  func write(to url: URL) throws {
    precondition(arrays.count == header.arrayCount && arrays.allSatisfy { $0.count == header.valueCount })
    var data = Data(Self.magic)
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let json = try encoder.encode(header)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(json)
    for array in arrays {
      array.withUnsafeBytes { data.append(contentsOf: $0) }
    }
    try writeAtomically(data, to: url)
  }

  /// The checkpoint at `url`, or nil with the reason when it cannot be resumed by this build for
  /// this schedule, parameter count and number of arrays (another build, a damaged or truncated
  /// file).
  static func read(
    from url: URL, schedule: DownstreamSchedule, valueCount: Int, arrayCount: Int
  ) -> (checkpoint: Self?, problem: String?) {
    guard let data = FileManager.default.contents(atPath: url.path) else { return (nil, "cannot be read") }
    let bytes = [UInt8](data)
    guard bytes.count >= magic.count + 8, Array(bytes[0..<magic.count]) == magic else {
      return (nil, "is not a checkpoint of this version of the package")
    }
    var length: UInt64 = 0
    for k in 0..<8 { length |= UInt64(bytes[magic.count + k]) << (8 * UInt64(k)) }
    let start = magic.count + 8
    let scalarBytes = MemoryLayout<Scalar>.size
    guard length <= UInt64(bytes.count - start),
      let header = try? JSONDecoder().decode(Header.self, from: Data(bytes[start..<(start + Int(length))]))
    else { return (nil, "has a damaged header") }
    guard header.build == Build.fingerprint else { return (nil, "was saved by another build (\(header.build))") }
    guard header.scalarBytes == scalarBytes, header.valueCount == valueCount, header.arrayCount == arrayCount,
      header.schedule == schedule
    else { return (nil, "belongs to another model, trainer or schedule") }
    let arrayBytes = valueCount * scalarBytes
    let body = start + Int(length)
    guard bytes.count == body + arrayCount * arrayBytes else { return (nil, "is truncated (\(bytes.count) bytes)") }
    let arrays = (0..<arrayCount).map { k in
      bytes[(body + k * arrayBytes)..<(body + (k + 1) * arrayBytes)].withUnsafeBytes { raw in
        Array(raw.bindMemory(to: Scalar.self))
      }
    }
    return (Self(header: header, arrays: arrays), nil)
  }
}

/// Where and how often a downstream run saves its checkpoint.
package struct CheckpointPolicy: Sendable {
  /// The file (`stages/NAME.checkpoint`); removed once the run has finished.
  package var url: URL
  /// The least time between two saves; saves happen at validations only.
  package var interval: TimeInterval
  /// For tests: stop with `TrainingInterrupted` right after the save at this step's validation,
  /// as a killed process would (the save is forced at that validation).
  package var interruptAfterStep: Int? = nil

  package init(url: URL, interval: TimeInterval = 600, interruptAfterStep: Int? = nil) {
    self.url = url
    self.interval = interval
    self.interruptAfterStep = interruptAfterStep
  }

  /// Whether to save at this validation (`lastSave` the time of the previous save or the start).
  func due(step: Int, lastSave: Date) -> Bool {
    interruptAfterStep == step || Date().timeIntervalSince(lastSave) >= interval
  }

  /// Saves `checkpoint`, and throws `TrainingInterrupted` when this is the step a test interrupts.
  func save<Scalar>(_ checkpoint: DownstreamCheckpoint<Scalar>) throws {
    try checkpoint.write(to: url)
    if interruptAfterStep == checkpoint.header.step { throw TrainingInterrupted(step: checkpoint.header.step) }
  }

  /// The checkpoint a run resumes from, or nil (no file, or one this run cannot use: said once,
  /// and the run starts over).
  func resumable<Scalar>(
    schedule: DownstreamSchedule, valueCount: Int, arrayCount: Int, label: String
  ) -> DownstreamCheckpoint<Scalar>? {
    guard FileManager.default.fileExists(atPath: url.path) else { return nil }
    let (saved, problem) = DownstreamCheckpoint<Scalar>.read(
      from: url, schedule: schedule, valueCount: valueCount, arrayCount: arrayCount)
    if let problem { say("\(label): checkpoint \(url.path) \(problem); starting the run over") }
    if saved != nil { say("\(label): resumed from its checkpoint at step \(saved!.header.step)") }
    return saved
  }
}

/// Thrown by `trainDownstream` and `trainMeanTeacher` when `CheckpointPolicy.interruptAfterStep` is
/// reached (tests).
package struct TrainingInterrupted: Error {
  package var step: Int
}
