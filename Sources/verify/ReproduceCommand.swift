import Dataset
import Experiment
import Foundation
import Optimized
import Reference

/// `verify reproduce`: the paper's protocol end to end (docs/PROTOCOL.md).
enum ReproduceCommand: VerifyCommand {
  static let name = "reproduce"
  static let summary = "pretrain, train heads with few labels, evaluate, and judge the paper's claims"
  static let options = [
    OptionSpec("data", value: true), OptionSpec("preset", value: true), OptionSpec("seed", value: true),
    OptionSpec("run", value: true), OptionSpec("fresh", value: false), OptionSpec("workers", value: true),
    OptionSpec("require-reproduced", value: false), OptionSpec("yes", value: false),
    OptionSpec("init", value: true), OptionSpec("save-predictions", value: false),
    OptionSpec("lp-cached-features", value: false), OptionSpec("list-stages", value: false),
    OptionSpec("stage", value: true), OptionSpec("jobs", value: true), OptionSpec("partial", value: false),
    OptionSpec("max-epochs", value: true), OptionSpec("pretraining-steps", value: true), OptionSpec("reuse", value: true),
    OptionSpec("inference-convolutions", value: true), OptionSpec("stop-after", value: true),
  ]
  static let help = """
    usage: verify reproduce [--data DIR] [--preset smoke|cpu|paper] [--seed N] [--run DIR] [--fresh]
                            [--workers N] [--require-reproduced] [--yes] [--init FILE] [--save-predictions]
                            [--lp-cached-features] [--list-stages] [--stage NAME] [--jobs N]
                            [--partial] [--max-epochs N] [--pretraining-steps N] [--reuse DIR]
                            [--inference-convolutions winograd2x2|winograd4x4] [--stop-after MINUTES]

    Runs docs/PROTOCOL.md sections 3-4 on the optimized kernels: pretraining with InfoNCE (Pix2Rep) and
    Barlow Twins (Pix2Rep-v2); for each labelled budget and seeded draw, linear probing and
    fine-tuning of both backbones, the supervised U-Net (learning rate chosen on validation) and,
    at one patient, a linear probe on a random backbone (its BatchNorm statistics re-estimated on
    the unlabelled slices); every run validates every epoch or 20 steps, stops after 6 validations
    without a new best (at most 200 epochs) and keeps its best weights; hard 3D Dice on the test
    volumes. Before it starts it prints its time estimate from step times measured here. Prints
    the Dice table beside the paper's claims, each judged on differences paired by draw with a 95%
    interval, and writes log.txt, results.md, results.csv, results.json,
    pictures/ (segmentations, representation, pairing, annotation efficiency, loss curves) and a
    self-contained report.html into the run folder.

      --data DIR     an ACDC-layout folder (training/, testing/). Default: the synthetic phantom,
                     generated once into .cache/ in the current folder.
      --preset P     smoke (about a minute, CI's), cpu (default; the time estimate is printed
                     first), paper (the paper's sizes; prints its time estimate and runs only
                     with --yes).
      --seed N       seed of every draw (default 1).
      --run DIR      run folder (default runs/PRESET-seedN). Finished stages there are reused;
                     a folder made with another configuration is refused unless --fresh.
      --fresh        delete the run folder's finished stages first.
      --workers N    threads, 1-16 (default: all cores, at most 16). Results do not depend on it.
      --require-reproduced  exit 2 when a claim is not reproduced.
      --max-epochs N the epoch cap of every downstream run (default: the preset's, 200 as in the
                     official code). At one or two patients the cap is 400 or 600 steps and most runs
                     reach it with the validation loss still falling (results.md gives its change
                     over each run's last quarter); a larger cap tests whether that matters.
                     Recorded in the run folder's identity.
      --pretraining-steps N  the length of every pretraining (default: the preset's; its
                     validation interval stays). A long one's validation curve shows every
                     shorter length's: the first steps of a run do not depend on its length.
                     Recorded in the run folder's identity.
      --reuse DIR    copy the finished stages of run folder DIR that this run would compute to
                     the same bits: DIR's configuration may differ only in --pretraining-steps
                     (the baselines are shared), --max-epochs (the pretrainings are shared, and
                     every downstream run that stopped by patience within both caps) or
                     --inference-convolutions (the pretrainings are shared).
      --inference-convolutions winograd2x2|winograd4x4  the algorithm of the evaluation-mode
                     network's 3x3 convolutions (validation, test prediction, frozen features).
                     Default: the one the run folder was made with, else winograd2x2 (every
                     preset's, the arithmetic of the README's tables); winograd4x4 predicts
                     1.18-1.38x faster but rounds differently, so the two give different bits.
                     Recorded in the identity.
      --lp-cached-features  linear probing on cached features of un-augmented slices (faster;
                     a deviation from the protocol, which augments them; recorded in the run).
      --list-stages  print the plan's stages in dependency order, one per line: level, name,
                     inputs. Stages of one level can run at the same time once the lower levels
                     have finished; nothing is computed.
      --stage NAME   compute only that stage into the run folder (refused while its inputs have
                     not finished; two processes never compute the same stage). Then the plain
                     command, with the same options, assembles the table from the finished
                     stages. For a job scheduler over a shared run folder (README).
      --jobs N       compute the stages in up to N child processes at a time (the workers split
                     among them; a stage starts once its inputs have finished, the longest
                     first by the estimate; the progress line shows each child's step and
                     loss, their messages go to jobs/STAGE.stderr), then assemble the table;
                     the same results as --jobs 1. Default: 2 for the cpu preset on 2 or more
                     workers (measured faster on 2 cores than one process of 2 workers), else 1.
      --stop-after MINUTES
                     with --jobs: start no stage that its estimate says would end more than
                     MINUTES from now, wait for the running ones, and stop without the table
                     (the run folder resumes the rest), for a machine or job slot that ends at
                     a known time. A downstream run's estimate is rough: one can still overrun.
      --partial      train nothing: print the table, claims and checks of the stages finished
                     so far (results-partial.md and .csv in the run folder), e.g. while a long
                     run goes on in another process.
      --init FILE    a .safetensors backbone (official U-Net keys, F32; num_batches_tracked and
                     head keys are ignored) that replaces the seeded random initialisation every
                     method starts from: both pretrainings, the supervised baseline and the
                     random-backbone probe. Recorded in the run folder's identity.
      --save-predictions  write the test volumes' predicted labels of every budget-1, draw-1 run
                     as NIfTI (predictions/METHOD-b1-d1/patientNNN_PHASE.nii.gz, uint8) on the
                     cropped, resized grid, with the preprocessed images (predictions/images) and
                     ground truth (predictions/truth) on the same grid.
    """

