/// A small, stable description of a large array for golden files: shape, moments, a
/// position-weighted checksum and a few sampled values.
public struct ArraySummary: Codable, Equatable, Sendable, CustomStringConvertible {
  public var shape: [Int]
  public var count: Int
  public var mean: Double
  public var min: Double
  public var max: Double
  public var sum: Double
  /// sum over i of values[i] * ((i % 97) + 1): moves when values are permuted.
  public var weightedChecksum: Double
  /// (index, value) at up to eight evenly spaced positions.
  public var samples: [Sample]

  public struct Sample: Codable, Equatable, Sendable {
    public var index: Int
    public var value: Double
  }

  public init<S: BinaryFloatingPoint>(shape: [Int], values: [S]) {
    self.shape = shape
    count = values.count
    var s = 0.0, w = 0.0
    var lo = Double.infinity, hi = -Double.infinity
    for (i, v) in values.enumerated() {
      let d = Double(v)
      s += d
      w += d * Double(i % 97 + 1)
      lo = Swift.min(lo, d)
      hi = Swift.max(hi, d)
    }
    sum = s
    weightedChecksum = w
    mean = values.isEmpty ? 0 : s / Double(values.count)
    min = values.isEmpty ? 0 : lo
    max = values.isEmpty ? 0 : hi
    let picks = values.isEmpty ? [] : Array(Set((0..<8).map { $0 * (values.count - 1) / 7 })).sorted()
    samples = picks.map { Sample(index: $0, value: Double(values[$0])) }
  }

  public var description: String {
    "shape \(shape) mean \(mean) min \(min) max \(max) sum \(sum) checksum \(weightedChecksum)"
  }
}
