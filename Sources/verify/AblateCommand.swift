import Experiment
import Foundation
import Optimized
import Reference

/// `verify ablate`: one factor of the InfoNCE pretraining varied at a time (docs/PROTOCOL.md
/// section 10).
enum AblateCommand: VerifyCommand {
  static let name = "ablate"
  static let summary = "vary one factor of pretraining at a time: Dice of LP, FT and in-context at budgets 1 and 5"
  static let options = [
    OptionSpec("data", value: true), OptionSpec("preset", value: true), OptionSpec("seed", value: true),
    OptionSpec("run", value: true), OptionSpec("fresh", value: false), OptionSpec("workers", value: true),
    OptionSpec("factors", value: true), OptionSpec("values", value: true), OptionSpec("list-stages", value: false),
    OptionSpec("stage", value: true), OptionSpec("jobs", value: true), OptionSpec("reuse", value: true),
    OptionSpec("inference-convolutions", value: true), OptionSpec("stop-after", value: true),
    OptionSpec("partial", value: false), OptionSpec("yes", value: false),
  ]
  static let help = """
    usage: verify ablate [--data DIR] [--preset smoke|cpu|paper] [--seed N] [--run DIR] [--fresh]
                         [--workers N] [--factors LIST] [--values FACTOR=LIST[;FACTOR=LIST...]]
                         [--list-stages] [--stage NAME] [--jobs N] [--reuse DIR] [--partial] [--yes]
                         [--inference-convolutions winograd2x2|winograd4x4] [--stop-after MINUTES]

    Varies one factor of the InfoNCE (Pix2Rep) pretraining at a time, the others at the preset's
    values, and measures each backbone by linear probing, fine-tuning and in-context segmentation
    on the reproduction's draws at budgets 1 and 5 (the same patients, so every comparison is paired
    by draw). Factors and their values (docs/PROTOCOL.md section 10), each beside the preset's:
      D          the dense feature dimension: 16, 64, 256
      M          the sampled positions: 250, 1000, 4000
      tau        the temperature: 0.1, 0.53, 1.0
      steps      the pretraining length: 250, 500, 1000, 2000 (the preset's: 4000)
      noise      the Gaussian noise's sigma as a multiple of sigma ~ U(0, 0.5): 0 (none), 0.01
      left-out   one intensity augmentation left out: noise, blur, gamma, bias-field (noise left
                 out is the noise factor's 0: the same pretraining, computed once)
      spatial    the spatial transform phi reduced to the identity; its equivariance figures are
                 measured beside the preset backbone's.
    The smoke preset runs a reduced grid, one value per factor besides the preset's (D 32, M 64,
    tau 0.1, 20 steps, noise 0, noise and blur left out, phi the identity), for CI.
    Prints a time estimate first, then a table per factor (mean Dice over draws; the paired
    difference from the preset's value in Dice points with its 95% t-interval), and writes
    results.md, results.csv, results.json and pictures/ablation-FACTOR.svg into the run folder.
    Every point is a run folder of its own under points/ (points/preset is a reproduction run
    folder of the preset); every pretraining and run is a stage, computed once.

      --data DIR     an ACDC-layout folder. Default: the synthetic phantom (.cache/).
      --preset P     smoke (CI's, about a minute), cpu (default), paper (prints its estimate and
                     runs only with --yes).
      --seed N       the run seed (default 1): the draws and seeds of verify reproduce's run.
      --run DIR      run folder (default runs/ablate-PRESET-seedN); finished stages are reused.
      --inference-convolutions winograd2x2|winograd4x4  as verify reproduce's: by default the
                     run folder's own choice, else the preset's.
      --fresh        delete the run folder's finished stages first.
      --workers N    threads, 1-16 (default: all cores). Results do not depend on it.
      --factors LIST the factors to vary, comma-separated (default: all): D,M,tau,steps,noise,left-out,spatial.
      --values F=L   replace factor F's values, e.g. --values "D=16,128;steps=500".
      --list-stages  print the stages in dependency order (level, name, inputs); compute nothing.
      --stage NAME   compute only that stage (KEY/STAGE, as --list-stages prints it).
      --jobs N       compute the stages in up to N child processes at a time, as verify reproduce
                     does (default: 2 for the cpu preset on 2 or more workers, else 1).
      --stop-after MINUTES
                     with --jobs: start no stage expected to end later than MINUTES from now,
                     as verify reproduce does, and stop without the tables.
      --reuse DIR    copy the preset's InfoNCE pretraining, its LP and FT runs at budgets 1 and 5,
                     its in-context runs and equivariance figures from the verify reproduce run
                     folder DIR (same preset, seed and data; refused otherwise).
      --partial      compute nothing: the tables of the stages finished so far (also written to
                     results-partial.md and .csv in the run folder).
    """

