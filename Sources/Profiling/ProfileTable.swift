import Dispatch
import Foundation
import Optimized
import Reference
import TestSupport

// MARK: - Table

struct ProfileReport: Codable {
  var preset: String
  var workers: Int
  var batch: Int
  var peakGFLOPS: Double
  var rows: [ProfileRow]
}

struct ProfileRow: Codable {
  var name: String
  var shape: String
  var referenceMilliseconds: Double
  var referenceScaled: Bool
  var referenceReduced: Bool
  var optimizedMilliseconds: Double
  var speedup: Double
  var gflops: Double
  var fractionOfPeak: Double

  init(_ m: ProfileMeasurement, peak: Double) {
    name = m.name
    shape = m.shape
    referenceMilliseconds = m.referenceSeconds * 1e3
    referenceScaled = m.referenceScaled
    referenceReduced = m.referenceReduced
    optimizedMilliseconds = m.optimizedSeconds * 1e3
    speedup = m.referenceSeconds / m.optimizedSeconds
    gflops = m.flops / m.optimizedSeconds / 1e9
    fractionOfPeak = gflops / peak
  }

  /// A sum over rows: total time, total FLOPs over total time.
  init(total label: String, members: [ProfileRow], peak: Double) {
    name = label
    shape = "\(members.count) rows"
    referenceMilliseconds = members.reduce(0) { $0 + $1.referenceMilliseconds }
    referenceScaled = members.contains(where: \.referenceScaled)
    referenceReduced = members.contains(where: \.referenceReduced)
    optimizedMilliseconds = members.reduce(0) { $0 + $1.optimizedMilliseconds }
    speedup = referenceMilliseconds / optimizedMilliseconds
    let flops = members.reduce(0) { $0 + $1.gflops * $1.optimizedMilliseconds * 1e-3 }
    gflops = flops / (optimizedMilliseconds * 1e-3)
    fractionOfPeak = gflops / peak
  }

  static let header =
    "kernel".padding(toLength: 30, withPad: " ", startingAt: 0) + "shape".padding(toLength: 30, withPad: " ", startingAt: 0)
    + "      ref ms        opt ms   speedup   GFLOP/s  % peak"

  var line: String {
    let mark = (referenceScaled ? "*" : "") + (referenceReduced ? "†" : "")
    let reference = String(format: "%12.2f", referenceMilliseconds) + mark.padding(toLength: 2, withPad: " ", startingAt: 0)
    let rest = String(format: "%11.3f %8.1fx %9.1f %6.1f%%", optimizedMilliseconds, speedup, gflops, 100 * fractionOfPeak)
    return name.padding(toLength: 30, withPad: " ", startingAt: 0) + shape.padding(toLength: 30, withPad: " ", startingAt: 0)
      + reference + rest
  }
}
