import Dataset
import Testing

struct ACDCInfoTests {
  @Test("Info.cfg in ACDC's format parses, with optional keys")
  func parsesACDCFormat() throws {
    let info = try PatientInfo(parsing: "ED: 1\r\nES: 12\r\nGroup: DCM\r\nHeight: 184.0\r\nNbFrame: 30\r\nWeight: 95.0\r\n", file: "Info.cfg")
    #expect(info == PatientInfo(endDiastoleFrame: 1, endSystoleFrame: 12, group: .dcm, height: 184, weight: 95, frameCount: 30))
    #expect(try PatientInfo(parsing: info.text, file: "Info.cfg") == info)
    let minimal = try PatientInfo(parsing: "Group: RV\nES: 9\nED: 2\n", file: "Info.cfg")
    #expect(minimal.frame(.ed) == 2 && minimal.frame(.es) == 9 && minimal.group == .rv && minimal.height == nil)
  }

  @Test("Info.cfg missing a required key", arguments: ["ED", "ES", "Group"])
  func missingKey(key: String) {
    let lines = ["ED: 1", "ES: 12", "Group: NOR"].filter { !$0.hasPrefix(key + ":") }
    expectDataError(naming: "patient007/Info.cfg", containing: "missing required key '\(key)'") {
      _ = try PatientInfo(parsing: lines.joined(separator: "\n"), file: "training/patient007/Info.cfg")
    }
  }

  @Test("Info.cfg with an unknown group, a bad frame number, or a line without a colon")
  func badValues() {
    expectDataError(naming: "Info.cfg", containing: "unknown Group 'ABC'") {
      _ = try PatientInfo(parsing: "ED: 1\nES: 3\nGroup: ABC", file: "Info.cfg")
    }
    expectDataError(naming: "Info.cfg", containing: "ES must be a frame number") {
      _ = try PatientInfo(parsing: "ED: 1\nES: -3\nGroup: NOR", file: "Info.cfg")
    }
    expectDataError(naming: "Info.cfg", containing: "line 2 is not 'Key: value'") {
      _ = try PatientInfo(parsing: "ED: 1\nES 3\nGroup: NOR", file: "Info.cfg")
    }
  }
}
