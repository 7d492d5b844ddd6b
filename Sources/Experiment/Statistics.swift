import Foundation
import Reference

// The statistics behind the claims' verdicts: Student t quantiles, paired comparisons with
// t-intervals, seeded percentile bootstraps (over draws and over test volumes), a weighted
// monotone (isotonic) fit of Dice against log budget and the annotation-reduction factor k.

// MARK: - Student t quantile

/// The `probability` quantile of Student's t distribution with `degreesOfFreedom` (> 0, may be
/// fractional or `.infinity`), e.g. 12.706205 for (0.975, 1) and 1.959964 for (0.975, ∞).
///
/// Up to 1e5 degrees of freedom the upper tail P(T > t) = I_x(ν/2, 1/2) / 2, x = ν / (ν + t²), is
/// evaluated through the regularized incomplete beta function (Lentz's continued fraction) and
/// inverted by bisection to about 1e-13 relative; above 1e5 (where the continued fraction needs
/// many terms and the expansion is exact to far below 1e-12) the Cornish-Fisher expansion in 1/ν
/// (Abramowitz & Stegun 26.7.5) around the normal quantile is used.
public func studentTQuantile(probability: Double, degreesOfFreedom: Double) -> Double {
  precondition(probability > 0 && probability < 1, "t quantile: probability \(probability) outside (0, 1)")
  precondition(degreesOfFreedom > 0, "t quantile: \(degreesOfFreedom) degrees of freedom")
  if probability == 0.5 { return 0 }
  if probability < 0.5 { return -studentTQuantile(probability: 1 - probability, degreesOfFreedom: degreesOfFreedom) }
  let tail = 1 - probability
  let nu = degreesOfFreedom
  if nu > 1e5 {
    let z = normalUpperQuantile(tail)
    let z2 = z * z
    let g1 = (z2 + 1) * z / 4
    let g2 = ((5 * z2 + 16) * z2 + 3) * z / 96
    let g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384
    let g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160
    return z + (g1 + (g2 + (g3 + g4 / nu) / nu) / nu) / nu
  }
  // P(T > t), decreasing in t.
  func upperTail(_ t: Double) -> Double {
    let t2 = t * t
    return 0.5 * regularizedIncompleteBeta(a: nu / 2, b: 0.5, x: nu / (nu + t2), complement: t2 / (nu + t2))
  }
  var lo = 0.0, hi = 1.0
  while upperTail(hi) > tail { lo = hi; hi *= 2 }
  for _ in 0..<300 {
    let mid = (lo + hi) / 2
    if mid <= lo || mid >= hi || hi - lo <= 1e-14 * hi { break }
    if upperTail(mid) > tail { lo = mid } else { hi = mid }
  }
  return (lo + hi) / 2
}

/// The z with P(Z > z) = `tail` for the standard normal Z, by bisection on erfc (to about 1e-15).
func normalUpperQuantile(_ tail: Double) -> Double {
  precondition(tail > 0 && tail < 1, "normal quantile: tail \(tail) outside (0, 1)")
  if tail > 0.5 { return -normalUpperQuantile(1 - tail) }
  var lo = 0.0, hi = 1.0
  while 0.5 * erfc(hi / 2.0.squareRoot()) > tail { lo = hi; hi *= 2 }
  for _ in 0..<200 {
    let mid = (lo + hi) / 2
    if mid <= lo || mid >= hi { break }
    if 0.5 * erfc(mid / 2.0.squareRoot()) > tail { lo = mid } else { hi = mid }
  }
  return (lo + hi) / 2
}

/// The regularized incomplete beta function I_x(a, b), with `complement` = 1 − x passed
/// separately so that x close to 1 keeps its precision. The continued fraction (Numerical
/// Recipes' betacf, modified Lentz) converges for x < (a + 1) / (a + b + 2); above, the symmetry
/// I_x(a, b) = 1 − I_{1−x}(b, a) is used.
func regularizedIncompleteBeta(a: Double, b: Double, x: Double, complement: Double) -> Double {
  if x <= 0 { return 0 }
  if complement <= 0 { return 1 }
  let logFront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(complement)
  let front = exp(logFront)
  if x < (a + 1) / (a + b + 2) {
    return front * betaContinuedFraction(a: a, b: b, x: x) / a
  }
  return 1 - front * betaContinuedFraction(a: b, b: a, x: complement) / b
}

