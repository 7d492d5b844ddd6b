import Reference

// MARK: - Channel concatenation

/// Optimized twin of `Reference.concatChannels`: [first, second] along channels.
/// first: (N, C1, H, W); second: (N, C2, H, W). Returns (N, C1 + C2, H, W). Only moves data, so it is
/// bit-identical to the reference. Parallel over images.
public func concatChannels(_ first: Tensor<Float>, _ second: Tensor<Float>, workers: Int) -> Tensor<Float> {
  checkWorkers(workers)
  let a = first.shape, b = second.shape
  precondition(a.n == b.n && a.h == b.h && a.w == b.w, "concatChannels: shapes \(a) and \(b) differ outside channels")
  let outShape = Shape(a.n, a.c + b.c, a.h, a.w)
  let firstCount = a.c * a.h * a.w, secondCount = b.c * b.h * b.w
  let data = makeArray(outShape.count) { out in
    first.data.withUnsafeBufferPointer { fBuffer in
      second.data.withUnsafeBufferPointer { sBuffer in
        // Disjoint writes: image n of the output belongs to iteration n.
        nonisolated(unsafe) let f = fBuffer.baseAddress, s = sBuffer.baseAddress
        nonisolated(unsafe) let y = out
        parallelFor(a.n, workers: workers) { n in
          let dst = y + n * (firstCount + secondCount)
          if firstCount > 0 { dst.update(from: f! + n * firstCount, count: firstCount) }
          if secondCount > 0 { (dst + firstCount).update(from: s! + n * secondCount, count: secondCount) }
        }
      }
    }
  }
  return Tensor(shape: outShape, data: data)
}

/// Optimized twin of `Reference.splitChannels`: the inverse of `concatChannels` (and its gradient).
/// Bit-identical to the reference. Parallel over images.
public func splitChannels(_ tensor: Tensor<Float>, firstChannels: Int, workers: Int) -> (Tensor<Float>, Tensor<Float>) {
  checkWorkers(workers)
  let s = tensor.shape
  precondition(firstChannels >= 0 && firstChannels <= s.c, "splitChannels: firstChannels \(firstChannels) for \(s)")
  let firstCount = firstChannels * s.h * s.w
  let secondCount = (s.c - firstChannels) * s.h * s.w
  return tensor.data.withUnsafeBufferPointer { buffer in
    nonisolated(unsafe) let x = buffer.baseAddress
    func part(_ offset: Int, _ count: Int) -> [Float] {
      makeArray(s.n * count) { out in
        // Disjoint writes: image n of this part belongs to iteration n.
        nonisolated(unsafe) let y = out
        parallelFor(s.n, workers: workers) { n in
          y.advanced(by: n * count).update(from: x! + n * (firstCount + secondCount) + offset, count: count)
        }
      }
    }
    return (
      Tensor(shape: Shape(s.n, firstChannels, s.h, s.w), data: part(0, firstCount)),
      Tensor(shape: Shape(s.n, s.c - firstChannels, s.h, s.w), data: part(firstCount, secondCount))
    )
  }
}
