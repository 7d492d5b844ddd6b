import Reference

// MARK: - ReLU

/// Elements per parallel iteration of the pointwise kernels (fixed, so partitions never depend on
/// the worker count; pointwise kernels would be deterministic anyway).
let pointwiseChunk = 1 << 16

/// Optimized twin of `Reference.reluForward`: `max(in, 0)`, NaN kept. Same shape in and out.
/// 8-lane selects, parallel over fixed chunks; bit-identical to the reference's rule.
public func reluForward(input: Tensor<Float>, workers: Int) -> Tensor<Float> {
  checkWorkers(workers)
  let count = input.data.count
  let data = makeArray(count) { out in
    input.data.withUnsafeBufferPointer { buffer in
      // Disjoint writes: chunk k writes out[k * pointwiseChunk ..< ...] only.
      nonisolated(unsafe) let x = buffer.baseAddress!
      nonisolated(unsafe) let y = out
      let chunks = (count + pointwiseChunk - 1) / pointwiseChunk
      parallelFor(chunks, workers: workers) { k in
        let start = k * pointwiseChunk
        let zero = Vec8()
        mapPlane(x + start, y + start, count: min(pointwiseChunk, count - start)) { v in
          // v <= 0 is false for NaN, so NaN passes through.
          v.replacing(with: zero, where: v .<= zero)
        }
      }
    }
  }
  return Tensor(shape: input.shape, data: data)
}

/// Optimized twin of `Reference.reluBackward`: `gradIn = gradOut` where `out > 0`, else 0.
/// output, gradOutput: same shape. Bit-identical to the reference's rule.
public func reluBackward(output: Tensor<Float>, gradOutput: Tensor<Float>, workers: Int) -> Tensor<Float> {
  checkWorkers(workers)
  gradOutput.checkShape(output.shape, "reluBackward gradOutput")
  let count = output.data.count
  let data = makeArray(count) { out in
    output.data.withUnsafeBufferPointer { yBuffer in
      gradOutput.data.withUnsafeBufferPointer { gBuffer in
        // Disjoint writes: chunk k writes out[k * pointwiseChunk ..< ...] only.
        nonisolated(unsafe) let y = yBuffer.baseAddress!, g = gBuffer.baseAddress!
        nonisolated(unsafe) let dx = out
        let chunks = (count + pointwiseChunk - 1) / pointwiseChunk
        parallelFor(chunks, workers: workers) { k in
          let start = k * pointwiseChunk
          let zero = Vec8()
          mapPlanes(y + start, g + start, dx + start, count: min(pointwiseChunk, count - start)) { yv, gv in
            gv.replacing(with: zero, where: .!(yv .> zero))
          }
        }
      }
    }
  }
  return Tensor(shape: output.shape, data: data)
}
