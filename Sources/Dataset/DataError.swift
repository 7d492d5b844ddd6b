import Foundation

/// Any failure to read, check or prepare data: one line that names the file (or folder) and the
/// problem, e.g. `patient001_frame01.nii.gz: header claims 1,048,576 bytes of data but the file has
/// 12,000`.
///
/// Every reader and loader of this module reports bad input with this type and never traps.
public struct DataError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
  /// The file or folder, as the caller named it (a path).
  public let file: String
  /// What is wrong, one line, without the file name.
  public let problem: String

  public init(file: String, _ problem: String) {
    self.file = file
    self.problem = problem
  }

  public init(url: URL, _ problem: String) {
    self.init(file: url.path, problem)
  }

  public var description: String { "\(file): \(problem)" }
  public var errorDescription: String? { description }
}

/// 1048576 -> "1,048,576" (for byte counts in messages).
func groupedDigits(_ value: Int) -> String {
  let digits = Array(String(value.magnitude))
  var out = value < 0 ? "-" : ""
  for (i, ch) in digits.enumerated() {
    if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
    out.append(ch)
  }
  return out
}