/// The continued fraction of the incomplete beta function (modified Lentz), to 1e-16 relative.
func betaContinuedFraction(a: Double, b: Double, x: Double) -> Double {
  let tiny = 1e-300
  let qab = a + b, qap = a + 1, qam = a - 1
  var c = 1.0
  var d = 1 - qab * x / qap
  if abs(d) < tiny { d = tiny }
  d = 1 / d
  var h = d
  for step in 1...100_000 {
    let m = Double(step), m2 = 2 * m
    var aa = m * (b - m) * x / ((qam + m2) * (a + m2))
    d = 1 + aa * d
    if abs(d) < tiny { d = tiny }
    c = 1 + aa / c
    if abs(c) < tiny { c = tiny }
    d = 1 / d
    h *= d * c
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
    d = 1 + aa * d
    if abs(d) < tiny { d = tiny }
    c = 1 + aa / c
    if abs(c) < tiny { c = tiny }
    d = 1 / d
    let delta = d * c
    h *= delta
    if abs(delta - 1) < 1e-16 { break }
  }
  return h
}

// MARK: - Verdicts

/// A verdict on one of the paper's claims, from a 95% interval of our effect and the paper's
/// effect (see `PairedComparison.verdict(paperEffect:)`).
public enum Verdict: String, Codable, Sendable {
  /// The interval is entirely above 0 and our effect is at least half the paper's (or the paper
  /// gives no number).
  case reproduced
  /// The interval is entirely above 0 but our effect is less than half the paper's.
  case weaker
  /// The interval contains 0, or there are fewer than 2 pairs (no interval).
  case inconclusive
  /// The interval is entirely below 0.
  case contradicted
  /// The runs the claim needs are missing.
  case notMeasured = "not measured"
}

// MARK: - Paired comparison

/// The bootstrap-over-test-volumes interval of one paired draw (same units as the comparison).
public struct DrawInterval: Codable, Hashable, Sendable {
  public var budget: Int
  public var draw: Int
  public var lower: Double
  public var upper: Double

  public init(budget: Int, draw: Int, lower: Double, upper: Double) {
    self.budget = budget
    self.draw = draw
    self.lower = lower
    self.upper = upper
  }
}

/// Differences a − b over paired draws with their mean, standard error and 95% t-interval. The
/// statistics are nil when undefined (no pair: no mean; one pair: no standard error and no
/// interval), so that the JSON encoding never holds NaN or infinity.
public struct PairedComparison: Codable, Hashable, Sendable {
  public var label: String
  public var differences: [Double]
  public var mean: Double?
  public var standardError: Double?
  /// Number of pairs − 1 (0 when fewer than 2 pairs).
  public var degreesOfFreedom: Int
  public var lower: Double?
  public var upper: Double?
  /// Per paired draw, the 95% percentile bootstrap interval of the difference over test volumes
  /// (nil when not computed).
  public var volumeIntervals: [DrawInterval]?

  public var count: Int { differences.count }

  /// The comparison of the differences a[i] − b[i] (arrays of equal length, finite values), with
  /// the 95% t-interval mean ± t(0.975, n − 1) · sd / √n when n ≥ 2.
  public static func paired(_ a: [Double], _ b: [Double], label: String) -> PairedComparison {
    precondition(a.count == b.count, "paired comparison: \(a.count) values against \(b.count)")
    let differences = zip(a, b).map { $0 - $1 }
    var result = PairedComparison(
      label: label, differences: differences, mean: nil, standardError: nil, degreesOfFreedom: 0,
      lower: nil, upper: nil, volumeIntervals: nil)
    guard !differences.isEmpty else { return result }
    let (mean, sd) = meanAndSD(differences)
    result.mean = mean
    guard differences.count >= 2 else { return result }
    let n = differences.count
    let standardError = sd / Double(n).squareRoot()
    let half = studentTQuantile(probability: 0.975, degreesOfFreedom: Double(n - 1)) * standardError
    result.standardError = standardError
    result.degreesOfFreedom = n - 1
    result.lower = mean - half
    result.upper = mean + half
    return result
  }

