/// The shape of a 4-D tensor in NCHW order: batch, channels, height, width (width fastest).
public struct Shape: Hashable, Sendable, CustomStringConvertible {
  public var n: Int
  public var c: Int
  public var h: Int
  public var w: Int

  @inlinable
  public init(_ n: Int, _ c: Int, _ h: Int, _ w: Int) {
    precondition(n >= 0 && c >= 0 && h >= 0 && w >= 0, "negative dimension in (\(n), \(c), \(h), \(w))")
    self.n = n
    self.c = c
    self.h = h
    self.w = w
  }

  /// Number of elements.
  @inlinable public var count: Int { n * c * h * w }
  /// Elements in one image plane (h * w).
  @inlinable public var plane: Int { h * w }

  public var description: String { "(\(n), \(c), \(h), \(w))" }
}

/// A dense NCHW tensor: `data[((n * C + c) * H + y) * W + x]`.
///
/// The reference computes in `Double`; the optimized twin uses `Float`. Matrices are stored as
/// `(rows, columns, 1, 1)`.
public struct Tensor<Scalar: BinaryFloatingPoint & Sendable>: Sendable, Equatable {
  public let shape: Shape
  public var data: [Scalar]

  /// A tensor of zeros.
  @inlinable
  public init(zeros shape: Shape) {
    self.shape = shape
    self.data = [Scalar](repeating: 0, count: shape.count)
  }

  /// A tensor holding `data`; its count must match the shape.
  @inlinable
  public init(shape: Shape, data: [Scalar]) {
    precondition(data.count == shape.count, "Tensor: \(data.count) values for shape \(shape) (\(shape.count))")
    self.shape = shape
    self.data = data
  }

  /// The same values under another shape of equal count.
  @inlinable
  public func reshaped(_ newShape: Shape) -> Tensor {
    Tensor(shape: newShape, data: data)
  }

  /// Offset of element (n, c, y, x).
  @inlinable
  public func index(_ n: Int, _ c: Int, _ y: Int, _ x: Int) -> Int {
    ((n * shape.c + c) * shape.h + y) * shape.w + x
  }

  @inlinable
  public subscript(n: Int, c: Int, y: Int, x: Int) -> Scalar {
    get { data[index(n, c, y, x)] }
    set { data[index(n, c, y, x)] = newValue }
  }

  /// Converts to another scalar type element by element.
  @inlinable
  public func converted<Other: BinaryFloatingPoint & Sendable>(to: Other.Type = Other.self) -> Tensor<Other> {
    Tensor<Other>(shape: shape, data: data.map { Other($0) })
  }

  /// Traps with a message naming `label` when the shape is not `expected`.
  @inlinable
  public func checkShape(_ expected: Shape, _ label: String) {
    precondition(shape == expected, "\(label): shape \(shape), expected \(expected)")
  }
}
