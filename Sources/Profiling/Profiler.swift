import Dispatch
import Foundation
import Optimized
import Reference
import TestSupport

/// `verify profile`'s work: the machine's measured peak, every optimized kernel at a preset's real
/// layer shapes checked against the reference and then timed beside it, and one whole pretraining
/// step. Prints the table; with `jsonPath`, writes it as JSON too.
public enum Profiler {
  /// `scaling`: worker counts to time the whole step at as well (strong scaling), when more than one.
  public static func run(
    presetName: String, config: ModelConfig, workers: Int, jsonPath: String?, fullReference: Bool, stepsOnly: Bool,
    scaling: [Int] = []
  ) throws {
    let probes = stepsOnly ? [] : ProfileProbe.all(config: config)
    print("verify profile: preset \(presetName), pretraining batch \(ProfileProbe.batch) per view, \(workers) workers")
    let peak = measurePeakGFLOPS(workers: workers)
    print(String(format: "measured peak: %.1f GFLOP/s (4x24 FMA micro-kernel on L1-resident panels, %d workers)", peak, workers))

    // Validate everything first (the kernels' reference runs are timed on the way).
    print("checking \(probes.count) kernels and one whole pretraining step against the reference ...")
    var measurements = [ProfileMeasurement]()
    var failures = [String]()
    for probe in probes {
      let m = probe.measureReferenceAndCheck(workers: workers)
      if let problem = m.problem { failures.append("\(probe.name) \(probe.shape): \(problem)") }
      measurements.append(m)
    }
    let step = StepProfile(config: config)
    let stepReference = fullReference || step.referenceFeasible
    if stepReference, let problem = step.check(workers: workers) {
      failures.append("pretraining step at batch \(step.smallBatch): \(problem)")
    }
    if !failures.isEmpty {
      for failure in failures { print("MISMATCH \(failure)") }
      throw ProfileError("\(failures.count) optimized results differ from the reference")
    }
    if stepReference {
      print("all results match (\(probes.count) kernels, every output, \(Tolerance.float32Kernel); the pretraining step at "
        + "batch \(step.smallBatch), loss and every gradient, \(Tolerance.float32Network))")
    } else {
      print("all results match (\(probes.count) kernels, every output, \(Tolerance.float32Kernel)). The whole step is not run on "
        + "the reference at this preset (\(String(format: "%.0f", step.flops / 8e9)) GFLOP per image, hours of reference "
        + "time; --full-reference forces it)")
    }

    // Then time.
    var table = [ProfileRow]()
    if !probes.isEmpty {
      for i in probes.indices { measurements[i].optimizedSeconds = probes[i].timeOptimized(workers: workers) }
      let rows = measurements.map { ProfileRow($0, peak: peak) }
      table = rows
      for (label, filter) in ProfileProbe.totals {
        let members = rows.filter { filter($0.name) }
        if !members.isEmpty { table.append(ProfileRow(total: label, members: members, peak: peak)) }
      }
      print("")
      print(ProfileRow.header)
      for row in table { print(row.line) }
      if measurements.contains(where: \.referenceScaled) {
        print("* reference timed on one batch element and multiplied by the batch size")
      }
      if measurements.contains(where: \.referenceReduced) {
        print("† reference (and the check) run on images of half the side or less, time multiplied by the operation count")
      }
      print("ref: Reference (Double, plain loops, 1 thread); opt: Optimized (Float32, SIMD, \(workers) workers);")
      print("times are medians; GFLOP/s and % peak are the optimized kernel's.")
    }

    // The whole step.
    print("")
    print("whole pretraining step (InfoNCE, batch \(ProfileProbe.batch) x 2 views, \(InfoNCEConstants.sampledPositions) "
      + "positions, forward + backward + Adam; \(String(format: "%.1f", step.flops / 1e9)) GFLOP in convolutions, GEMMs and InfoNCE):")
    let stepRow = step.measure(workers: workers, peak: peak, fullReference: fullReference)
    table.append(stepRow)
    print(ProfileRow.header)
    print(stepRow.line)
    let referenceNote = stepRow.referenceMilliseconds.isNaN
      ? "reference not timed at this preset"
      : String(format: "%.1f s reference", stepRow.referenceMilliseconds / 1e3)
        + (stepRow.name.hasSuffix("(ref +)") ? " (+ extrapolated from batches \(step.smallBatch) and \(step.smallBatch + 1))" : "")
        + String(format: "; %.0fx faster", stepRow.speedup)
    print(String(
      format: "step: %.3f s optimized (median), %@; %.1f GFLOP/s = %.1f%% of the measured peak",
      stepRow.optimizedMilliseconds / 1e3, referenceNote, stepRow.gflops, 100 * stepRow.fractionOfPeak))
    if scaling.count > 1 {
      // Strong scaling: the same step, the same batch, on each worker count.
      var times: [(workers: Int, seconds: Double)] = []
      for count in scaling {
        let seconds = step.optimizedSeconds(workers: count)
        times.append((count, seconds))
        var m = ProfileMeasurement(
          name: "pretraining step, \(count) worker(s)", shape: stepRow.shape, flops: step.flops, referenceSeconds: .nan,
          referenceScaled: false)
        m.optimizedSeconds = seconds
        table.append(ProfileRow(m, peak: peak))
      }
      print("strong scaling of the step: " + times.map {
        String(format: "%d worker(s) %.3f s (%.2fx of %d)", $0.workers, $0.seconds, times[0].seconds / $0.seconds, times[0].workers)
      }.joined(separator: "; "))
    }
    if let jsonPath {
      let report = ProfileReport(preset: presetName, workers: workers, batch: ProfileProbe.batch, peakGFLOPS: peak, rows: table)
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      try encoder.encode(report).write(to: URL(fileURLWithPath: jsonPath))
      print("wrote \(jsonPath)")
    }
  }
}

/// A failed check of `verify profile`, one line.
public struct ProfileError: Error, CustomStringConvertible {
  public let description: String
  init(_ description: String) { self.description = description }
}
