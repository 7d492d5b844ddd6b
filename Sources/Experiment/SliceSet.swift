import Reference

/// Preprocessed 2D slices as the training code uses them: S x S images in [0, 1] and label maps,
/// with the test volume each slice belongs to (for 3D Dice).
public struct SliceSet: Sendable {
  public let size: Int
  /// (count, S, S), row-major.
  public private(set) var images: [Float] = []
  /// (count, S, S), values 0 ..< 4.
  public private(set) var labels: [UInt8] = []
  /// The volume of each slice, an index into `volumes`.
  public private(set) var volumeOfSlice: [Int] = []
  /// (patient, phase) of each volume.
  public private(set) var volumes: [VolumeID] = []

  public struct VolumeID: Hashable, Sendable, Codable {
    public var patient: Int
    public var phase: String
    public init(patient: Int, phase: String) {
      self.patient = patient
      self.phase = phase
    }
  }

  public init(size: Int) { self.size = size }

  public var count: Int { volumeOfSlice.count }
  var plane: Int { size * size }

  /// Appends one slice of `volume` (volumes are added on first use).
  public mutating func append(image: [Float], label: [UInt8], volume: VolumeID) {
    precondition(image.count == plane && label.count == plane, "slice of \(image.count) pixels for S = \(size)")
    if volumes.last != volume { volumes.append(volume) }
    images += image
    labels += label
    volumeOfSlice.append(volumes.count - 1)
  }

  /// The slices at `indices`, in that order.
  public func subset(_ indices: [Int]) -> SliceSet {
    var out = SliceSet(size: size)
    for i in indices {
      out.append(
        image: Array(images[(i * plane)..<((i + 1) * plane)]), label: Array(labels[(i * plane)..<((i + 1) * plane)]),
        volume: volumes[volumeOfSlice[i]])
    }
    return out
  }

  /// Images (N, 1, S, S) of the slices at `indices`.
  public func imageTensor<Scalar: BinaryFloatingPoint & Sendable>(_ indices: [Int], as: Scalar.Type = Scalar.self) -> Tensor<Scalar> {
    var data = [Scalar]()
    data.reserveCapacity(indices.count * plane)
    for i in indices { data += images[(i * plane)..<((i + 1) * plane)].map { Scalar($0) } }
    return Tensor(shape: Shape(indices.count, 1, size, size), data: data)
  }

  /// One image as Double (S x S).
  public func image(_ i: Int) -> [Double] { images[(i * plane)..<((i + 1) * plane)].map(Double.init) }

  /// Labels (N, S, S) of the slices at `indices`.
  public func labelBatch(_ indices: [Int]) -> [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity(indices.count * plane)
    for i in indices { out += labels[(i * plane)..<((i + 1) * plane)] }
    return out
  }

  /// Consecutive batches of at most `size` indices covering all slices.
  public func batches(of batchSize: Int) -> [[Int]] {
    stride(from: 0, to: count, by: batchSize).map { Array($0..<min($0 + batchSize, count)) }
  }
}

/// An endless sequence of shuffled mini-batches: each epoch is a fresh seeded permutation.
/// A last partial batch is dropped when the set holds at least one full batch.
struct BatchSampler {
  let count: Int
  let batchSize: Int
  var rng: SplitMix64
  var order: [Int] = []
  var cursor = 0

  init(count: Int, batchSize: Int, rng: SplitMix64) {
    precondition(count > 0, "no slices to train on")
    self.count = count
    self.batchSize = min(batchSize, count)
    self.rng = rng
  }

  mutating func next() -> [Int] {
    if cursor + batchSize > order.count {
      order = rng.permutation(count)
      cursor = 0
    }
    defer { cursor += batchSize }
    return Array(order[cursor..<(cursor + batchSize)])
  }
}
