/// Percentiles with linear interpolation between order statistics (numpy's default method, and
/// torch.quantile's): the p-th percentile (0...100) of n values is at sorted position
/// `p / 100 * (n - 1)`.
public enum Percentile {
  /// The percentiles `ps` of `values`, in O(n) expected time by selection (no full sort).
  /// Empty input gives zeros. NaN values are not allowed (the callers reject them first).
  public static func of(_ values: [Double], _ ps: [Double]) -> [Double] {
    guard !values.isEmpty else { return ps.map { _ in 0 } }
    var work = values
    return ps.map { p in
      let position = min(max(p, 0), 100) / 100 * Double(values.count - 1)
      let below = Int(position.rounded(.down))
      let fraction = position - Double(below)
      let low = select(&work, below)
      guard fraction > 0, below + 1 < values.count else { return low }
      // The next order statistic is the minimum of everything after `below`.
      var high = work[below + 1]
      for v in work[(below + 1)...] where v < high { high = v }
      return low + (high - low) * fraction
    }
  }

  /// Rearranges `values` so that `values[k]` is the k-th smallest, everything before it is <= and
  /// everything after it is >= (Hoare-style quickselect with a median-of-three pivot; falls back
  /// to sorting a range that refuses to shrink, so the worst case stays O(n log n)).
  static func select(_ values: inout [Double], _ k: Int) -> Double {
    var lo = 0, hi = values.count - 1
    var budget = 2 * (Int.bitWidth - values.count.leadingZeroBitCount) + 8
    while hi > lo {
      budget -= 1
      if budget < 0 || hi - lo < 16 {
        values[lo...hi].sort()
        break
      }
      let mid = lo + (hi - lo) / 2
      let pivot = median(values[lo], values[mid], values[hi])
      var i = lo, j = hi
      while i <= j {
        while values[i] < pivot { i += 1 }
        while values[j] > pivot { j -= 1 }
        if i <= j {
          values.swapAt(i, j)
          i += 1
          j -= 1
        }
      }
      if k <= j {
        hi = j
      } else if k >= i {
        lo = i
      } else {
        break  // j < k < i: values[k] equals the pivot.
      }
    }
    return values[k]
  }

  private static func median(_ a: Double, _ b: Double, _ c: Double) -> Double {
    max(min(a, b), min(max(a, b), c))
  }
}
