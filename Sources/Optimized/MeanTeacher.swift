import Reference

// MARK: - Mean Teacher's exponential moving average

/// Optimized twin of `Reference.emaUpdate`: `teacher += (1 - decay) · (student - teacher)` on
/// `teacher[range]`, i.e. `decay · teacher + (1 - decay) · student` up to rounding, leaving a teacher
/// equal to the student unchanged bit for bit.
///
/// 1 - decay is computed in Double and rounded to Float once; the update runs 8 lanes at a time,
/// parallel over fixed chunks of the range (entries are independent, so the result does not depend
/// on `workers`). Differs from the reference only in precision.
public func emaUpdate(teacher: inout [Float], student: [Float], range: Range<Int>, decay: Double, workers: Int) {
  checkWorkers(workers)
  precondition(student.count == teacher.count, "emaUpdate: student \(student.count), teacher \(teacher.count)")
  precondition(range.lowerBound >= 0 && range.upperBound <= teacher.count, "emaUpdate: range \(range) outside 0 ..< \(teacher.count)")
  precondition((0...1).contains(decay), "emaUpdate: decay \(decay) outside [0, 1]")
  let rate = Float(1 - decay)
  teacher.withUnsafeMutableBufferPointer { tBuffer in
    student.withUnsafeBufferPointer { sBuffer in
      // Disjoint writes: chunk k updates teacher[start + k·chunk ..< ...] only.
      nonisolated(unsafe) let t = tBuffer.baseAddress!
      nonisolated(unsafe) let s = sBuffer.baseAddress!
      let chunks = (range.count + pointwiseChunk - 1) / pointwiseChunk
      parallelFor(chunks, workers: workers) { k in
        let start = range.lowerBound + k * pointwiseChunk
        let count = min(range.upperBound, start + pointwiseChunk) - start
        let r = Vec8(repeating: rate)
        mapPlanes(t + start, s + start, t + start, count: count) { tv, sv in tv + r * (sv - tv) }
      }
    }
  }
}
