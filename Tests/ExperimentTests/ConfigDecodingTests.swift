import Experiment
import Foundation
import Optimized
import Reference
import Testing

/// A run folder's config.json decodes under later versions: an option it lacks takes its default.
@Suite struct ConfigDecodingTests {
  static func json(_ config: ExperimentConfig) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any])
  }

  @Test("every option round-trips, including values other than the defaults")
  func roundTrip() throws {
    var config = ExperimentConfig.cpu(seed: 7)
    config.pretrainingBatch += 1
    config.pretrainingLearningRate *= 2
    config.positions += 1
    config.temperature = 0.1
    config.barlowLambda *= 2
    config.downstreamBatch += 1
    config.linearProbeLearningRate *= 2
    config.fineTuneBackboneLearningRate *= 2
    config.fineTuneHeadLearningRate *= 2
    config.maxEpochs += 1
    config.minimumValidationSteps += 1
    config.patience += 1
    config.baselineLearningRates = [1e-3]
    config.linearProbeCachedFeatures = true
    config.inferenceConvolutions = .winograd2x2
    config.phantomSeed += 1
    config.phantomDifficulty = 0.5
    config.phantomGrid = 96
    config.testPatientLimit = nil
    config.pretrainingAugmentation = AugmentationSwitches(noiseScale: 0.01, leftOut: [.gamma, .blur], spatialIdentity: true)
    #expect(try JSONDecoder().decode(ExperimentConfig.self, from: JSONEncoder().encode(config)) == config)
  }

  @Test("an option missing from an older config.json takes its default; a required one is an error")
  func missingOptions() throws {
    let config = ExperimentConfig.cpu(seed: 1)
    let required: Set = ["preset", "model", "seed", "pretrainingSteps", "pretrainingValidationInterval", "pretrainingValidationSlices", "budgets", "draws"]
    for key in try Self.json(config).keys {
      var object = try Self.json(config)
      object[key] = nil
      let data = try JSONSerialization.data(withJSONObject: object)
      if required.contains(key) {
        #expect(throws: DecodingError.self, "\(key)") { try JSONDecoder().decode(ExperimentConfig.self, from: data) }
      } else {
        var expected = config
        if key == "testPatientLimit" { expected.testPatientLimit = nil }
        #expect(try JSONDecoder().decode(ExperimentConfig.self, from: data) == expected, "\(key)")
      }
    }
  }

  @Test("init(from:) lists every stored option (a new option must be added there, with its default)")
  func everyOptionIsDecoded() {
    // 8 required, 19 with defaults, and testPatientLimit.
    #expect(Mirror(reflecting: ExperimentConfig.cpu(seed: 1)).children.count == 28)
  }

  /// A run folder from before the choice ran F(2x2, 3x3), which the presets keep: its identity
  /// equals a new run's of the same preset, and it resumes with its bits. F(4x4, 3x3), the faster
  /// choice, is recorded and makes another identity.
  @Test("a config.json from before the evaluation-mode convolutions decodes to F(2x2, 3x3), the presets' choice")
  func beforeInferenceConvolutions() throws {
    for preset in [ExperimentConfig.smoke(seed: 3), .cpu(seed: 1), .paper(seed: 2)] {
      #expect(preset.inferenceConvolutions == .winograd2x2)
      var object = try Self.json(preset)
      object["inferenceConvolutions"] = nil
      let decoded = try JSONDecoder().decode(ExperimentConfig.self, from: JSONSerialization.data(withJSONObject: object))
      #expect(decoded == preset)
      var faster = preset
      faster.inferenceConvolutions = .winograd4x4
      let roundTrip = try JSONDecoder().decode(ExperimentConfig.self, from: JSONEncoder().encode(faster))
      #expect(roundTrip == faster && roundTrip != preset)
    }
  }

  @Test("a config.json from before the ablation switches decodes to the protocol's views")
  func beforeAblationSwitches() throws {
    var object = try Self.json(.smoke(seed: 3))
    object["pretrainingAugmentation"] = nil
    let decoded = try JSONDecoder().decode(ExperimentConfig.self, from: JSONSerialization.data(withJSONObject: object))
    #expect(decoded.pretrainingAugmentation == .protocolViews)
    #expect(decoded == .smoke(seed: 3))
  }
}
