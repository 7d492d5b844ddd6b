// MARK: - Switches on the pretraining augmentations (`verify ablate`, docs/PROTOCOL.md section 10)
//
// An ablation changes the views of pretraining without changing anything else: the parameters are
// drawn exactly as docs/PROTOCOL.md section 3 draws them (the same random numbers, in the same
// order), then the switches remove or scale some of them. Every other transform of every view, the
// spatial transforms and the sampled positions are therefore those of the protocol's run with the
// same seed, so an ablated pretraining differs from the preset's by the switched factor alone. The
// switches act on the parameters, before any image is touched, so the reference and the optimized
// kernels apply the same switched augmentation.

/// The four intensity transforms an ablation may leave out (inversion is never left out).
public enum IntensityTransform: String, Hashable, Sendable, Codable, CaseIterable, Comparable {
  case noise
  case blur
  case gamma
  case biasField = "bias-field"

  /// Table order (docs/PROTOCOL.md section 3).
  public static func < (a: IntensityTransform, b: IntensityTransform) -> Bool {
    allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
  }

  /// The name in tables: "Gaussian noise", "blur", "gamma", "bias field".
  public var title: String {
    switch self {
    case .noise: "Gaussian noise"
    case .blur: "Gaussian blur"
    case .gamma: "gamma"
    case .biasField: "bias field"
    }
  }
}

/// How the pretraining views depart from the protocol's. The default is the protocol itself.
public struct AugmentationSwitches: Hashable, Sendable, Codable {
  /// The drawn noise sigma is multiplied by this (1: the protocol's sigma ~ U(0, 0.5); 0: no noise).
  public var noiseScale: Double
  /// Transforms drawn but not applied, in table order.
  public var leftOut: [IntensityTransform]
  /// Every spatial transform phi drawn but replaced by the identity.
  public var spatialIdentity: Bool

  public init(noiseScale: Double = 1, leftOut: [IntensityTransform] = [], spatialIdentity: Bool = false) {
    self.noiseScale = noiseScale
    self.leftOut = Array(Set(leftOut)).sorted()
    self.spatialIdentity = spatialIdentity
  }

  /// docs/PROTOCOL.md section 3 unchanged.
  public static let protocolViews = AugmentationSwitches()

  /// Whether these are the protocol's views.
  public var isProtocol: Bool { self == .protocolViews }

  /// "noise x0.01, without blur, spatial identity"; "protocol" for the default.
  public var text: String {
    var parts: [String] = []
    if noiseScale != 1 { parts.append("noise sigma x\(noiseScale)") }
    if !leftOut.isEmpty { parts.append("without " + leftOut.map(\.title).joined(separator: ", ")) }
    if spatialIdentity { parts.append("spatial transform = identity") }
    return parts.isEmpty ? "protocol" : parts.joined(separator: ", ")
  }

  /// `parameters` with the left-out transforms removed and the noise sigma scaled (a noise of
  /// sigma 0 is removed, so "scale 0" and "noise left out" are the same view).
  public func apply(to parameters: IntensityParameters) -> IntensityParameters {
    var p = parameters
    if leftOut.contains(.noise) || noiseScale == 0 {
      p.noise = nil
    } else if noiseScale != 1, let noise = p.noise {
      p.noise = NoiseParameters(sigma: noise.sigma * noiseScale, seed: noise.seed)
    }
    if leftOut.contains(.blur) { p.blur = nil }
    if leftOut.contains(.gamma) { p.logGamma = nil }
    if leftOut.contains(.biasField) { p.biasCoefficients = nil }
    return p
  }

  /// `phi`, or the identity transform when `spatialIdentity` is set.
  public func apply(to phi: SpatialTransformParameters) -> SpatialTransformParameters {
    spatialIdentity ? .identity : phi
  }
}

extension SpatialTransformParameters {
  /// theta 0, scale 1, no offset, no flip: A is the identity affine and the warp returns its input.
  public static let identity = SpatialTransformParameters(theta: 0, scale: 1, offsetX: 0, offsetY: 0, flip: .none)
}

/// One view's intensity parameters: drawn as `sampleIntensityParameters(rng:)` draws them (the
/// same random numbers whatever the switches), then switched.
public func sampleIntensityParameters(rng: inout SplitMix64, switches: AugmentationSwitches) -> IntensityParameters {
  switches.apply(to: sampleIntensityParameters(rng: &rng))
}

/// One phi: drawn as `sampleSpatialTransform(rng:)` draws it (five uniforms whatever the
/// switches), then switched.
public func sampleSpatialTransform(rng: inout SplitMix64, switches: AugmentationSwitches) -> SpatialTransformParameters {
  switches.apply(to: sampleSpatialTransform(rng: &rng))
}
