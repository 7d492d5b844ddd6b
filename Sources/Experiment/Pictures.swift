import Dataset
import Foundation
import Optimized
import Reference

/// A picture of a run folder: a PNG or SVG file under pictures/, with the caption the report shows.
public struct Picture: Codable, Sendable {
  /// File name under pictures/.
  public var file: String
  public var title: String
  public var caption: String
}

// MARK: - Principal components of per-pixel features

/// The first three principal components of the per-pixel features of every slice, mapped to RGB
/// (one basis for the whole batch, so colours compare across slices). features: (N, D, H, W).
/// Each component is mapped linearly from its 1st-99th percentile over the batch to 0-255; the
/// sign of each component is fixed so that its largest coefficient is positive. Components beyond
/// D are black. Returns N RGB planes, row-major (y, x).
public func principalComponentsRGB<Scalar: BinaryFloatingPoint & Sendable>(_ features: Tensor<Scalar>) -> [[UInt8]] {
  let s = features.shape
  let d = s.c, pixels = s.n * s.plane
  func value(_ pixel: Int, _ c: Int) -> Double {
    let (n, p) = pixel.quotientAndRemainder(dividingBy: s.plane)
    return Double(features.data[(n * d + c) * s.plane + p])
  }
  // Covariance over at most 4096 evenly spaced pixels.
  let stepSize = max(1, pixels / 4096)
  let sample = Array(stride(from: 0, to: pixels, by: stepSize))
  var mean = [Double](repeating: 0, count: d)
  for p in sample { for c in 0..<d { mean[c] += value(p, c) } }
  for c in 0..<d { mean[c] /= Double(sample.count) }
  var cov = [Double](repeating: 0, count: d * d)
  var centred = [Double](repeating: 0, count: d)
  for p in sample {
    for c in 0..<d { centred[c] = value(p, c) - mean[c] }
    for i in 0..<d where centred[i] != 0 { for j in 0..<d { cov[i * d + j] += centred[i] * centred[j] } }
  }
  // Power iteration with deflation by orthogonalisation, from fixed starting vectors.
  var components: [[Double]] = []
  for k in 0..<min(3, d) {
    var v = (0..<d).map { 1 + Double(($0 * 7 + k * 3) % 11) / 10 }
    for _ in 0..<300 {
      var w = [Double](repeating: 0, count: d)
      for i in 0..<d { for j in 0..<d { w[i] += cov[i * d + j] * v[j] } }
      for u in components {
        let dot = zip(w, u).reduce(0) { $0 + $1.0 * $1.1 }
        for i in 0..<d { w[i] -= dot * u[i] }
      }
      let norm = w.reduce(0) { $0 + $1 * $1 }.squareRoot()
      if norm < 1e-300 { break }
      v = w.map { $0 / norm }
    }
    if let largest = v.indices.max(by: { abs(v[$0]) < abs(v[$1]) }), v[largest] < 0 { v = v.map { -$0 } }
    components.append(v)
  }
  // Project every pixel, then map each component to 0-255.
  var projections = [[Double]](repeating: [Double](repeating: 0, count: pixels), count: 3)
  for (k, u) in components.enumerated() {
    for p in 0..<pixels {
      var t = 0.0
      for c in 0..<d { t += (value(p, c) - mean[c]) * u[c] }
      projections[k][p] = t
    }
  }
  var out = [[UInt8]](repeating: [UInt8](repeating: 0, count: 3 * s.plane), count: s.n)
  for k in 0..<components.count {
    let sorted = projections[k].sorted()
    let lo = sorted[Int(Double(pixels - 1) * 0.01)], hi = sorted[Int(Double(pixels - 1) * 0.99)]
    let scale = hi > lo ? 255 / (hi - lo) : 0
    for p in 0..<pixels {
      let (n, q) = p.quotientAndRemainder(dividingBy: s.plane)
      out[n][3 * q + k] = UInt8(min(255, max(0, ((projections[k][p] - lo) * scale).rounded())))
    }
  }
  return out
}

/// Greyscale image tile (values in [0, 1]) as RGB.
func greyTile(_ image: [Float], size: Int) -> [UInt8] {
  LabelOverlay.rgb(image: image, labels: nil, width: size, height: size)
}

