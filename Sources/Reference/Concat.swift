// MARK: - Channel concatenation (the skip connections of every Up block)

/// `[first, second]` along channels, first's channels first.
/// first: (N, C1, H, W); second: (N, C2, H, W), W fastest. Returns (N, C1 + C2, H, W).
public func concatChannels(_ first: Tensor<Double>, _ second: Tensor<Double>) -> Tensor<Double> {
  let a = first.shape, b = second.shape
  precondition(
    a.n == b.n && a.h == b.h && a.w == b.w,
    "concatChannels: shapes \(a) and \(b) differ outside the channel dimension")
  var output = Tensor<Double>(zeros: Shape(a.n, a.c + b.c, a.h, a.w))
  for n in 0..<a.n {
    for c in 0..<(a.c + b.c) {
      for y in 0..<a.h {
        for x in 0..<a.w {
          output[n, c, y, x] = c < a.c ? first[n, c, y, x] : second[n, c - a.c, y, x]
        }
      }
    }
  }
  return output
}

/// The inverse of `concatChannels` (and its gradient): channels `0 ..< firstChannels` and the rest.
/// tensor: (N, C, H, W). Returns (N, firstChannels, H, W) and (N, C - firstChannels, H, W).
public func splitChannels(_ tensor: Tensor<Double>, firstChannels: Int) -> (Tensor<Double>, Tensor<Double>) {
  let s = tensor.shape
  precondition(
    firstChannels >= 0 && firstChannels <= s.c,
    "splitChannels: firstChannels \(firstChannels), expected 0 ... \(s.c) for \(s)")
  var first = Tensor<Double>(zeros: Shape(s.n, firstChannels, s.h, s.w))
  var second = Tensor<Double>(zeros: Shape(s.n, s.c - firstChannels, s.h, s.w))
  for n in 0..<s.n {
    for c in 0..<s.c {
      for y in 0..<s.h {
        for x in 0..<s.w {
          if c < firstChannels {
            first[n, c, y, x] = tensor[n, c, y, x]
          } else {
            second[n, c - firstChannels, y, x] = tensor[n, c, y, x]
          }
        }
      }
    }
  }
  return (first, second)
}
