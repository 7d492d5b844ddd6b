import Dataset
import Foundation
import Reference

/// NIfTI volumes on the grid of a preprocessed volume: the kept slices, each S x S, with the
/// header geometry of the cropped and resized volume, so they overlay the preprocessed images
/// (written beside them) in ITK-SNAP or 3D Slicer.
public enum PreparedNIfTI {
  /// A volume of `values` ((nz, S, S), x fastest within a slice) on the prepared grid of
  /// `geometry`: pixdim (dx·w/S, dy·h/S, dz) for a crop of w x h pixels; voxel (0, 0, 0) at the
  /// original voxel (x0 + (w/S − 1)/2, y0 + (h/S − 1)/2, first kept slice) (the half-pixel grid of
  /// the resize), mapped through the original qform and sform. Assumes the kept slices are
  /// consecutive (as they are when the labelled slices are); nil geometry gives 1 mm voxels at 0.
  public static func volume(values: [Double], slices: Int, geometry: VolumeGeometry?, dataType: NIfTIDataType, description: String) -> NIfTIVolume {
    guard let g = geometry else {
      let s = Int(Double(values.count / max(slices, 1)).squareRoot())
      return NIfTIVolume(shape: [s, s, slices], spacing: [1, 1, 1], dataType: dataType, values: values, descriptionText: description)
    }
    let size = g.size
    let sx = Double(g.cropX.count) / Double(size), sy = Double(g.cropY.count) / Double(size)
    let spacing = [g.spacing[0] * sx, g.spacing[1] * sy, g.spacing[2]]
    var volume = NIfTIVolume(shape: [size, size, slices], spacing: spacing, dataType: dataType, values: values, descriptionText: description)
    let start = [Double(g.cropX.lowerBound) + (sx - 1) / 2, Double(g.cropY.lowerBound) + (sy - 1) / 2, Double(g.keptSlices.first ?? 0)]
    var geometry = g.orientation
    // sform: scale the first two columns, move the translation to the new voxel (0, 0, 0).
    if geometry.sformCode > 0 {
      let rows = geometry.srow
      geometry.srow = rows.map { r in [r[0] * sx, r[1] * sy, r[2], r[0] * start[0] + r[1] * start[1] + r[2] * start[2] + r[3]] }
    } else {
      geometry.srow = [[spacing[0], 0, 0, 0], [0, spacing[1], 0, 0], [0, 0, spacing[2], 0]]
    }
    // qform: same rotation and handedness, pixdim scaled, offset moved.
    if geometry.qformCode > 0 {
      let r = rotation(geometry.quaternion)
      let scaled = [start[0] * g.spacing[0], start[1] * g.spacing[1], start[2] * g.spacing[2] * (geometry.qfac < 0 ? -1 : 1)]
      geometry.qoffset = (0..<3).map { i in geometry.qoffset[i] + (0..<3).reduce(0) { $0 + r[i][$1] * scaled[$1] } }
    }
    volume.geometry = geometry
    return volume
  }

  /// The rotation matrix of NIfTI's quaternion (b, c, d), a = sqrt(1 − b² − c² − d²).
  static func rotation(_ q: [Double]) -> [[Double]] {
    let (b, c, d) = (q[0], q[1], q[2])
    let a = max(0, 1 - b * b - c * c - d * d).squareRoot()
    return [
      [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
      [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
      [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ]
  }
}

extension Reproduction {
  /// Writes predictions/METHOD-b1-d1/patientNNN_PHASE.nii.gz (uint8 labels) for every method whose
  /// budget-1, draw-1 weights are in the run folder, and the matching preprocessed images
  /// (predictions/images, float32 in [0, 1]) and ground truth (predictions/truth). Returns the
  /// number of files written.
  func writePredictions(runs: [RunResult]) throws -> Int {
    let test = data.test, plane = test.size * test.size
    let folder = store.directory.appendingPathComponent("predictions")
    var geometries: [SliceSet.VolumeID: VolumeGeometry] = [:]
    for v in (data as? DatasetSplits)?.dataset.testVolumes ?? [] {
      geometries[.init(patient: v.patient, phase: v.phase.rawValue)] = v.geometry
    }
    let slicesOf = test.volumes.indices.map { v in (0..<test.count).filter { test.volumeOfSlice[$0] == v } }
    var written = 0
    func write(_ name: String, _ labels: [UInt8]?, images: Bool = false) throws {
      let sub = folder.appendingPathComponent(name)
      try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
      for (v, id) in test.volumes.enumerated() {
        let slices = slicesOf[v]
        var values = [Double]()
        values.reserveCapacity(slices.count * plane)
        for s in slices {
          if images {
            values += test.images[(s * plane)..<((s + 1) * plane)].map(Double.init)
          } else if let labels {
            values += labels[(s * plane)..<((s + 1) * plane)].map(Double.init)
          }
        }
        let volume = PreparedNIfTI.volume(
          values: values, slices: slices.count, geometry: geometries[id], dataType: images ? .float32 : .uint8,
          description: "Pix2Rep \(name), cropped and resized")
        try volume.write(to: sub.appendingPathComponent(String(format: "patient%03d_%@.nii.gz", id.patient, id.phase)))
        written += 1
      }
    }
    try write("images", nil, images: true)
    try write("truth", test.labels)
    for method in Method.allCases where !method.isInContext && runs.contains(where: { $0.method == method && $0.budget == 1 && $0.draw == 1 }) {
      let url = downstreamWeightsURL(method)
      guard FileManager.default.fileExists(atPath: url.path) else {
        say("  predictions: no saved weights for \(method.rawValue) at budget 1 (older run folder), skipped")
        continue
      }
      let net = Pix2RepNetwork(config: config.model, backend: backend, values: try WeightsFile.read(from: url, expecting: config.model))
      var forward = EvaluationForward(net)
      var predicted = [UInt8]()
      for batch in test.batches(of: config.downstreamBatch) {
        predicted += forward.labels(test.imageTensor(batch))
      }
      try write("\(method.key)-b1-d1", predicted)
    }
    return written
  }
}