  /// The verdict against the paper's effect, in the same units as the differences (nil when the
  /// paper gives no number): interval above 0 and mean ≥ half the paper's → reproduced (any
  /// interval above 0 when no number); above 0 but smaller → weaker; containing 0 → inconclusive;
  /// below 0 → contradicted; fewer than 2 pairs → inconclusive; no pair → not measured.
  public func verdict(paperEffect: Double?) -> Verdict {
    guard let mean else { return .notMeasured }
    guard let lower, let upper else { return .inconclusive }
    if lower > 0 {
      guard let paperEffect else { return .reproduced }
      return mean >= paperEffect / 2 ? .reproduced : .weaker
    }
    if upper < 0 { return .contradicted }
    return .inconclusive
  }

  /// One line: "+12.3 (95% t-interval +8.1 to +16.5, 5 paired draws)" with `unit` after the mean,
  /// "no interval" for one pair, "missing" for none.
  public func text(unit: String, format: String = "%+.1f") -> String {
    guard let mean else { return "missing (no paired draws)" }
    let m = String(format: format, mean) + unit
    guard let lower, let upper else {
      return "\(m) (\(count) paired draw\(count == 1 ? "" : "s"): no interval, fewer than 2 pairs)"
    }
    let l = String(format: format, lower), u = String(format: format, upper)
    return "\(m) (95% t-interval \(l) to \(u), \(count) paired draws)"
  }
}

// MARK: - Bootstrap

/// The `p` quantile of ascending `sorted` values by linear interpolation between order statistics
/// (infinite values allowed at the ends).
func percentile(_ sorted: [Double], _ p: Double) -> Double {
  precondition(!sorted.isEmpty, "percentile of no values")
  let position = p * Double(sorted.count - 1)
  let i = Int(position.rounded(.down)), f = position - Double(i)
  if i + 1 >= sorted.count || f == 0 { return sorted[min(i, sorted.count - 1)] }
  if sorted[i + 1] == .infinity { return .infinity }
  return sorted[i] + f * (sorted[i + 1] - sorted[i])
}

/// The 95% percentile bootstrap interval of the mean of `values` (non-empty): `resamples` resamples
/// with replacement drawn from `SplitMix64(seed:)`, so the same seed gives the same interval.
public func bootstrapMeanInterval(_ values: [Double], resamples: Int = 2000, seed: UInt64) -> (lower: Double, upper: Double) {
  precondition(!values.isEmpty, "bootstrap of no values")
  precondition(resamples > 0, "bootstrap needs resamples > 0")
  var rng = SplitMix64(seed: seed)
  let n = values.count
  var means: [Double] = []
  means.reserveCapacity(resamples)
  for _ in 0..<resamples {
    var sum = 0.0
    for _ in 0..<n { sum += values[rng.int(below: n)] }
    means.append(sum / Double(n))
  }
  means.sort()
  return (percentile(means, 0.025), percentile(means, 0.975))
}