/// Tiles RGB planes into a PNG, upscaled to at least 128 pixels per tile.
func tiledPNG(_ tiles: [[UInt8]], size: Int, columns: Int) -> [UInt8] {
  let sheet = LabelOverlay.tile(tiles, tileWidth: size, tileHeight: size, columns: columns, zoom: max(1, 128 / size))
  return PNG.encode(width: sheet.width, height: sheet.height, color: .rgb, pixels: sheet.pixels)
}

/// The picture of the pairing for one slice x and one sampled phi: x, phi·x, and the first three
/// principal components (one basis for the three) of f(x), phi·f(x) and f(phi·x). The last two
/// should look alike where the warped source lies inside the image.
public func equivariancePicturePNG<B: Backend>(_ net: inout Pix2RepNetwork<B>, test: SliceSet, slice: Int, seed: UInt64) -> [UInt8] {
  var rng = SplitMix64(seed: seed, stream: 41)
  let affine = sampleSpatialTransform(rng: &rng).affine
  let x: Tensor<B.Scalar> = test.imageTensor([slice])
  let warped = net.backend.warpForward(input: x, affines: [affine])
  let f = net.frozenFeatures(x)
  let phiF = net.backend.warpForward(input: f, affines: [affine])
  let fPhi = net.frozenFeatures(warped)
  let all = Tensor(shape: Shape(3, f.shape.c, f.shape.h, f.shape.w), data: f.data + phiF.data + fPhi.data)
  let rgb = principalComponentsRGB(all)
  let size = test.size
  let tiles = [greyTile(x.data.map { Float($0) }, size: size), greyTile(warped.data.map { Float($0) }, size: size)] + rgb
  return tiledPNG(tiles, size: size, columns: 5)
}

/// A few fixed test slices: the middle slice of the first, middle and last test volumes.
public func fixedTestSlices(_ test: SliceSet, count: Int = 3) -> [Int] {
  guard !test.volumes.isEmpty else { return [] }
  let v = test.volumes.count
  let volumes = Array(Set([0, v / 2, v - 1].prefix(count))).sorted()
  return volumes.compactMap { volume in
    let slices = (0..<test.count).filter { test.volumeOfSlice[$0] == volume }
    return slices.isEmpty ? nil : slices[slices.count / 2]
  }
}

// MARK: - The pictures of a reproduction

extension Reproduction {
  /// The weights of a budget-1, draw-1 downstream run, kept for the pictures and predictions.
  func downstreamWeightsURL(_ method: Method) -> URL { store.weightsURL("run-\(method.key)-1-1") }

  /// The name of the backbone every method starts from: "random", or the `--init` file.
  var initialLabel: String { initialBackbone.map { "initial (\($0.file))" } ?? "random" }

