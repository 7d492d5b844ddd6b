import Foundation
import Reference

/// The state of a downstream run in the middle of training, saved now and then into the run folder
/// (`stages/NAME.checkpoint`) so that an interrupted run resumes where it was instead of starting
/// over: at the cpu preset a 100-patient run trains for an hour or more. Everything that decides
/// the rest of the run is in it (parameters with their BatchNorm running statistics, Adam's
/// moments and step, both random streams, the batch order, the best weights, the curve, the
/// patience count), so a resumed run ends with the same bits as an uninterrupted one.
struct DownstreamCheckpoint<Scalar: BinaryFloatingPoint> {
  /// What the header records besides the arrays.
  struct Header: Codable, Equatable {
    /// The build that saved it (`Build.fingerprint`): another build's checkpoint is not resumed,
    /// since its kernels may round differently.
    var build: String
    var scalarBytes: Int
    var valueCount: Int
    var schedule: DownstreamSchedule
    var step: Int
    var sinceBest: Int
    var bestStep: Int
    var bestLoss: Double
    var curve: [CurvePoint]
    var augmentationState: UInt64
    var samplerState: UInt64
    var samplerOrder: [Int]
    var samplerCursor: Int
    var adamStep: Int
  }

  var header: Header
  var values: [Scalar]
  var bestValues: [Scalar]
  var firstMoment: [Scalar]
  var secondMoment: [Scalar]

  static var magic: [UInt8] { Array("P2RCKPT1".utf8) }

  /// magic, header length (UInt64 little-endian), header JSON, then the four arrays' raw bytes.
  func write(to url: URL) throws {
    var data = Data(Self.magic)
    let json = try JSONEncoder().encode(header)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(json)
    for array in [values, bestValues, firstMoment, secondMoment] {
      array.withUnsafeBytes { data.append(contentsOf: $0) }
    }
    try writeAtomically(data, to: url)
  }

  /// The checkpoint at `url`, or nil with the reason when it cannot be resumed by this build for
  /// this schedule and parameter count (another build, a damaged or truncated file).
  static func read(from url: URL, schedule: DownstreamSchedule, valueCount: Int) -> (checkpoint: Self?, problem: String?) {
    guard let data = FileManager.default.contents(atPath: url.path) else { return (nil, "cannot be read") }
    let bytes = [UInt8](data)
    guard bytes.count >= magic.count + 8, Array(bytes[0..<magic.count]) == magic else {
      return (nil, "is not a checkpoint of this package")
    }
    var length: UInt64 = 0
    for k in 0..<8 { length |= UInt64(bytes[magic.count + k]) << (8 * UInt64(k)) }
    let start = magic.count + 8
    let scalarBytes = MemoryLayout<Scalar>.size
    guard length <= UInt64(bytes.count - start),
      let header = try? JSONDecoder().decode(Header.self, from: Data(bytes[start..<(start + Int(length))]))
    else { return (nil, "has a damaged header") }
    guard header.build == Build.fingerprint else { return (nil, "was saved by another build (\(header.build))") }
    guard header.scalarBytes == scalarBytes, header.valueCount == valueCount, header.schedule == schedule else {
      return (nil, "belongs to another model or schedule")
    }
    let arrayBytes = valueCount * scalarBytes
    let body = start + Int(length)
    guard bytes.count == body + 4 * arrayBytes else { return (nil, "is truncated (\(bytes.count) bytes)") }
    func array(_ k: Int) -> [Scalar] {
      bytes[(body + k * arrayBytes)..<(body + (k + 1) * arrayBytes)].withUnsafeBytes { raw in
        Array(raw.bindMemory(to: Scalar.self))
      }
    }
    return (Self(header: header, values: array(0), bestValues: array(1), firstMoment: array(2), secondMoment: array(3)), nil)
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
}

/// Thrown by `trainDownstream` when `CheckpointPolicy.interruptAfterStep` is reached (tests).
package struct TrainingInterrupted: Error {
  package var step: Int
}
