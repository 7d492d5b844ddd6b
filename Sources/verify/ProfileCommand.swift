import Dispatch
import Foundation
import Optimized
import Profiling
import Reference
import TestSupport

/// `verify profile`: every optimized kernel at a preset's real layer shapes, checked against the
/// reference first, then timed beside it, with GFLOP/s and the fraction of the machine's measured
/// peak; then the whole pretraining, fine-tuning and linear-probing steps and prediction.
enum ProfileCommand: VerifyCommand {
  static let name = "profile"
  static let summary = "check, then time every optimized kernel against the reference (release builds only)"
  static let options = [
    OptionSpec("preset", value: true), OptionSpec("workers", value: true), OptionSpec("json", value: true),
    OptionSpec("full-reference", value: false), OptionSpec("steps-only", value: false),
  ]
  static let help = """
    usage: verify profile [--preset paper|cpu|smoke|tiny] [--workers N|N,M,...] [--json FILE] [--full-reference]
                          [--steps-only]

    Refuses a debug build. Measures the machine's peak with the optimized GEMM micro-kernel on
    every worker, then, for every kernel at the preset's layer shapes (pretraining batch 8 per view;
    segmentation batch 16): runs the reference (Double) and the optimized (Float) kernel on the
    same inputs (the kernels of KernelCatalog, which RegressionTests runs on small shapes) and
    checks every output within the kernel's tolerance, |opt - ref| <= abs + rel |ref| (TestSupport's
    \(Tolerance.float32Kernel); \(Tolerance.exact) for the kernels that only
    select or move values); prints "all results match" or fails; then prints the median time of
    each, the speedup, the optimized GFLOP/s and its fraction of the peak. The reference is timed
    with fewer repetitions, and where one full-batch run would take more than a few seconds it is
    timed on one batch element and multiplied by the batch (marked *). Default preset: cpu;
    default workers: every active processor (at most 16). --workers 1,2 (a list) profiles at the
    largest count and also times the whole step at each count (strong scaling). --json FILE writes
    the same table.

    Then one whole pretraining step (InfoNCE, both views, forward, backward and Adam): checked at
    batch 1 (2 when the bottleneck is one pixel; loss and every gradient, TestSupport's
    \(Tolerance.float32Network)), timed on the optimized backend at the full
    batch. The reference step takes minutes at the full batch, so by default it is timed at
    batches 1 and 2 and extrapolated linearly to the full batch (marked +); --full-reference times
    it at the full batch instead.

    Then the downstream work, through the functions verify reproduce runs: the fine-tuning step
    (batch 16: intensity augmentation, forward with BatchNorm in training mode, soft Dice, backward,
    Adam with the backbone's and the head's learning rates), the linear-probing step (batch 16:
    augmentation, the frozen backbone in evaluation mode, the head forward and backward, Adam), and
    prediction (evaluation mode, hard labels and every volume's Dice, per 100 slices), twice: with
    the presets' evaluation-mode 3x3 convolutions (F(2x2, 3x3), which the linear-probing step's
    frozen backbone uses too) and with F(4x4, 3x3), the faster choice of `verify reproduce
    --inference-convolutions winograd4x4`. Each is
    checked at batch 1 (2 when the bottleneck is one pixel) against the reference, the steps' loss
    and every gradient, prediction's logits and Dice ("float32 network" preset), then timed on the
    optimized backend (median); the reference column is the check's time multiplied up to the
    row's slices (marked *).
    --steps-only skips the kernel table. With --workers 1,2 every whole step and prediction is
    timed at each count.
    """

  static func run(_ options: inout Options) throws {
    try options.requireNoPositional(name)
    #if DEBUG
      throw VerifyError(
        "refusing to time a debug build (numeric code is 10-200x slower); run "
          + "`swift run -c release verify profile`")
    #else
      let (presetName, config) = try options.modelPreset()
      let scaling = try workerList(options.string("workers"))
      let workers = scaling.max() ?? defaultWorkerCount()
      let jsonPath = options.string("json")
      try Profiler.run(
        presetName: presetName, config: config, workers: workers, jsonPath: jsonPath,
        fullReference: options.flag("full-reference"), stepsOnly: options.flag("steps-only"), scaling: scaling)
    #endif
  }

  /// `--workers N` or a comma-separated list, each in 1 ... `maximumWorkerCount`; empty when absent.
  static func workerList(_ text: String?) throws -> [Int] {
    guard let text else { return [] }
    let counts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !counts.isEmpty, counts.allSatisfy({ $0.map { (1...maximumWorkerCount).contains($0) } ?? false }) else {
      throw VerifyError("--workers must be integers in 1...\(maximumWorkerCount), separated by commas, got '\(text)'", exitCode: 64)
    }
    return counts.compactMap { $0 }
  }
}