/// For one draw, two runs (methods A and B) evaluated on the same test volumes: the 95% percentile
/// bootstrap interval of mean Dice(A) − mean Dice(B) over volumes resampled with replacement
/// (the same resampled volumes for both runs). Volumes are matched by (patient, phase); those
/// present in one run only are ignored, and nil is returned when none match. `relative` gives
/// (mean A − mean B) / mean B instead (resamples where mean B is 0 are dropped). Seeded: the same
/// seed gives the same interval.
public func pairedVolumeBootstrap(
  _ a: [VolumeScore], _ b: [VolumeScore], resamples: Int = 2000, seed: UInt64, relative: Bool = false
) -> (lower: Double, upper: Double)? {
  struct Key: Hashable { let patient: Int, phase: String }
  var scoresOfB: [Key: Double] = [:]
  for v in b { scoresOfB[Key(patient: v.patient, phase: v.phase)] = v.mean }
  var pairs: [(Double, Double)] = []
  var seen = Set<Key>()
  for v in a {
    let key = Key(patient: v.patient, phase: v.phase)
    guard let other = scoresOfB[key], seen.insert(key).inserted else { continue }
    pairs.append((v.mean, other))
  }
  guard !pairs.isEmpty, resamples > 0 else { return nil }
  var rng = SplitMix64(seed: seed)
  let n = pairs.count
  var statistics: [Double] = []
  statistics.reserveCapacity(resamples)
  for _ in 0..<resamples {
    var sumA = 0.0, sumB = 0.0
    for _ in 0..<n {
      let (x, y) = pairs[rng.int(below: n)]
      sumA += x
      sumB += y
    }
    if relative {
      if sumB > 0 { statistics.append((sumA - sumB) / sumB) }
    } else {
      statistics.append((sumA - sumB) / Double(n))
    }
  }
  guard !statistics.isEmpty else { return nil }
  statistics.sort()
  return (percentile(statistics, 0.025), percentile(statistics, 0.975))
}

// MARK: - Monotone fit in log budget

/// Weighted isotonic regression (pool-adjacent-violators): the non-decreasing sequence closest to
/// `values` in weighted least squares, for points already in ascending order of x. Weights must be
/// positive, e.g. [1, 3, 2, 4] with equal weights → [1, 2.5, 2.5, 4].
public func isotonicRegression(_ values: [Double], weights: [Double]) -> [Double] {
  precondition(values.count == weights.count, "isotonic regression: \(values.count) values, \(weights.count) weights")
  precondition(weights.allSatisfy { $0 > 0 }, "isotonic regression needs positive weights")
  // Blocks of pooled neighbours: (value, total weight, number of points).
  var blocks: [(value: Double, weight: Double, count: Int)] = []
  for (y, w) in zip(values, weights) {
    blocks.append((y, w, 1))
    while blocks.count > 1 && blocks[blocks.count - 2].value > blocks[blocks.count - 1].value {
      let last = blocks.removeLast()
      let previous = blocks.removeLast()
      let weight = previous.weight + last.weight
      let value = (previous.value * previous.weight + last.value * last.weight) / weight
      blocks.append((value, weight, previous.count + last.count))
    }
  }
  return blocks.flatMap { Array(repeating: $0.value, count: $0.count) }
}

/// A non-decreasing fit of mean Dice against budget, read as piecewise linear in log budget.
public struct MonotoneFit: Codable, Hashable, Sendable {
  /// Ascending budgets.
  public var budgets: [Int]
  /// The fitted (non-decreasing) Dice at each budget.
  public var values: [Double]

  /// The isotonic fit of `means` (one per ascending budget) with `weights` (e.g. draws per budget).
  public init(budgets: [Int], means: [Double], weights: [Double]) {
    precondition(budgets.count == means.count && !budgets.isEmpty, "monotone fit: \(budgets.count) budgets, \(means.count) means")
    precondition(zip(budgets, budgets.dropFirst()).allSatisfy { $0 < $1 } && budgets[0] > 0, "monotone fit: budgets must be positive and ascending")
    self.budgets = budgets
    self.values = isotonicRegression(means, weights: weights)
  }
}

/// Where a fitted curve first reaches a target: `budget` (interpolated in log budget), or nil
/// with `aboveEveryBudget` when the target exceeds the fit's maximum.
public struct BudgetMatch: Equatable, Sendable {
  public var budget: Double?
  public var aboveEveryBudget: Bool

  public init(budget: Double?, aboveEveryBudget: Bool) {
    self.budget = budget
    self.aboveEveryBudget = aboveEveryBudget
  }
}

