/// A Pix2Rep network: the U-Net backbone f, the projection head g and the segmentation head, with
/// every parameter and running statistic in one flat buffer described by `layout`.
///
/// The network is written once against `Backend`; `Pix2RepNetwork<ReferenceBackend>` is the Double
/// definition and `Pix2RepNetwork<OptimizedBackend>` the fast Float twin, with the same layout, so
/// weights, gradients and Adam moments move between them by a plain element conversion.
public struct Pix2RepNetwork<B: Backend>: Sendable {
  public typealias Scalar = B.Scalar

  public let config: ModelConfig
  public let layout: ParameterLayout
  public let backend: B
  /// Parameters and running statistics, in `layout` order.
  public var values: [Scalar]

  /// A network with PyTorch's default initialisation drawn from `seed`.
  public init(config: ModelConfig, backend: B, seed: UInt64) {
    precondition(config.problem() == nil, "invalid model configuration: \(config.problem() ?? "")")
    let layout = ParameterLayout(config: config)
    var rng = SplitMix64(seed: seed, stream: 0x1417)
    self.init(config: config, backend: backend, values: layout.initialValues(rng: &rng).map { Scalar($0) })
  }

  /// A network with the given values (count must match the layout).
  public init(config: ModelConfig, backend: B, values: [Scalar]) {
    let layout = ParameterLayout(config: config)
    precondition(values.count == layout.count, "\(values.count) values for a layout of \(layout.count)")
    self.config = config
    self.layout = layout
    self.backend = backend
    self.values = values
  }

  /// The same weights on another backend (e.g. Double reference to Float optimized).
  public func converted<Other: Backend>(to other: Other) -> Pix2RepNetwork<Other> {
    Pix2RepNetwork<Other>(config: config, backend: other, values: values.map { Other.Scalar($0) })
  }

  // MARK: - Parameter access

  /// A copy of the named tensor's values.
  public func parameter(_ name: String) -> [Scalar] {
    Array(values[layout[name].range])
  }

  /// Overwrites the named tensor.
  public mutating func setParameter(_ name: String, _ newValues: [Scalar]) {
    let range = layout[name].range
    precondition(newValues.count == range.count, "\(name): \(newValues.count) values for \(range.count)")
    values.replaceSubrange(range, with: newValues)
  }

  /// A zero gradient buffer in the parameter layout.
  public func zeroGradients() -> [Scalar] {
    [Scalar](repeating: 0, count: layout.count)
  }

  /// Adds `gradient` into the named tensor's slot of `gradients`.
  public func accumulate(_ gradient: [Scalar], into gradients: inout [Scalar], _ name: String) {
    let range = layout[name].range
    precondition(gradient.count == range.count, "\(name): gradient of \(gradient.count) for \(range.count)")
    for i in 0..<gradient.count {
      gradients[range.lowerBound + i] += gradient[i]
    }
  }
}