  static func run(_ options: inout Options) throws {
    try options.requireNoPositional(name)
    let seed = try options.uint64("seed", default: 1)
    var (presetName, preset) = try options.experimentPreset(seed: seed)
    let runDirectory = options.runDirectory(default: "ablate-\(presetName)-seed\(seed)")
    preset.inferenceConvolutions = try options.inferenceConvolutions(
      preset: preset, runDirectory: runDirectory, fresh: options.flag("fresh"))
    let grid = AblationGrid(preset: preset, factors: try factors(options), values: try values(options, preset: presetName))
    let workers = try options.workers()
    // As verify reproduce: two 1-worker stage processes train faster than one 2-worker process on
    // 2 cores (README, Speed); smoke stages last seconds, less than starting a process costs.
    let jobs = try options.int("jobs", default: presetName == "cpu" && workers >= 2 ? 2 : 1, range: 1...maximumWorkerCount)
    if options.string("stage") != nil && (options.string("jobs") != nil && jobs > 1 || options.flag("fresh")) {
      throw VerifyError("--stage computes one stage; it does not go with --jobs or --fresh", exitCode: 64)
    }
    let deadline = try options.stopAfter(jobs: jobs)
    if options.flag("list-stages") {
      for stage in grid.stages() {
        say("\(stage.level) \(stage.name)\(stage.inputs.isEmpty ? "" : " " + stage.inputs.joined(separator: ","))")
      }
      return
    }
    if let stage = options.string("stage"), !grid.stages().contains(where: { $0.name == stage }) {
      throw VerifyError("unknown stage '\(stage)' (verify ablate --list-stages lists the stages of this grid)", exitCode: 64)
    }
    let data = try options.experimentData(config: preset)
    say("verify ablate: preset \(presetName), seed \(seed), \(workers) worker(s), run folder \(runDirectory.path)")
    say("  \(grid.points.count) points (\(grid.points.count - 1) pretrainings besides the preset's), budgets \(grid.budgets)")
    let top = RunStore(directory: runDirectory)
    try top.open(configuration: RunIdentity(config: preset, data: data.source), fresh: options.flag("fresh"))
    try Console.shared.openLog(runDirectory.appendingPathComponent("log.txt"))
    var ablation = Ablation(grid: grid, data: data, directory: runDirectory, workers: workers)
    if let source = options.path("reuse", relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) {
      _ = try ablation.reusePreset(from: source)
    }
    if let stage = options.string("stage") {
      try ablation.computeStage(named: stage)
      return
    }
    if options.flag("partial") {
      let report = try ablation.report(estimate: "partial: computed nothing", seconds: 0)
      try report.writePartial(to: runDirectory)
      show(report)
      return
    }
    let started = Date()
    let (estimate, _, stageSeconds, calibration) = try ablation.estimate(repeats: presetName == "paper" ? 1 : 3)
    say((jobs > 1 ? "\(jobs) jobs of \(max(1, workers / jobs)) worker(s); the estimate is for one job: " : "") + estimate)
    if jobs > 1, let calibration { say(calibration.text) }
    if presetName == "paper" && !options.flag("yes") {
      say("Not started: add --yes to run the paper preset's ablation.")
      return
    }
    if jobs > 1 {
      let finished = try Jobs.run(
        stages: ablation.stages(), stageSeconds: stageSeconds, calibration: calibration, jobs: jobs,
        deadline: deadline, arguments: Jobs.childArguments(
          name, options, values: ["data", "preset", "seed", "factors", "values", "inference-convolutions"], flags: [], runDirectory: runDirectory,
          workers: max(1, workers / jobs)),
        runDirectory: runDirectory, stageFile: ablation.stageFile)
      guard finished else { return }
    }
    let report = try ablation.run(estimate: estimate, earlierSeconds: Date().timeIntervalSince(started))
    try report.write(to: runDirectory)
    show(report)
    say("Results: \(runDirectory.path)/results.{md,csv,json}, pictures/ablation-*.svg; total time \(formatDuration(report.totalSeconds))")
  }

  /// `--factors`: the factors named, or a one-line error naming an unknown one.
  static func factors(_ options: Options) throws -> [AblationFactor] {
    guard let text = options.string("factors") else { return AblationFactor.allCases }
    let names = AblationFactor.allCases.map(\.rawValue).joined(separator: ", ")
    return try text.split(separator: ",").map { name in
      guard let factor = AblationFactor(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
        throw VerifyError("--factors: unknown factor '\(name)' (choose from \(names))", exitCode: 64)
      }
      return factor
    }
  }

  /// The preset's grid with `--values` applied, or a one-line error.
  static func values(_ options: Options, preset: String) throws -> AblationValues {
    var values = AblationValues.standard(preset: preset)
    for item in (options.string("values") ?? "").split(separator: ";") {
      let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
      guard parts.count == 2, let factor = AblationFactor(rawValue: parts[0]) else {
        throw VerifyError("--values: '\(item)' is not FACTOR=LIST with a factor of \(AblationFactor.allCases.map(\.rawValue).joined(separator: ", "))", exitCode: 64)
      }
      do { try values.set(factor, from: parts[1]) } catch let error as ExperimentError { throw VerifyError(error.message, exitCode: 64) }
    }
    return values
  }

  /// The tables, equivariance figures and pretraining lines, on standard output.
  static func show(_ report: AblationReport) {
    say("")
    say("# \(report.dataSource)")
    say(report.tablesText)
    say("")
    if !report.equivarianceText.isEmpty {
      say(report.equivarianceText)
      say("")
    }
    say("Pretraining:")
    say(report.pretrainingText)
  }
}
