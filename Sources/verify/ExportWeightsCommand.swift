import Experiment
import Foundation
import Optimized
import Reference

/// `verify export-weights`: a run folder's pretrained backbone as a safetensors file the official
/// PyTorch U-Net loads with `load_state_dict(..., strict=True)`.
enum ExportWeightsCommand: VerifyCommand {
  static let name = "export-weights"
  static let summary = "write a run's pretrained backbone as .safetensors with the official PyTorch keys"
  static let options = [
    OptionSpec("out", value: true), OptionSpec("which", value: true), OptionSpec("with-projection", value: false),
    OptionSpec("sample", value: true),
  ]
  static let help = """
    usage: verify export-weights RUN --out FILE.safetensors [--which pix2rep|pix2rep-v2] [--with-projection]
                                           [--sample FILE.safetensors]

    Reads the best-validation pretrained weights of the run folder RUN (weights/pretrain-*.p2rw,
    checked against RUN/config.json) and writes them in the safetensors format with the official
    state-dict names (docs/PROTOCOL.md section 2).

      --out FILE         the .safetensors file to write.
      --which W          pix2rep (InfoNCE, default) or pix2rep-v2 (Barlow Twins).
      --with-projection  also write the projection head g (official MLP keys net.0, net.1, net.3);
                         then the file no longer loads strictly into the UNet alone.
      --sample FILE      also write a seeded input image "input" (1, 1, S, S) and the backbone's
                         features "features" (1, D, S, S) computed here (BatchNorm in evaluation
                         mode), for scripts/check_safetensors.py to compare PyTorch's output with.

    By default the file holds exactly the official UNet's state dict: every backbone tensor (F32)
    and one num_batches_tracked (I64 scalar) per BatchNorm. This package does not count BatchNorm
    batches, so num_batches_tracked is written as 0 (PyTorch uses it only when momentum is None).
    The header's __metadata__ records the source run, the objective and the model sizes.
    """

  static func run(_ options: inout Options) throws {
    guard options.positional.count == 1, let runPath = options.positional.first else {
      throw VerifyError("expects one run folder (see --help)", exitCode: 64)
    }
    guard let out = options.string("out") else { throw VerifyError("--out FILE.safetensors is required", exitCode: 64) }
    let objective: PretrainingObjective
    switch options.string("which") ?? "pix2rep" {
    case "pix2rep": objective = .infoNCE
    case "pix2rep-v2": objective = .barlowTwins
    case let other: throw VerifyError("--which must be pix2rep or pix2rep-v2, got '\(other)'", exitCode: 64)
    }
    let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    let run = URL(fileURLWithPath: runPath, relativeTo: cwd).standardizedFileURL
    let configURL = run.appendingPathComponent("config.json")
    guard let data = FileManager.default.contents(atPath: configURL.path) else {
      throw VerifyError("\(configURL.path): no such file (not a run folder of verify reproduce)")
    }
    guard let identity = try? JSONDecoder().decode(RunIdentity.self, from: data) else {
      throw VerifyError("\(configURL.path): not a run configuration")
    }
    let model = identity.config.model
    let weights = run.appendingPathComponent("weights/pretrain-\(objective.rawValue).p2rw")
    guard FileManager.default.fileExists(atPath: weights.path) else {
      throw VerifyError("\(weights.path): no such file (has the pretraining of this run finished?)")
    }
    let values = try WeightsFile.read(from: weights, expecting: model)
    let entries = Safetensors.backboneEntries(
      values: values, layout: ParameterLayout(config: model), includeProjection: options.flag("with-projection"))
    let metadata = [
      "format": "pt",
      "producer": "Pix2Rep Swift, verify export-weights",
      "source": "\(run.lastPathComponent)/weights/\(weights.lastPathComponent) (\(identity.data))",
      "objective": objective == .infoNCE ? "Pix2Rep (InfoNCE)" : "Pix2Rep-v2 (Barlow Twins)",
      "model": "input \(model.inputChannels), widths \(model.widths), D \(model.features), S \(model.imageSize)",
      "num_batches_tracked": "not recorded by this package; written as 0",
    ]
    let bytes = Safetensors.encode(entries, metadata: metadata)
    let outURL = URL(fileURLWithPath: out, relativeTo: cwd).standardizedFileURL
    try writeAtomically(Data(bytes), to: outURL)
    if let sample = options.string("sample") {
      var rng = SplitMix64(seed: 2024, stream: 7)
      let s = model.imageSize
      let input = Tensor<Float>(shape: Shape(1, model.inputChannels, s, s), data: (0..<(model.inputChannels * s * s)).map { _ in Float(rng.uniform()) })
      var net = Pix2RepNetwork(config: model, backend: OptimizedBackend(workers: defaultWorkerCount()), values: values)
      let features = net.frozenFeatures(input)
      let sampleURL = URL(fileURLWithPath: sample, relativeTo: cwd).standardizedFileURL
      try writeAtomically(Data(Safetensors.encode([
        SafetensorsEntry(name: "input", shape: [1, model.inputChannels, s, s], floats: input.data),
        SafetensorsEntry(name: "features", shape: [1, model.features, s, s], floats: features.data),
      ])), to: sampleURL)
      say("wrote \(sampleURL.path): a seeded input and its features f(x) from this package")
    }
    say("wrote \(outURL.path): \(entries.count) tensors (\(entries.filter { $0.dtype == "F32" }.count) F32, \(entries.filter { $0.dtype == "I64" }.count) num_batches_tracked), \(bytes.count) bytes")
  }
}
