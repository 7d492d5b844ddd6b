/// Which part of the network a named tensor belongs to.
public enum ParameterGroup: String, Hashable, Sendable, Codable {
  /// The U-Net f.
  case backbone
  /// The projection head g (pretraining only).
  case projection
  /// The 1x1 segmentation head.
  case segmentation
}

/// What a named tensor is; it decides initialisation and whether Adam updates it.
public enum ParameterRole: String, Hashable, Sendable, Codable {
  case convWeight, convBias, bnWeight, bnBias, runningMean, runningVariance

  /// Running statistics are state, not parameters: no gradient, not counted, not updated by Adam.
  public var isTrainable: Bool { self != .runningMean && self != .runningVariance }
}

/// One named tensor of the flat buffer. `name` is the official PyTorch state-dict key.
public struct ParameterEntry: Hashable, Sendable {
  public let name: String
  public let group: ParameterGroup
  public let role: ParameterRole
  public let shape: [Int]
  public let offset: Int
  /// PyTorch's fan-in for the default uniform bound 1/sqrt(fanIn) (0 where unused).
  public let fanIn: Int

  public var count: Int { shape.reduce(1, *) }
  public var range: Range<Int> { offset..<(offset + count) }
}

/// The table of every named tensor of a network in one flat buffer (llm.c's `params_memory`).
/// Gradients, Adam moments and weight files use the same layout.
public struct ParameterLayout: Sendable {
  public private(set) var entries: [ParameterEntry] = []
  public private(set) var count = 0
  private var byName: [String: Int] = [:]

  public init() {}

  mutating func add(_ name: String, _ group: ParameterGroup, _ role: ParameterRole, _ shape: [Int], fanIn: Int = 0) {
    precondition(byName[name] == nil, "duplicate parameter \(name)")
    let entry = ParameterEntry(name: name, group: group, role: role, shape: shape, offset: count, fanIn: fanIn)
    byName[name] = entries.count
    entries.append(entry)
    count += entry.count
  }

  public subscript(name: String) -> ParameterEntry {
    guard let i = byName[name] else { preconditionFailure("no parameter named \(name)") }
    return entries[i]
  }

  public func contains(_ name: String) -> Bool { byName[name] != nil }

  /// Number of trainable values in `group` (running statistics excluded), as PyTorch counts them.
  public func trainableCount(_ group: ParameterGroup) -> Int {
    entries.filter { $0.group == group && $0.role.isTrainable }.reduce(0) { $0 + $1.count }
  }

  /// Initial values as PyTorch's defaults: conv weights and biases U(-1/sqrt(fanIn), 1/sqrt(fanIn)),
  /// BN weight 1 and bias 0, running mean 0 and variance 1. Draws in table order from `rng`.
  public func initialValues(rng: inout SplitMix64) -> [Double] {
    var values = [Double](repeating: 0, count: count)
    for entry in entries {
      for i in entry.range {
        switch entry.role {
        case .convWeight, .convBias:
          let bound = 1.0 / Double(entry.fanIn).squareRoot()
          values[i] = rng.uniform(-bound, bound)
        case .bnWeight, .runningVariance: values[i] = 1
        case .bnBias, .runningMean: values[i] = 0
        }
      }
    }
    return values
  }
}

// MARK: - The Pix2Rep network's table

extension ParameterLayout {
  /// The full network's table: backbone keys as in the official `UNet`, projection head keys as
  /// the official `MLP` (`net.0`, `net.1`, `net.3`), segmentation head as `OutConv` (`conv`).
  public init(config: ModelConfig) {
    self.init()
    let w = config.widths
    addDoubleConv("inc.double_conv", input: config.inputChannels, output: w[0])
    for k in 1...config.depth {
      addDoubleConv("down\(k).maxpool_conv.1.double_conv", input: w[k - 1], output: w[k])
    }
    for k in 1...config.depth {
      let input = w[config.depth - k + 1]
      let output = k == config.depth ? config.features : w[config.depth - k]
      // ConvTranspose2d weight is (in, out, 2, 2); PyTorch takes its fan-in from dimension 1.
      add("up\(k).up.weight", .backbone, .convWeight, [input, input / 2, 2, 2], fanIn: input / 2 * 4)
      add("up\(k).up.bias", .backbone, .convBias, [input / 2], fanIn: input / 2 * 4)
      addDoubleConv("up\(k).conv.double_conv", input: input, output: output)
    }
    let d = config.features, hidden = config.projectionHidden
    add("net.0.weight", .projection, .convWeight, [hidden, d, 1, 1], fanIn: d)
    add("net.0.bias", .projection, .convBias, [hidden], fanIn: d)
    addBatchNorm("net.1", .projection, channels: hidden)
    add("net.3.weight", .projection, .convWeight, [config.projectionOutput, hidden, 1, 1], fanIn: hidden)
    add("net.3.bias", .projection, .convBias, [config.projectionOutput], fanIn: hidden)
    add("conv.weight", .segmentation, .convWeight, [config.classes, d, 1, 1], fanIn: d)
    add("conv.bias", .segmentation, .convBias, [config.classes], fanIn: d)
  }

  private mutating func addDoubleConv(_ prefix: String, input: Int, output: Int) {
    add("\(prefix).0.weight", .backbone, .convWeight, [output, input, 3, 3], fanIn: input * 9)
    addBatchNorm("\(prefix).1", .backbone, channels: output)
    add("\(prefix).3.weight", .backbone, .convWeight, [output, output, 3, 3], fanIn: output * 9)
    addBatchNorm("\(prefix).4", .backbone, channels: output)
  }

  private mutating func addBatchNorm(_ prefix: String, _ group: ParameterGroup, channels: Int) {
    add("\(prefix).weight", group, .bnWeight, [channels])
    add("\(prefix).bias", group, .bnBias, [channels])
    add("\(prefix).running_mean", group, .runningMean, [channels])
    add("\(prefix).running_var", group, .runningVariance, [channels])
  }
}
