/// The sizes of a Pix2Rep network: U-Net backbone f, projection head g, segmentation head.
///
/// `widths` are the DoubleConv widths from the input block down to the bottleneck, each twice the
/// previous (the official model: 64 … 2048, five poolings). The last Up block outputs `features`
/// (D) channels at full resolution.
public struct ModelConfig: Hashable, Sendable, Codable {
  public var inputChannels: Int
  public var widths: [Int]
  public var features: Int
  public var imageSize: Int
  public var projectionHidden: Int
  public var projectionOutput: Int
  public var classes: Int

  public init(
    inputChannels: Int = 1, widths: [Int], features: Int, imageSize: Int,
    projectionHidden: Int = 256, projectionOutput: Int = 256, classes: Int = 4
  ) {
    self.inputChannels = inputChannels
    self.widths = widths
    self.features = features
    self.imageSize = imageSize
    self.projectionHidden = projectionHidden
    self.projectionOutput = projectionOutput
    self.classes = classes
  }

  /// Number of 2x2 poolings.
  public var depth: Int { widths.count - 1 }

  /// Returns a description of what is wrong, or nil when the configuration is usable.
  public func problem() -> String? {
    if widths.count < 2 { return "widths needs at least two entries (one pooling)" }
    if widths.contains(where: { $0 < 1 }) { return "widths must be positive" }
    for i in 1..<widths.count where widths[i] != 2 * widths[i - 1] {
      return "each width must double the previous one (got \(widths))"
    }
    if features < 1 || projectionHidden < 1 || projectionOutput < 1 || classes < 2 || inputChannels < 1 {
      return "features, projection sizes and input channels must be positive, classes at least 2"
    }
    let step = 1 << depth
    if imageSize < step || imageSize % step != 0 {
      return "image size \(imageSize) must be a positive multiple of 2^\(depth) = \(step)"
    }
    return nil
  }

  // MARK: - Presets

  /// The official model: widths 64-2048, D = 1024, 128 x 128 slices (134,883,072 backbone parameters).
  public static let paper = ModelConfig(
    widths: [64, 128, 256, 512, 1024, 2048], features: 1024, imageSize: 128)
  /// The CPU configuration: widths 16-128 (three poolings), D = 64, 64 x 64 slices.
  public static let cpu = ModelConfig(widths: [16, 32, 64, 128], features: 64, imageSize: 64)
  /// A small model that trains in seconds (CI's end-to-end run).
  public static let smoke = ModelConfig(
    widths: [8, 16, 32], features: 16, imageSize: 32, projectionHidden: 32, projectionOutput: 32)
  /// A model small enough for finite differences in a debug build.
  public static let tiny = ModelConfig(
    widths: [2, 4, 8], features: 3, imageSize: 4, projectionHidden: 3, projectionOutput: 3)

  /// Presets by name.
  public static let presets: [(name: String, config: ModelConfig)] = [
    ("paper", .paper), ("cpu", .cpu), ("smoke", .smoke), ("tiny", .tiny),
  ]

  public static func preset(named name: String) -> ModelConfig? {
    presets.first { $0.name == name }?.config
  }
}
