/// Adam over the flat parameter buffer, with a learning rate per parameter group (PyTorch's
/// parameter groups). Running statistics are never updated; groups with no learning rate are frozen.
public struct AdamOptimizer<Scalar: BinaryFloatingPoint & Sendable>: Sendable {
  public var learningRates: [ParameterGroup: Double]
  public var hyper = AdamHyperparameters()
  public private(set) var step = 0
  public var firstMoment: [Scalar]
  public var secondMoment: [Scalar]
  /// Contiguous trainable ranges with their learning rate, in layout order.
  let spans: [(range: Range<Int>, learningRate: Double)]

  public init(layout: ParameterLayout, learningRates: [ParameterGroup: Double]) {
    self.learningRates = learningRates
    firstMoment = [Scalar](repeating: 0, count: layout.count)
    secondMoment = [Scalar](repeating: 0, count: layout.count)
    var spans: [(range: Range<Int>, learningRate: Double)] = []
    for entry in layout.entries where entry.role.isTrainable {
      guard let lr = learningRates[entry.group] else { continue }
      if let last = spans.last, last.range.upperBound == entry.offset, last.learningRate == lr {
        spans[spans.count - 1].range = last.range.lowerBound..<entry.range.upperBound
      } else {
        spans.append((entry.range, lr))
      }
    }
    self.spans = spans
  }

  /// Puts back the state of an optimizer saved after `step` steps (a training checkpoint), so
  /// that training resumes exactly where it stopped.
  public mutating func restore(step: Int, firstMoment: [Scalar], secondMoment: [Scalar]) {
    precondition(
      firstMoment.count == self.firstMoment.count && secondMoment.count == self.secondMoment.count,
      "AdamOptimizer.restore: \(firstMoment.count) and \(secondMoment.count) values for \(self.firstMoment.count) parameters")
    self.step = step
    self.firstMoment = firstMoment
    self.secondMoment = secondMoment
  }

  /// One Adam step of `values` along `gradients` (both in the parameter layout).
  public mutating func update<B: Backend>(_ values: inout [Scalar], gradients: [Scalar], backend: B)
  where B.Scalar == Scalar {
    step += 1
    for span in spans {
      backend.adamUpdate(
        values: &values, gradients: gradients, firstMoment: &firstMoment, secondMoment: &secondMoment,
        range: span.range, learningRate: span.learningRate, hyper: hyper, step: step)
    }
  }
}
