import Foundation
import Reference

// What `verify ablate` varies (docs/PROTOCOL.md section 10): one factor of the InfoNCE pretraining
// at a time, every other option at the preset's value. A point of the grid is one pretraining
// configuration; a level is a point as one factor's table shows it. Two levels with the same
// configuration (no noise, and the noise left out) are one point, computed once.

/// A factor of pretraining that `verify ablate` varies.
public enum AblationFactor: String, CaseIterable, Codable, Sendable {
  /// D, the dense feature dimension (`model.features`).
  case features = "D"
  /// M, the sampled positions of InfoNCE.
  case positions = "M"
  /// tau, InfoNCE's temperature.
  case temperature = "tau"
  /// Pretraining length in steps.
  case length = "steps"
  /// The Gaussian noise's sigma, as a multiple of section 3's sigma ~ U(0, 0.5).
  case noise
  /// One intensity transform left out.
  case leftOut = "left-out"
  /// The spatial transform phi reduced to the identity.
  case spatial

  /// The table's and plot's name of the factor.
  public var title: String {
    switch self {
    case .features: "feature dimension D"
    case .positions: "sampled positions M"
    case .temperature: "temperature tau"
    case .length: "pretraining length (steps)"
    case .noise: "Gaussian noise strength (multiple of sigma ~ U(0, 0.5))"
    case .leftOut: "intensity augmentation left out"
    case .spatial: "spatial transform phi"
    }
  }

  /// Whether the plot's x axis is logarithmic (the factor's values span decades).
  var logarithmic: Bool { self == .features || self == .positions || self == .length }
  /// Whether the plot places the levels at their rank (0, 1, ...) rather than at their value.
  var ranked: Bool { self == .noise || self == .leftOut || self == .spatial }
}

/// The values of each factor besides the preset's own (which every factor's table also shows).
public struct AblationValues: Hashable, Sendable {
  public var features: [Int]
  public var positions: [Int]
  public var temperatures: [Double]
  public var lengths: [Int]
  public var noiseScales: [Double]
  public var leftOut: [IntensityTransform]
  /// Whether the spatial factor is run (its one value: phi the identity).
  public var spatialIdentity: Bool

  /// The grid of issue 15 (docs/PROTOCOL.md section 10); for the smoke preset, one value per factor
  /// besides the preset's (small ones: CI runs it), and two of the four augmentations left out.
  public static func standard(preset: String) -> AblationValues {
    if preset == "smoke" {
      return AblationValues(
        features: [32], positions: [64], temperatures: [0.1], lengths: [20], noiseScales: [0], leftOut: [.noise, .blur],
        spatialIdentity: true)
    }
    return AblationValues(
      features: [16, 64, 256], positions: [250, 1000, 4000], temperatures: [0.1, 0.53, 1.0], lengths: [250, 500, 1000, 2000],
      noiseScales: [0, 0.01], leftOut: IntensityTransform.allCases, spatialIdentity: true)
  }

  /// Sets one factor's values from text ("16,256"; "blur,gamma"; "identity" for the spatial
  /// factor), or throws a one-line error naming the impossible value.
  public mutating func set(_ factor: AblationFactor, from text: String) throws {
    let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    guard !items.isEmpty else { throw ExperimentError("--values \(factor.rawValue)=: no values") }
    func numbers<T: LosslessStringConvertible & Comparable>(_: T.Type, above minimum: T, _ what: String) throws -> [T] {
      try items.map { item in
        guard let value = T(item), value >= minimum else {
          throw ExperimentError("--values \(factor.rawValue)=\(text): '\(item)' is not \(what)")
        }
        return value
      }
    }
    switch factor {
    case .features: features = try numbers(Int.self, above: 1, "a feature dimension (an integer of at least 1)")
    case .positions: positions = try numbers(Int.self, above: 2, "a number of positions (an integer of at least 2)")
    case .temperature:
      temperatures = try numbers(Double.self, above: 1e-3, "a temperature (a number of at least 0.001)")
    case .length: lengths = try numbers(Int.self, above: 1, "a pretraining length (an integer of at least 1)")
    case .noise:
      noiseScales = try numbers(Double.self, above: 0, "a noise scale (a number of at least 0)")
      if let big = noiseScales.first(where: { !$0.isFinite || $0 > 100 }) {
        throw ExperimentError("--values noise=\(text): '\(big)' is not a noise scale (at most 100)")
      }
    case .leftOut:
      leftOut = try items.map { item in
        guard let transform = IntensityTransform(rawValue: item) else {
          let names = IntensityTransform.allCases.map(\.rawValue).joined(separator: ", ")
          throw ExperimentError("--values left-out=\(text): '\(item)' is not an intensity augmentation (choose from \(names))")
        }
        return transform
      }
    case .spatial:
      guard items == ["identity"] else { throw ExperimentError("--values spatial=\(text): the spatial factor's one value is 'identity'") }
      spatialIdentity = true
    }
  }
}

