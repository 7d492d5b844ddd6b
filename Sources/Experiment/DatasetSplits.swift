import Dataset
import Foundation
import Reference

/// An ACDC-layout dataset (real or phantom) loaded, preprocessed and split for the experiment.
public struct DatasetSplits: ExperimentData {
  public let source: String
  public let dataset: ACDCDataset
  public let pretrainingTrain: SliceSet
  public let pretrainingValidation: SliceSet
  public let test: SliceSet

  /// Loads `root` with the protocol's preprocessing at the model's image size.
  public static func load(root: URL, source: String, config: ExperimentConfig) throws -> DatasetSplits {
    guard FileManager.default.fileExists(atPath: root.path) else {
      throw ExperimentError("\(root.path): no such folder")
    }
    let started = Date()
    var dataset = try ACDCDataset.load(root: root, preprocessing: Preprocessing(size: config.model.imageSize))
    if let limit = config.testPatientLimit, dataset.testing.count > limit {
      // Keep the group balance: the first patients of each group in turn.
      let byGroup = Dictionary(grouping: dataset.testing, by: \.group)
      var kept: [PreparedPatient] = []
      var round = 0
      while kept.count < limit {
        for g in PathologyGroup.allCases where kept.count < limit {
          if let ps = byGroup[g], round < ps.count { kept.append(ps[round]) }
        }
        round += 1
      }
      dataset.testing = kept.sorted { $0.id < $1.id }
    }
    guard !dataset.training.isEmpty, !dataset.testing.isEmpty else {
      throw ExperimentError("\(root.path): needs patients in both training/ and testing/")
    }
    let split = dataset.pretrainingSplit(seed: config.seed)
    let test = sliceSet(dataset.testVolumes.flatMap(\.slices), size: config.model.imageSize)
    say(String(format: "loaded %d training and %d testing patients from %@ in %.1f s", dataset.training.count, dataset.testing.count, root.path, Date().timeIntervalSince(started)))
    return DatasetSplits(
      source: source, dataset: dataset,
      pretrainingTrain: sliceSet(split.train, size: config.model.imageSize),
      pretrainingValidation: sliceSet(split.validation, size: config.model.imageSize), test: test)
  }

  /// The synthetic phantom of the configuration, generated once into `cache` (atomically).
  /// The data source of a run on the phantom, as its run folder records it: a change of the
  /// generator's version makes a run folder of the old phantom refuse to resume.
  public static func phantomSource(_ config: ExperimentConfig) -> String {
    "synthetic phantom version \(PhantomGenerator.version), seed \(config.phantomSeed), difficulty \(config.phantomDifficulty)"
  }

  public static func ensurePhantom(cache: URL, config: ExperimentConfig) throws -> URL {
    let started = Date()
    let progress = ProgressPrinter("phantom", total: 150, unit: "patient")
    let root = try Dataset.ensurePhantom(
      cacheDirectory: cache, seed: config.phantomSeed, difficulty: config.phantomDifficulty,
      gridSize: config.phantomGrid, progress: { done, _ in progress.update(done) })
    let seconds = Date().timeIntervalSince(started)
    if seconds > 1 { say(String(format: "synthetic phantom written to %@ in %.1f s", root.path, seconds)) }
    return root
  }

  public func labelled(budget: Int, seed: UInt64) throws -> (patients: [Int], train: SliceSet, validation: SliceSet) {
    let draw = try dataset.drawLabelledPatients(count: budget, seed: seed)
    let split = dataset.labelledSplit(draw)
    let size = pretrainingTrain.size
    guard !split.train.isEmpty, !split.validation.isEmpty else {
      throw ExperimentError("\(dataset.root.path): patients \(draw.patients) have too few slices for a train/validation split")
    }
    return (draw.patients, Self.sliceSet(split.train, size: size), Self.sliceSet(split.validation, size: size))
  }

  static func sliceSet(_ slices: [PreparedSlice], size: Int) -> SliceSet {
    var set = SliceSet(size: size)
    for s in slices {
      set.append(image: s.image, label: s.label, volume: .init(patient: s.patient, phase: s.phase.rawValue))
    }
    return set
  }
}
