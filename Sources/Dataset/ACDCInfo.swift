import Foundation

/// The five ACDC pathology groups, in the order used for every seeded draw.
public enum PathologyGroup: String, Sendable, CaseIterable, Comparable, CustomStringConvertible {
  /// Normal subjects.
  case nor = "NOR"
  /// Previous myocardial infarction.
  case minf = "MINF"
  /// Dilated cardiomyopathy.
  case dcm = "DCM"
  /// Hypertrophic cardiomyopathy.
  case hcm = "HCM"
  /// Abnormal right ventricle.
  case rv = "RV"

  public var description: String { rawValue }

  public static func < (a: PathologyGroup, b: PathologyGroup) -> Bool {
    allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
  }
}

/// End-diastole or end-systole.
public enum CardiacPhase: String, Sendable, CaseIterable, CustomStringConvertible {
  case ed = "ED"
  case es = "ES"
  public var description: String { rawValue }
}

/// The contents of a patient's `Info.cfg`.
///
/// Format: one `Key: value` per line (`ED: 1`, `ES: 12`, `Group: DCM`, `Height: 184.0`,
/// `NbFrame: 30`, `Weight: 95.0`). ED, ES and Group are required; Height, Weight and NbFrame are
/// optional; other keys are ignored. Frame numbers are 1-based, as in the file names.
public struct PatientInfo: Sendable, Equatable {
  public var endDiastoleFrame: Int
  public var endSystoleFrame: Int
  public var group: PathologyGroup
  public var height: Double?
  public var weight: Double?
  public var frameCount: Int?

  public init(
    endDiastoleFrame: Int, endSystoleFrame: Int, group: PathologyGroup, height: Double? = nil,
    weight: Double? = nil, frameCount: Int? = nil
  ) {
    self.endDiastoleFrame = endDiastoleFrame
    self.endSystoleFrame = endSystoleFrame
    self.group = group
    self.height = height
    self.weight = weight
    self.frameCount = frameCount
  }

  /// The frame number of a phase.
  public func frame(_ phase: CardiacPhase) -> Int {
    phase == .ed ? endDiastoleFrame : endSystoleFrame
  }

  /// Parses the text of an `Info.cfg`; `file` names it in errors.
  public init(parsing text: String, file: String) throws(DataError) {
    var fields: [String: String] = [:]
    for (number, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
      let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
      if line.isEmpty { continue }
      guard let colon = line.firstIndex(of: ":") else {
        throw DataError(file: file, "line \(number + 1) is not 'Key: value': '\(line.prefix(40))'")
      }
      let key = line[..<colon].trimmingCharacters(in: .whitespaces)
      let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
      fields[key] = value
    }
    func required(_ key: String) throws(DataError) -> String {
      guard let value = fields[key] else { throw DataError(file: file, "missing required key '\(key)'") }
      return value
    }
    func frameNumber(_ key: String) throws(DataError) -> Int {
      let text = try required(key)
      guard let value = Int(text), value >= 1, value <= 999 else {
        throw DataError(file: file, "\(key) must be a frame number 1...999, got '\(text)'")
      }
      return value
    }
    func optionalNumber(_ key: String) throws(DataError) -> Double? {
      guard let text = fields[key] else { return nil }
      guard let value = Double(text), value.isFinite else {
        throw DataError(file: file, "\(key) must be a number, got '\(text)'")
      }
      return value
    }
    endDiastoleFrame = try frameNumber("ED")
    endSystoleFrame = try frameNumber("ES")
    let groupText = try required("Group")
    guard let group = PathologyGroup(rawValue: groupText) else {
      let names = PathologyGroup.allCases.map(\.rawValue).joined(separator: ", ")
      throw DataError(file: file, "unknown Group '\(groupText)' (expected one of \(names))")
    }
    self.group = group
    height = try optionalNumber("Height")
    weight = try optionalNumber("Weight")
    frameCount = try optionalNumber("NbFrame").flatMap { Int(exactly: $0) }
  }

  /// The text of an `Info.cfg` with these values, in the key order of ACDC's files.
  public var text: String {
    var lines = ["ED: \(endDiastoleFrame)", "ES: \(endSystoleFrame)", "Group: \(group.rawValue)"]
    if let height { lines.append("Height: \(String(format: "%.1f", height))") }
    if let frameCount { lines.append("NbFrame: \(frameCount)") }
    if let weight { lines.append("Weight: \(String(format: "%.1f", weight))") }
    return lines.joined(separator: "\n") + "\n"
  }
}