  /// Writes every picture into pictures/ and returns them in report order. Methods whose
  /// budget-1 weights are absent (run folders from before they were saved) are left out of the
  /// overlays and said so in the caption.
  func writePictures(
    runs: [RunResult], backbones: [PretrainingObjective: [Float]], random: [Float], propagation: [PropagationResult] = []
  ) throws -> [Picture] {
    let folder = store.directory.appendingPathComponent("pictures")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    var pictures: [Picture] = []
    func save(_ bytes: [UInt8], _ file: String, _ title: String, _ caption: String) throws {
      try writeAtomically(Data(bytes), to: folder.appendingPathComponent(file))
      pictures.append(Picture(file: file, title: title, caption: caption))
    }
    let test = data.test, size = test.size
    let chosen = fixedTestSlices(test)
    let describe = chosen.map { "patient \(test.volumes[test.volumeOfSlice[$0]].patient) \(test.volumes[test.volumeOfSlice[$0]].phase)" }
      .joined(separator: "; ")

    // Segmentation overlays (of the trained methods: the in-context runs keep no weights).
    var methods: [Method] = [], missing: [Method] = []
    var predictions: [[UInt8]] = []
    for method in Method.allCases where !method.isInContext && runs.contains(where: { $0.method == method && $0.budget == 1 && $0.draw == 1 }) {
      let url = downstreamWeightsURL(method)
      guard FileManager.default.fileExists(atPath: url.path) else {
        missing.append(method)
        continue
      }
      var forward = EvaluationForward(
        Pix2RepNetwork(config: config.model, backend: backend, values: try WeightsFile.read(from: url, expecting: config.model)))
      predictions.append(forward.labels(test.imageTensor(chosen)))
      methods.append(method)
    }
    var tiles: [[UInt8]] = []
    let plane = size * size
    for (row, i) in chosen.enumerated() {
      let image = Array(test.images[(i * plane)..<((i + 1) * plane)])
      tiles.append(greyTile(image, size: size))
      tiles.append(LabelOverlay.rgb(image: image, labels: Array(test.labels[(i * plane)..<((i + 1) * plane)]), width: size, height: size))
      for p in predictions {
        tiles.append(LabelOverlay.rgb(image: image, labels: Array(p[(row * plane)..<((row + 1) * plane)]), width: size, height: size))
      }
    }
    if !chosen.isEmpty {
      try save(
        tiledPNG(tiles, size: size, columns: 2 + methods.count), "segmentation.png",
        "Segmentations at one labelled patient",
        "Rows: test slices (\(describe)). Columns: image, ground truth, then "
          + methods.map(\.rawValue).joined(separator: ", ")
          + " (budget 1, draw 1). Blue RV, green myocardium, red LV."
          + (missing.isEmpty ? "" : " Not shown (weights not saved by this run folder): " + missing.map(\.rawValue).joined(separator: ", ") + "."))
    }

    try savePropagationPicture(propagation, save: save)

    // The learned representation.
    let named: [(String, [Float])] = [
      ("Pix2Rep (InfoNCE)", backbones[.infoNCE]), ("Pix2Rep-v2 (Barlow Twins)", backbones[.barlowTwins]), (initialLabel, random),
    ].compactMap { name, values in values.map { (name, $0) } }
    var columns: [[[UInt8]]] = [chosen.map { i in greyTile(Array(test.images[(i * plane)..<((i + 1) * plane)]), size: size) }]
    for (_, values) in named {
      var net = Pix2RepNetwork(config: config.model, backend: backend, values: values)
      columns.append(principalComponentsRGB(net.frozenFeatures(test.imageTensor(chosen))))
    }
    if !chosen.isEmpty {
      let rows = chosen.indices.flatMap { r in columns.map { $0[r] } }
      try save(
        tiledPNG(rows, size: size, columns: columns.count), "representation.png", "The learned representation",
        "First three principal components of the per-pixel features f(x) as RGB (one basis per backbone). Columns: image, "
          + named.map(\.0).joined(separator: ", ") + ". Rows: \(describe).")
      var net = Pix2RepNetwork(config: config.model, backend: backend, values: backbones[.infoNCE] ?? random)
      try save(
        equivariancePicturePNG(&net, test: test, slice: chosen[0], seed: seed("equivariance-picture")), "pairing.png",
        "The pairing on one slice (Pix2Rep, InfoNCE)",
        "x, φ·x, then the first three principal components (one basis) of f(x), φ·f(x) and f(φ·x): the last two should agree inside the warped field of view.")
    }

    // Annotation efficiency.
    let table = ResultTable(runs: runs, budgets: config.budgets)
    var plot = LinePlot(title: "Annotation efficiency (test Dice, mean of RV, MYO, LV)", xLabel: "labelled training patients (log scale)", yLabel: "Dice", logX: true)
    plot.yRange = 0...1
    plot.xTicks = config.budgets.map(Double.init)
    for (k, method) in Method.allCases.enumerated() {
      let points = config.budgets.compactMap { b in table.cell(method, b).map { LinePlot.Point(x: Double(b), y: $0.mean, error: $0.sd) } }
      if !points.isEmpty {
        plot.series.append(.init(name: method.rawValue, color: LinePlot.palette[k % LinePlot.palette.count], points: points, dashed: method == .supervised))
      }
    }
    if let base = table.cell(.supervised, 1)?.mean {
      plot.annotations.append(.init(x: 1, y: base * 1.30, text: "paper: LP +30%, FT +31% over supervised (relative reading)"))
      if base + 0.30 <= 1 { plot.annotations.append(.init(x: 1, y: base + 0.30, text: "paper: +30 Dice points (points reading)")) }
    }
    try save(
      Array(plot.svg.utf8), "efficiency.svg", "Annotation efficiency",
      "Mean test Dice against the number of labelled patients; error bars: sd over draws. Crosses: the paper's one-shot claims placed on our supervised value (the abstract does not say whether its percentages are relative or Dice points, so both readings are marked where they fit). The 5-fold annotation-reduction claim is judged in the claims table.")

    // Loss curves.
    for objective in PretrainingObjective.allCases {
      guard let outcome = try store.load(PretrainingOutcome.self, stage: "pretrain-\(objective.rawValue)") else { continue }
      var p = LinePlot(title: "Pretraining loss (\(objective == .infoNCE ? "InfoNCE" : "Barlow Twins"))", xLabel: "step", yLabel: "loss")
      p.series = [
        .init(name: "training (mean of 10 steps)", color: LinePlot.palette[0], points: outcome.training.map { .init(x: Double($0.step), y: $0.loss) }),
        .init(name: "validation", color: LinePlot.palette[1], points: outcome.validation.map { .init(x: Double($0.step), y: $0.loss) }),
      ]
      try save(Array(p.svg.utf8), "pretraining-\(objective.rawValue).svg", "Pretraining loss, \(objective.rawValue)",
        "Training and validation loss; the best-validation backbone (step \(outcome.bestStep)) is kept.")
    }
    var fine = LinePlot(title: "Downstream validation loss (budget 1, draw 1)", xLabel: "step", yLabel: "soft Dice loss")
    for (k, method) in Method.allCases.enumerated() {
      guard let run = runs.first(where: { $0.method == method && $0.budget == 1 && $0.draw == 1 }), let curve = run.curve else { continue }
      fine.series.append(.init(name: method.rawValue, color: LinePlot.palette[k % LinePlot.palette.count], points: curve.map { .init(x: Double($0.step), y: $0.loss) }))
    }
    if !fine.series.isEmpty {
      try save(Array(fine.svg.utf8), "downstream-loss.svg", "Linear-probing and fine-tuning loss",
        "Validation soft Dice loss of each method's budget-1, draw-1 run (fine-tuning stops after \(config.patience) validations without a new best).")
    }
    return pictures
  }
}

