import Dispatch

// MARK: - The machine's measured peak

/// The best Float32 GEMM throughput this code reaches on this machine, measured rather than taken
/// from a datasheet: every worker runs the 4 x 24 broadcast-FMA step that the convolutions' and
/// GEMMs' tiles are built from (`Tile4x3.broadcastStep`, the inner loop of `gemmTile`) over packed
/// panels that stay in L1, so the figure is that step's ceiling with no memory traffic. Returns the best GFLOP/s of `trials` runs of `seconds` each.
public func measurePeakGFLOPS(workers: Int, seconds: Double = 0.1, trials: Int = 5) -> Double {
  checkWorkers(workers)
  let depth = 256
  var best = 0.0
  for _ in 0..<trials {
    let start = DispatchTime.now().uptimeNanoseconds
    let budget = UInt64(seconds * 1e9)
    let calls = peakCalls(workers: workers, depth: depth, until: start + budget)
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    best = max(best, Double(calls) * 2 * 4 * 24 * Double(depth) / elapsed / 1e9)
  }
  return best
}

/// Runs the micro-kernel on `workers` threads until `deadline`; returns the total number of calls.
func peakCalls(workers: Int, depth: Int, until deadline: UInt64) -> Int {
  var counts = [Int](repeating: 0, count: workers)
  counts.withUnsafeMutableBufferPointer { buffer in
    // Disjoint writes: worker w writes counts[w] only.
    nonisolated(unsafe) let out = buffer.baseAddress!
    DispatchQueue.concurrentPerform(iterations: workers) { w in
      var a = [Float](repeating: 0, count: depth * 4)
      // Three panels, picked by the iteration index, so the compiler cannot hoist the kernel.
      var b = [Float](repeating: 0, count: 3 * depth * 24)
      for i in 0..<a.count { a[i] = Float(i % 7) * 1e-3 }
      for i in 0..<b.count { b[i] = Float(i % 5) * 1e-3 }
      var acc = Tile4x3()
      var calls = 0
      a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
          while DispatchTime.now().uptimeNanoseconds < deadline {
            // The accumulators carry over from call to call, so no call can be skipped or hoisted.
            for i in 0..<64 {
              var wa = pa.baseAddress!
              var wb = pb.baseAddress! + (i % 3) * depth * 24
              for _ in 0..<depth {
                acc.broadcastStep(wa, load8(wb), load8(wb + 8), load8(wb + 16))
                wa += 4
                wb += 24
              }
            }
            calls += 64
          }
        }
      }
      // Every accumulator must reach the sink, or the compiler drops the dead ones (and the
      // FLOPs counted below would not all be done).
      let sink = ((acc.a00 + acc.a01) + (acc.a02 + acc.a10)) + ((acc.a11 + acc.a12) + (acc.a20 + acc.a21))
        + ((acc.a22 + acc.a30) + (acc.a31 + acc.a32))
      blackHole(sink)
      // A NaN sink would mean the work was skipped or overflowed; it never is with these inputs.
      out[w] = sink[0].isNaN ? 0 : calls
    }
  }
  return counts.reduce(0, +)
}

/// Keeps a value alive so the optimizer cannot delete the computation that produced it. Lives in
/// this module so callers in other modules cannot see through it, and is compiled unoptimised so
/// that even callers in this module cannot drop its argument as dead.
@inline(never)
@_optimize(none)
public func blackHole<T>(_ value: T) {
  withExtendedLifetime(value) {}
}
