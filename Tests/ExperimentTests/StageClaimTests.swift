import Experiment
import Foundation
import Testing

/// Stage lock files (`RunStore.withClaim`): who holds a stage, so that two processes never compute
/// the same one and a `--jobs` parent leaves held stages alone.
@Suite struct StageClaimTests {
  static func lockFile(_ text: String?) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("pix2rep-lock-\(UUID().uuidString).lock")
    if let text { try Data(text.utf8).write(to: url) }
    return url
  }

  @Test("a lock of a live process, or of another host, is held; one of a process of this host that has ended is not")
  func liveHolder() throws {
    let host = ProcessInfo.processInfo.hostName
    let mine = try Self.lockFile("\(host) \(getpid())")
    defer { try? FileManager.default.removeItem(at: mine) }
    #expect(RunStore.liveHolder(ofLock: mine) == "\(host) \(getpid())")

    // A process that has run and ended: its pid is free (not reused within this test).
    let ended = Process()
    ended.executableURL = URL(fileURLWithPath: "/bin/true")
    try ended.run()
    ended.waitUntilExit()
    let stale = try Self.lockFile("\(host) \(ended.processIdentifier)")
    defer { try? FileManager.default.removeItem(at: stale) }
    #expect(RunStore.liveHolder(ofLock: stale) == nil)

    let remote = try Self.lockFile("another-machine-\(UUID().uuidString) 1234")
    defer { try? FileManager.default.removeItem(at: remote) }
    #expect(RunStore.liveHolder(ofLock: remote)?.hasSuffix(" 1234") == true)

    // Created but not yet written by its holder: held.
    let empty = try Self.lockFile("")
    defer { try? FileManager.default.removeItem(at: empty) }
    #expect(RunStore.liveHolder(ofLock: empty) == "another process")

    #expect(RunStore.liveHolder(ofLock: try Self.lockFile(nil)) == nil)
  }
}
