import Dispatch
import Foundation
import Optimized
import Reference
import TestSupport

/// `verify profile`'s work: the machine's measured peak, every optimized kernel at a preset's real
/// layer shapes checked against the reference and then timed beside it, one whole pretraining
/// step, and the downstream work (the fine-tuning and linear-probing steps, prediction), each
/// checked before it is timed. Prints the table; with `jsonPath`, writes it as JSON too.
public enum Profiler {
  /// `scaling`: worker counts to time the whole steps at as well (strong scaling), when more than one.
  public static func run(
    presetName: String, config: ModelConfig, workers: Int, jsonPath: String?, fullReference: Bool, stepsOnly: Bool,
    scaling: [Int] = []
  ) throws {
    let probes = stepsOnly ? [] : ProfileProbe.all(config: config)
    print("verify profile: preset \(presetName), pretraining batch \(ProfileProbe.batch) per view, \(workers) workers")
    let peak = measurePeakGFLOPS(workers: workers)
    print(String(format: "measured peak: %.1f GFLOP/s (4x24 FMA micro-kernel on L1-resident panels, %d workers)", peak, workers))

    // Validate everything first (the kernels' reference runs are timed on the way).
    let step = StepProfile(config: config)
    // Prediction by the presets' evaluation-mode convolutions (F(2x2, 3x3)), then by F(4x4, 3x3),
    // the faster choice of `--inference-convolutions winograd4x4`.
    let downstream = DownstreamProfile.Operation.allCases.map {
      DownstreamProfile(config: config, operation: $0, workers: workers)
    } + [DownstreamProfile(config: config, operation: .prediction, workers: workers, convolutions: .winograd4x4)]
    print("checking \(probes.count) kernels, the pretraining step, the fine-tuning and linear-probing steps and "
      + "prediction against the reference ...")
    var measurements = [ProfileMeasurement]()
    var failures = [String]()
    for probe in probes {
      let m = probe.measureReferenceAndCheck(workers: workers)
      if let problem = m.problem { failures.append("\(probe.name) \(probe.shape): \(problem)") }
      measurements.append(m)
    }
    let stepReference = fullReference || step.referenceFeasible
    if stepReference, let problem = step.check(workers: workers) {
      failures.append("pretraining step at batch \(step.smallBatch): \(problem)")
    }
    // Reference seconds of each downstream operation at its full batch (scaled from the check).
    var downstreamReference = [Double](repeating: .nan, count: downstream.count)
    let downstreamChecked = downstream.map { fullReference || $0.referenceFeasible }
    for (i, operation) in downstream.enumerated() where downstreamChecked[i] {
      let (problem, seconds) = operation.check(workers: workers)
      if let problem { failures.append("\(operation.name) at batch \(operation.smallBatch): \(problem)") }
      downstreamReference[i] = seconds
    }
    if !failures.isEmpty {
      for failure in failures { print("MISMATCH \(failure)") }
      throw ProfileError("\(failures.count) optimized results differ from the reference")
    }
    if stepReference && downstreamChecked.allSatisfy({ $0 }) {
      print("all results match (\(probes.count) kernels, every output, \(toleranceSummary(probes)); the pretraining step at "
        + "batch \(step.smallBatch), loss and every gradient; the fine-tuning and linear-probing steps at batch "
        + "\(downstream[0].smallBatch), loss and every gradient; prediction at batch \(downstream[0].smallBatch), logits "
        + "and every volume's Dice; the whole steps \(Tolerance.float32Network))")
    } else {
      print("all results match (\(probes.count) kernels, every output, \(toleranceSummary(probes))). The whole steps are not run on "
        + "the reference at this preset (\(String(format: "%.0f", step.flops / 8e9)) GFLOP per pretraining image, hours of "
        + "reference time; --full-reference forces it)")
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

    // The whole pretraining step.
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

    // The downstream steps and prediction, as the reproduction runs them.
    print("")
    print("downstream, as verify reproduce runs it (trainDownstream's step at batch \(downstream[0].batch), intensity "
      + "augmentation included; evaluate's prediction and Dice, batch \(downstream[0].batch), in evaluation mode; "
      + "GFLOP/s count the backbone's and the head's convolutions only):")
    print(ProfileRow.header)
    var downstreamRows = [ProfileRow]()
    // The two predictions alternate call by call: their ratio is the figure that matters.
    let predictions = downstream.indices.filter { downstream[$0].operation == .prediction }
    let predictionSeconds = Dictionary(
      uniqueKeysWithValues: zip(
        predictions, DownstreamProfile.alternatedPredictionSeconds(predictions.map { downstream[$0] }, workers: workers)))
    for (i, operation) in downstream.enumerated() {
      let row = operation.row(
        workers: workers, referenceSeconds: downstreamReference[i], peak: peak, optimizedSeconds: predictionSeconds[i])
      downstreamRows.append(row)
      print(row.line)
    }
    table += downstreamRows
    if downstreamChecked.contains(true) {
      print("* reference timed at batch \(downstream[0].smallBatch) (the check) and multiplied up to the row's slices")
    }
    let perSlice = downstreamRows[2].optimizedMilliseconds / Double(DownstreamProfile.predictionSlices)
    let perSlice4x4 = downstreamRows[3].optimizedMilliseconds / Double(DownstreamProfile.predictionSlices)
    print(String(
      format: "fine-tuning step %.1f ms; linear-probing step %.1f ms; prediction %.1f ms per %d slices (%.3f ms per slice; "
        + "by F(4x4, 3x3), --inference-convolutions winograd4x4: %.3f ms per slice, %.2fx faster)",
      downstreamRows[0].optimizedMilliseconds, downstreamRows[1].optimizedMilliseconds,
      downstreamRows[2].optimizedMilliseconds, DownstreamProfile.predictionSlices, perSlice, perSlice4x4,
      perSlice / perSlice4x4))

    if scaling.count > 1 {
      // Strong scaling: the same steps, the same batches, on each worker count.
      print("")
      print("strong scaling (median seconds per call; speed-up over \(scaling[0]) worker(s)):")
      let timed: [(name: String, shape: String, flops: Double, seconds: (Int) -> Double)] =
        [("pretraining step", stepRow.shape, step.flops, { step.optimizedSeconds(workers: $0) })]
        + downstream.map { operation in (operation.name, operation.shape, operation.flops, { operation.optimizedSeconds(workers: $0) }) }
      for entry in timed {
        var times: [(workers: Int, seconds: Double)] = []
        for count in scaling {
          let seconds = entry.seconds(count)
          times.append((count, seconds))
          var m = ProfileMeasurement(
            name: "\(entry.name), \(count) worker(s)", shape: entry.shape, flops: entry.flops, referenceSeconds: .nan,
            referenceScaled: false)
          m.optimizedSeconds = seconds
          table.append(ProfileRow(m, peak: peak))
        }
        print("  \(entry.name): " + times.map {
          String(format: "%d worker(s) %.3f s (%.2fx)", $0.workers, $0.seconds, times[0].seconds / $0.seconds)
        }.joined(separator: "; "))
      }
    }
    if let jsonPath {
      let report = ProfileReport(preset: presetName, workers: workers, batch: ProfileProbe.batch, peakGFLOPS: peak, rows: table)
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      // A time not measured (the reference at a large preset, the strong-scaling rows) is NaN,
      // which JSON has no number for.
      encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
      try encoder.encode(report).write(to: URL(fileURLWithPath: jsonPath))
      print("wrote \(jsonPath)")
    }
  }
}

extension Profiler {
  /// The kernels' tolerances, the most used first, each naming its kernels unless it is the only
  /// one: "float32 kernel (abs 0.0001, rel 0.0001); exact (abs 0.0, rel 0.0) for relu, ...".
  static func toleranceSummary(_ probes: [ProfileProbe]) -> String {
    var kernels: [(tolerance: String, names: [String])] = []
    for probe in probes {
      let tolerance = probe.kernel.tolerance.description
      if let i = kernels.firstIndex(where: { $0.tolerance == tolerance }) {
        if !kernels[i].names.contains(probe.kernel.name) { kernels[i].names.append(probe.kernel.name) }
      } else {
        kernels.append((tolerance, [probe.kernel.name]))
      }
    }
    let ranked = kernels.sorted { $0.names.count > $1.names.count }
    return ranked.enumerated().map { i, entry in
      i == 0 ? entry.tolerance : "\(entry.tolerance) for \(entry.names.joined(separator: ", "))"
    }.joined(separator: "; ")
  }
}

/// A failed check of `verify profile`, one line.
public struct ProfileError: Error, CustomStringConvertible {
  public let description: String
  init(_ description: String) { self.description = description }
}
