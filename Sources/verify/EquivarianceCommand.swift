import Dataset
import Experiment
import Foundation
import Optimized
import Reference

/// `verify equivariance`: the equivariance and invariance figures of `verify reproduce` for any
/// backbone, and a picture of the pairing.
enum EquivarianceCommand: VerifyCommand {
  static let name = "equivariance"
  static let summary = "equivariance and invariance figures of any weights, with a picture of the pairing"
  static let options = [
    OptionSpec("weights", value: true), OptionSpec("data", value: true), OptionSpec("preset", value: true),
    OptionSpec("seed", value: true), OptionSpec("out", value: true), OptionSpec("workers", value: true),
  ]
  static let help = """
    usage: verify equivariance --weights FILE [--data DIR] [--preset smoke|cpu|paper] [--seed N]
                               [--out FILE.png] [--workers N]

    Measures on 32 seeded test slices, for the given backbone and for the seeded random one of the
    same sizes: the relative error ‖φ·f(x) − f(φ·x)‖/‖φ·f(x)‖, the cosine of corresponding pixel
    features against random pairs, and the cosine of f(t(x)) and f(x) for intensity augmentations
    t (the figures of verify reproduce, with the same slices and transforms for the same preset and
    seed). Writes a picture of one slice: x, φ·x, and the first three principal components of
    f(x), φ·f(x) and f(φ·x) as RGB.

      --weights FILE  a weights file of this package (.p2rw, sizes from its header) or a
                      .safetensors backbone with the official keys (sizes from its shapes; F32).
      --data DIR      an ACDC-layout folder. Default: the synthetic phantom of the preset.
      --preset P      the preset whose data preprocessing (S, phantom) and test set to use.
                      Default: the preset whose model matches a .p2rw file, else cpu.
      --seed N        the run seed (default 1).
      --out FILE.png  the picture (default: FILE's name with -equivariance.png, in the current folder).
      --workers N     threads, 1-16 (default: all cores, at most 16).
    """

  static func run(_ options: inout Options) throws {
    try options.requireNoPositional(name)
    guard let path = options.string("weights") else { throw VerifyError("--weights FILE is required", exitCode: 64) }
    let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    let url = URL(fileURLWithPath: path, relativeTo: cwd).standardizedFileURL
    let seed = try options.uint64("seed", default: 1)
    let workers = try options.workers()
    let isSafetensors = url.pathExtension == "safetensors"
    let stored: ModelConfig? = isSafetensors ? nil : try WeightsFile.storedConfiguration(at: url)
    let matching = ExperimentConfig.presetNames.first { ExperimentConfig.preset($0, seed: seed)?.model == stored } ?? "cpu"
    var config = try options.experimentPreset(seed: seed, fallback: matching).config
    let backend = OptimizedBackend(workers: workers)
    var values: [Float]
    if isSafetensors {
      let file = try Safetensors.read(from: url)
      config.model = try Safetensors.inferModel(file.entries, file: url.lastPathComponent, base: config.model)
      values = Pix2RepNetwork(config: config.model, backend: backend, seed: Reproduction.stageSeed("init", runSeed: seed)).values
      try Safetensors.loadBackbone(file.entries, file: url.lastPathComponent, into: &values, layout: ParameterLayout(config: config.model))
    } else {
      config.model = stored!
      values = try WeightsFile.read(from: url, expecting: config.model)
    }
    let data: DatasetSplits
    if let dir = options.string("data") {
      let root = URL(fileURLWithPath: dir, relativeTo: cwd).standardizedFileURL
      data = try DatasetSplits.load(root: root, source: "ACDC at \(root.path)", config: config)
    } else {
      let root = try DatasetSplits.ensurePhantom(cache: cwd.appendingPathComponent(".cache"), config: config)
      data = try DatasetSplits.load(
        root: root, source: DatasetSplits.phantomSource(config), config: config)
    }
    say("verify equivariance: \(url.lastPathComponent), widths \(config.model.widths), D = \(config.model.features), S = \(config.model.imageSize); \(data.source), \(data.test.count) test slices")
    let random = Pix2RepNetwork(config: config.model, backend: backend, seed: Reproduction.stageSeed("init", runSeed: seed)).values
    let measureSeed = Reproduction.stageSeed("equivariance", runSeed: seed)
    var figures: [EquivarianceFigure] = []
    for (label, v) in [(url.lastPathComponent, values), ("random", random)] {
      var net = Pix2RepNetwork(config: config.model, backend: backend, values: v)
      figures.append(measureEquivariance(&net, name: label, test: data.test, slices: 32, seed: measureSeed))
    }
    say("")
    say("| backbone | rel. error ‖φ·f(x) − f(φ·x)‖/‖f(x)‖ | cos(corresponding) | cos(random pairs) | cos(f(t(x)), f(x)) |")
    say("|---|---|---|---|---|")
    for e in figures {
      say(String(format: "| %@ | %.3f | %.3f | %.3f | %.3f |", e.backbone, e.relativeError, e.correspondingCosine, e.randomPairCosine, e.intensityCosine))
    }
    var net = Pix2RepNetwork(config: config.model, backend: backend, values: values)
    let slice = fixedTestSlices(data.test)[0]
    let png = equivariancePicturePNG(&net, test: data.test, slice: slice, seed: Reproduction.stageSeed("equivariance-picture", runSeed: seed))
    let outURL = options.string("out").map { URL(fileURLWithPath: $0, relativeTo: cwd).standardizedFileURL }
      ?? cwd.appendingPathComponent(url.deletingPathExtension().lastPathComponent + "-equivariance.png")
    try writeAtomically(Data(png), to: outURL)
    let id = data.test.volumes[data.test.volumeOfSlice[slice]]
    say("")
    say("picture: \(outURL.path) (patient \(id.patient) \(id.phase): x, φ·x, then the first three principal components of f(x), φ·f(x), f(φ·x))")
  }
}