  static func run(_ options: inout Options) throws {
    try options.requireNoPositional(name)
    let seed = try options.uint64("seed", default: 1)
    var (presetName, config) = try options.experimentPreset(seed: seed)
    config.linearProbeCachedFeatures = options.flag("lp-cached-features")
    config.maxEpochs = try options.int("max-epochs", default: config.maxEpochs, range: 1...100_000)
    config.pretrainingSteps = try options.int("pretraining-steps", default: config.pretrainingSteps, range: 1...10_000_000)
    let workers = try options.workers()
    // Two 1-worker stage processes trained 22-28% more steps per second than one 2-worker process
    // on the 2-core development machine (README). Smoke stages last seconds (starting processes
    // costs more); each paper-preset process would hold the 135 M-parameter model: one job there.
    let jobs = try options.int("jobs", default: presetName == "cpu" && workers >= 2 ? 2 : 1, range: 1...maximumWorkerCount)
    if options.string("stage") != nil && options.string("jobs") != nil && jobs > 1 {
      throw VerifyError("--jobs runs stages in child processes; it does not go with --stage", exitCode: 64)
    }
    let deadline = try options.stopAfter(jobs: jobs)
    if options.string("stage") != nil && options.flag("fresh") {
      throw VerifyError("--fresh deletes every finished stage of the run folder; it does not go with --stage", exitCode: 64)
    }
    if options.flag("list-stages") {
      for stage in Reproduction.stages(config) {
        say("\(stage.level) \(stage.name)\(stage.inputs.isEmpty ? "" : " " + stage.inputs.joined(separator: ","))")
      }
      return
    }
    let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    let runDirectory = options.runDirectory(default: "\(presetName)-seed\(seed)")
    config.inferenceConvolutions = try options.inferenceConvolutions(
      preset: config, runDirectory: runDirectory, fresh: options.flag("fresh"))

    // The --init backbone is checked before the data are loaded, so a bad file fails at once.
    let initial = try options.string("init").map {
      try Safetensors.initialBackbone(at: URL(fileURLWithPath: $0, relativeTo: cwd).standardizedFileURL, model: config.model)
    }
    let data = try options.experimentData(config: config)

    say("verify reproduce: preset \(presetName), seed \(seed), \(workers) worker(s), run folder \(runDirectory.path)")
    for line in config.summaryLines { say("  " + line) }
    if presetName == "paper" && !options.flag("yes") {
      let reproduction = Reproduction(config: config, data: data, store: RunStore(directory: runDirectory), workers: workers)
      say("paper preset, " + (try reproduction.estimate(repeats: 1)))
      say("Not started: add --yes to run the paper preset.")
      return
    }
    let store = RunStore(directory: runDirectory)
    let identity = RunIdentity(config: config, data: data.source, initial: initial?.identity)
    try store.open(configuration: identity, fresh: options.flag("fresh"))
    try Console.shared.openLog(runDirectory.appendingPathComponent("log.txt"))
    say("verify reproduce started \(Date()) (log: \(runDirectory.path)/log.txt)")
    if let source = options.string("reuse") {
      _ = try store.reuseStages(from: URL(fileURLWithPath: source, relativeTo: cwd).standardizedFileURL, identity: identity)
    }
    var reproduction = Reproduction(config: config, data: data, store: store, workers: workers)
    reproduction.initialBackbone = initial.map { ($0.entries, $0.file) }
    reproduction.savePredictions = options.flag("save-predictions")
    if let stage = options.string("stage") {
      try reproduction.computeStage(named: stage)
      return
    }
    if options.flag("partial") {
      let report = try reproduction.partialReport()
      try report.writePartial(to: runDirectory)
      show(report)
      return
    }
    if jobs > 1 && options.string("stage") == nil {
      let started = Date()
      let (estimate, estimatedSeconds, stageSeconds, calibration) = try reproduction.estimateWithStageSeconds()
      say("\(jobs) jobs of \(max(1, workers / jobs)) worker(s); the estimate is for one job: " + estimate)
      if let calibration { say(calibration.text) }
      let finished = try Jobs.run(
        stages: Reproduction.stages(config), stageSeconds: stageSeconds, calibration: calibration, jobs: jobs,
        deadline: deadline, arguments: Jobs.childArguments(
          name, options, values: ["data", "preset", "seed", "init", "max-epochs", "pretraining-steps", "inference-convolutions"], flags: ["lp-cached-features"],
          runDirectory: runDirectory, workers: max(1, workers / jobs)),
        runDirectory: runDirectory) { runDirectory.appendingPathComponent("stages/\($0).json") }
      guard finished else { return }
      reproduction.earlierWork = (Date().timeIntervalSince(started), estimate, estimatedSeconds)
    }
    let report = try reproduction.run()
    show(report)
    say("Results: \(runDirectory.path)/results.{md,csv,json}, report.html, pictures/; total time \(formatDuration(report.totalSeconds))\(report.estimatedSeconds.map { " (estimated before the run: \(formatDuration($0)))" } ?? "")")
    if options.flag("require-reproduced") && report.claims.contains(where: { !$0.reproduced }) {
      throw VerifyError("--require-reproduced: not every claim was reproduced", exitCode: 2)
    }
  }

  /// The table, claims, checks and figures of a report, on standard output.
  static func show(_ report: Report) {
    say("")
    say("# \(report.dataSource)")
    if !report.estimate.isEmpty && report.estimate.hasPrefix("partial") { say("(\(report.estimate))") }
    say(report.diceTable())
    say("")
    for text in [report.tableNotes, report.claimsText, report.inContextText, report.propagationText] where !text.isEmpty {
      say(text)
      say("")
    }
    if !report.sanity.isEmpty {
      say("Sanity checks (reported, never used to steer training):")
      for line in report.sanity { say("- " + line) }
      say("")
    }
    say("Pretraining:")
    say(report.pretrainingText)
    say("")
    say(report.equivarianceText)
    say("")
  }
}
