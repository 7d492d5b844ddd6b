import Dispatch
import Foundation
import Synchronization

// MARK: - Deterministic parallel loops

/// The most worker threads a backend takes. The kernels' work is split into pieces that do not
/// depend on the worker count (so results are bit-identical for any count); at the model sizes
/// this package trains on a CPU there are too few pieces per layer to keep more threads busy.
public let maximumWorkerCount = 16

/// The worker count used when none is given: every active processor, at most `maximumWorkerCount`
/// (a machine with more cores runs 16 workers).
public func defaultWorkerCount(activeProcessors: Int = ProcessInfo.processInfo.activeProcessorCount) -> Int {
  max(1, min(maximumWorkerCount, activeProcessors))
}

/// Runs `body(i)` for every `i` in `0 ..< count`, on up to `workers` threads.
///
/// Iterations are handed out dynamically, so *which* thread runs an iteration varies from run to
/// run; callers guarantee determinism by making every iteration own its output (disjoint writes)
/// and by never letting the partition depend on `workers`. With `workers == 1` (or a single
/// iteration) the loop runs inline, in order, on the calling thread.
@inlinable
func parallelFor(_ count: Int, workers: Int, _ body: @Sendable (Int) -> Void) {
  if count <= 0 { return }
  let threads = min(max(workers, 1), count)
  if threads == 1 {
    for i in 0..<count { body(i) }
    return
  }
  let next = Atomic<Int>(0)
  DispatchQueue.concurrentPerform(iterations: threads) { _ in
    while true {
      let i = next.add(1, ordering: .relaxed).oldValue
      if i >= count { break }
      body(i)
    }
  }
}

/// Splits `0 ..< count` into `chunks` contiguous ranges whose bounds depend only on the arguments.
@inlinable
func chunkRange(_ chunk: Int, of chunks: Int, count: Int) -> Range<Int> {
  (chunk * count / chunks)..<((chunk + 1) * count / chunks)
}

/// Rounds `value` up to a multiple of `multiple`.
@inlinable
func roundUp(_ value: Int, _ multiple: Int) -> Int { (value + multiple - 1) / multiple * multiple }

/// Checks a worker count from a caller (1 ... `maximumWorkerCount`).
@inlinable
func checkWorkers(_ workers: Int) {
  precondition((1...maximumWorkerCount).contains(workers), "workers must be in 1...\(maximumWorkerCount), got \(workers)")
}