/// The smallest budget at which `fit` reaches `target`: the first crossing of the piecewise-linear
/// curve in log budget (e.g. 0.5 at 1 and 0.7 at 10, target 0.6 → √10); the smallest budget when
/// the fit is already at or above the target there; nil and `aboveEveryBudget` when the target
/// exceeds the fit at every budget.
public func matchingBudget(fit: MonotoneFit, target: Double) -> BudgetMatch {
  let budgets = fit.budgets, values = fit.values
  if values[0] >= target { return BudgetMatch(budget: Double(budgets[0]), aboveEveryBudget: false) }
  for i in 1..<budgets.count where values[i] >= target {
    let x0 = log(Double(budgets[i - 1])), x1 = log(Double(budgets[i]))
    let (y0, y1) = (values[i - 1], values[i])
    let t = (target - y0) / (y1 - y0)  // y0 < target ≤ y1
    return BudgetMatch(budget: exp(x0 + t * (x1 - x0)), aboveEveryBudget: false)
  }
  return BudgetMatch(budget: nil, aboveEveryBudget: true)
}

// MARK: - Annotation-reduction factor

/// The annotation-reduction factor k and its bootstrap interval. k = the budget at which the
/// baseline's monotone fit reaches the treated mean at budget n, divided by n; `.infinity` when
/// the target is above the whole curve (censored: "k > largest budget / n"). Not Codable: the
/// bounds may be infinite.
public struct ReductionFactor: Sendable {
  public var n: Int
  public var largestBudget: Int
  public var target: Double
  public var fit: MonotoneFit
  public var k: Double
  public var lower: Double
  public var upper: Double
  public var resamples: Int
  /// The fraction of resamples where the target was above every budget.
  public var censoredFraction: Double

  /// largest budget / n: an infinite k or bound reads "above" this.
  public var censoringLimit: Double { Double(largestBudget) / Double(n) }
}

/// k for the treated method's draws at budget `n` against the baseline's draws per budget, with
/// a 95% percentile bootstrap: each resample draws, within each budget, the baseline's draws with
/// replacement (and the treated draws), refits the weighted monotone fit (weights = draws) and
/// recomputes k, censored values counting as +∞. Seeded. Nil when the baseline has fewer than two
/// budgets or a budget without draws, or when there are no treated draws.
public func reductionFactor(
  baseline: [Int: [Double]], treated: [Double], n: Int, resamples: Int = 2000, seed: UInt64
) -> ReductionFactor? {
  let budgets = baseline.keys.sorted()
  guard budgets.count >= 2, budgets.allSatisfy({ !baseline[$0]!.isEmpty }), !treated.isEmpty, n > 0, resamples > 0 else { return nil }
  func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(v.count) }
  let weights = budgets.map { Double(baseline[$0]!.count) }
  func factor(means: [Double], target: Double) -> Double {
    let match = matchingBudget(fit: MonotoneFit(budgets: budgets, means: means, weights: weights), target: target)
    return match.budget.map { $0 / Double(n) } ?? .infinity
  }
  let means = budgets.map { mean(baseline[$0]!) }
  let target = mean(treated)
  let k = factor(means: means, target: target)
  var rng = SplitMix64(seed: seed)
  func resample(_ v: [Double]) -> Double {
    var sum = 0.0
    for _ in 0..<v.count { sum += v[rng.int(below: v.count)] }
    return sum / Double(v.count)
  }
  var ks: [Double] = []
  ks.reserveCapacity(resamples)
  for _ in 0..<resamples {
    let resampledMeans = budgets.map { resample(baseline[$0]!) }
    ks.append(factor(means: resampledMeans, target: resample(treated)))
  }
  ks.sort()
  return ReductionFactor(
    n: n, largestBudget: budgets.last!, target: target,
    fit: MonotoneFit(budgets: budgets, means: means, weights: weights), k: k,
    lower: percentile(ks, 0.025), upper: percentile(ks, 0.975), resamples: resamples,
    censoredFraction: Double(ks.filter { $0 == .infinity }.count) / Double(resamples))
}
