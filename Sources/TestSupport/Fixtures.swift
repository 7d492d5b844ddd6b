import Foundation

/// The repository's `fixtures/` folder, found from this source file's location so tests run from
/// any working directory.
public let fixturesDirectory: URL = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent()  // TestSupport
  .deletingLastPathComponent()  // Sources
  .deletingLastPathComponent()  // package root
  .appendingPathComponent("fixtures")
