import Dataset
import Foundation
import Testing

/// A fresh folder under the system temporary folder, removed when the value is released.
final class TemporaryFolder {
  let url: URL

  init(_ label: String = "data-tests") {
    url = FileManager.default.temporaryDirectory
      .appendingPathComponent("\(label)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  }

  func file(_ name: String) -> URL { url.appendingPathComponent(name) }

  deinit { try? FileManager.default.removeItem(at: url) }
}

/// Runs `body`, requires a `DataError`, and checks that its message is one line that names
/// `file` (by its last path component) and contains `phrase`.
func expectDataError(
  naming file: String, containing phrase: String, sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () throws -> Void
) {
  do {
    try body()
    Issue.record("expected an error containing '\(phrase)' for \(file), got success", sourceLocation: sourceLocation)
  } catch let error as DataError {
    let message = error.description
    let name = (file as NSString).lastPathComponent
    #expect(message.contains(name), "message does not name \(name): \(message)", sourceLocation: sourceLocation)
    #expect(message.contains(phrase), "message lacks '\(phrase)': \(message)", sourceLocation: sourceLocation)
    #expect(!message.contains("\n"), "message is not one line: \(message)", sourceLocation: sourceLocation)
  } catch {
    Issue.record("expected a DataError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
  }
}

/// A small int16 volume with distinct values, for corrupting.
func smallVolume(dataType: NIfTIDataType = .int16, shape: [Int] = [6, 5, 4]) -> NIfTIVolume {
  let count = shape.reduce(1, *)
  let values: [Double] = (0..<count).map { i in
    switch dataType {
    case .uint8: Double(i % 256)
    case .int8: Double(i % 200 - 100)
    case .uint16: Double(i * 311 % 65536)
    case .int16: Double(i * 37 - 1000)
    case .int32: Double(i * 100_003 - 7_000_000)
    case .float32: Double(Float(i) * 0.37 - 9.5)
    case .float64: Double(i) / 7 - 3
    }
  }
  return NIfTIVolume(
    shape: shape, spacing: [1.5, 1.25, 10, 1][0..<shape.count].map { $0 }, dataType: dataType, values: values,
    origin: [-4, 2.5, 8], descriptionText: "Pix2Rep test volume")
}