/// One pretraining configuration: `key` names its folder (`points/KEY`) and prefixes its stages.
public struct AblationPoint: Hashable, Sendable {
  public var key: String
  public var config: ExperimentConfig
}

/// One row of a factor's table: the value's label, its x in the plot, and the point computing it.
public struct AblationLevel: Hashable, Sendable, Codable {
  public var factor: AblationFactor
  public var label: String
  public var x: Double
  public var point: String
  public var isPreset: Bool { point == AblationGrid.presetKey }
}

/// The points and levels of an ablation of `preset` over `factors`.
public struct AblationGrid: Sendable {
  public static let presetKey = "preset"
  public let preset: ExperimentConfig
  public let factors: [AblationFactor]
  /// Every point, the preset's first, each configuration once.
  public private(set) var points: [AblationPoint]
  /// Every factor's levels in table order.
  public private(set) var levels: [AblationLevel] = []
  /// The budgets whose draws every point's downstream runs use: 1 and 5 (those of the preset).
  public var budgets: [Int] { preset.budgets.filter { $0 == 1 || $0 == 5 } }

  public init(preset: ExperimentConfig, factors: [AblationFactor] = AblationFactor.allCases, values: AblationValues) {
    self.preset = preset
    self.factors = factors
    points = [AblationPoint(key: AblationGrid.presetKey, config: preset)]
    for factor in factors {
      for (label, x, key, config) in AblationGrid.candidates(factor, preset: preset, values: values) {
        let point = points.first { $0.config == config }?.key ?? key
        if !points.contains(where: { $0.key == point }) { points.append(AblationPoint(key: point, config: config)) }
        levels.append(AblationLevel(factor: factor, label: label, x: x, point: point))
      }
    }
  }

  /// One factor's levels in table order (the preset's among them): label, plot x, key, config.
  static func candidates(
    _ factor: AblationFactor, preset: ExperimentConfig, values: AblationValues
  ) -> [(String, Double, String, ExperimentConfig)] {
    func numeric<T: Comparable & Hashable & CustomStringConvertible>(
      _ list: [T], _ presetValue: T, x: (T) -> Double, set: (inout ExperimentConfig, T) -> Void
    ) -> [(String, Double, String, ExperimentConfig)] {
      Set(list + [presetValue]).sorted().map { value in
        var config = preset
        set(&config, value)
        let text = (value as? Double).map { String(format: "%g", $0) } ?? "\(value)"
        return (text, x(value), "\(factor.rawValue)-\(text)", config)
      }
    }
    switch factor {
    case .features: return numeric(values.features, preset.model.features, x: Double.init) { $0.model.features = $1 }
    case .positions: return numeric(values.positions, preset.positions, x: Double.init) { $0.positions = $1 }
    case .temperature: return numeric(values.temperatures, preset.temperature, x: { $0 }) { $0.temperature = $1 }
    case .length: return numeric(values.lengths, preset.pretrainingSteps, x: Double.init) { $0.pretrainingSteps = $1 }
    case .noise:
      // Plotted at their rank (0 cannot sit on a log axis): none, a hundredth, the protocol's.
      return numeric(values.noiseScales, 1.0, x: { $0 }) { $0.pretrainingAugmentation.noiseScale = $1 }.enumerated().map { i, level in
        (level.0 == "0" ? "none" : level.0 == "1" ? "protocol" : "x\(level.0)", Double(i), level.2, level.3)
      }
    case .leftOut:
      let kept = IntensityTransform.allCases.filter(values.leftOut.contains)
      return [("none", 0, presetKey, preset)] + kept.enumerated().map { i, transform in
        var config = preset
        // The noise left out is a noise of scale 0: the same views, so the same point.
        if transform == .noise { config.pretrainingAugmentation.noiseScale = 0 } else { config.pretrainingAugmentation.leftOut = [transform] }
        return (transform.title, Double(i + 1), "no-\(transform.rawValue)", config)
      }
    case .spatial:
      guard values.spatialIdentity else { return [] }
      var config = preset
      config.pretrainingAugmentation.spatialIdentity = true
      return [("protocol phi", 0, presetKey, preset), ("identity", 1, "spatial-identity", config)]
    }
  }
}