extension Reproduction {
  /// propagation.png: for each pictured test patient, its middle ED slice with the ED truth, its
  /// middle ES slice with the ES truth, then that ES slice with each backbone's propagated labels.
  func savePropagationPicture(_ propagation: [PropagationResult], save: (_ bytes: [UInt8], _ file: String, _ title: String, _ caption: String) throws -> Void) throws {
    guard let first = propagation.first, !first.pictured.isEmpty else { return }
    let test = data.test, size = test.size, plane = size * size
    func image(_ i: Int) -> [Float] { Array(test.images[(i * plane)..<((i + 1) * plane)]) }
    func truth(_ i: Int) -> [UInt8] { Array(test.labels[(i * plane)..<((i + 1) * plane)]) }
    var tiles: [[UInt8]] = []
    for (row, shown) in first.pictured.enumerated() {
      tiles.append(LabelOverlay.rgb(image: image(shown.endDiastoleSlice), labels: truth(shown.endDiastoleSlice), width: size, height: size))
      tiles.append(LabelOverlay.rgb(image: image(shown.endSystoleSlice), labels: truth(shown.endSystoleSlice), width: size, height: size))
      for p in propagation {
        let labels = row < p.pictured.count ? p.pictured[row].labels : [UInt8](repeating: 0, count: plane)
        tiles.append(LabelOverlay.rgb(image: image(shown.endSystoleSlice), labels: labels, width: size, height: size))
      }
    }
    let patients = first.pictured.map { "patient \($0.patient)" }.joined(separator: "; ")
    try save(
      tiledPNG(tiles, size: size, columns: 2 + propagation.count), "propagation.png", "ED-to-ES propagation (no training)",
      "Rows: test patients (\(patients)), the middle slice of each frame. Columns: ED truth, ES truth, then the ES labels propagated from the ED truth by nearest neighbours with "
        + propagation.map(\.backbone.title).joined(separator: ", ") + ". Blue RV, green myocardium, red LV.")
  }
}
