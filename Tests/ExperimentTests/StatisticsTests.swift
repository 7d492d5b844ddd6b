import Experiment
import Foundation
import Testing

/// The statistics behind the claims: t quantiles, paired t-intervals and their verdicts, the
/// seeded bootstraps, the monotone fit in log budget and the annotation-reduction factor.
@Suite struct StatisticsTests {
  @Test(arguments: [(1.0, 12.706205), (4, 2.776445), (9, 2.262157), (30, 2.042272), (100, 1.983972), (1000, 1.962339)])
  func tQuantilesMatchTables(df: Double, expected: Double) {
    let q = studentTQuantile(probability: 0.975, degreesOfFreedom: df)
    #expect(abs(q - expected) < 1e-6, "df \(df): \(q)")
    #expect(abs(studentTQuantile(probability: 0.025, degreesOfFreedom: df) + q) < 1e-12)
  }

  @Test func tQuantilesTendToTheNormal() {
    for df in [1e9, Double.infinity] {
      let q = studentTQuantile(probability: 0.975, degreesOfFreedom: df)
      #expect(abs(q - 1.959964) < 1e-6, "df \(df): \(q)")
    }
    // df 1e6: 1.959966 (z + (z³ + z) / 4ν); no jump where the expansion takes over at 1e5.
    #expect(abs(studentTQuantile(probability: 0.975, degreesOfFreedom: 1e6) - 1.959966) < 1e-6)
    let below = studentTQuantile(probability: 0.975, degreesOfFreedom: 99_999.9)
    let above = studentTQuantile(probability: 0.975, degreesOfFreedom: 100_000.1)
    #expect(abs(below - above) < 1e-9, "\(below) vs \(above)")
    // More digits: t(0.975, 1) = tan(0.475π) = 12.7062047361747.
    #expect(abs(studentTQuantile(probability: 0.975, degreesOfFreedom: 1) - tan(0.475 * Double.pi)) < 1e-9)
    // Other probabilities: t(0.95, 10) = 1.812461, t(0.995, 2) = 9.924843, t(0.5, 3) = 0.
    #expect(abs(studentTQuantile(probability: 0.95, degreesOfFreedom: 10) - 1.812461) < 1e-6)
    #expect(abs(studentTQuantile(probability: 0.995, degreesOfFreedom: 2) - 9.924843) < 1e-6)
    #expect(studentTQuantile(probability: 0.5, degreesOfFreedom: 3) == 0)
  }

  @Test func aConstantDifferenceHasAZeroWidthIntervalAndReproduces() {
    let c = PairedComparison.paired([0.6, 0.7, 0.8], [0.4, 0.5, 0.6], label: "x")
    #expect(abs(c.mean! - 0.2) < 1e-12)
    #expect(abs(c.lower! - 0.2) < 1e-12 && abs(c.upper! - 0.2) < 1e-12)
    #expect(c.degreesOfFreedom == 2)
    #expect(c.verdict(paperEffect: 0.3) == .reproduced)  // 0.2 ≥ half of 0.3
    #expect(c.verdict(paperEffect: 0.5) == .weaker)  // 0.2 < half of 0.5
    #expect(c.verdict(paperEffect: nil) == .reproduced)
  }

  @Test func zeroMeanNoiseIsInconclusive() {
    let c = PairedComparison.paired([0.05, -0.05, 0.03, -0.03, 0], [0, 0, 0, 0, 0], label: "noise")
    #expect(c.lower! < 0 && c.upper! > 0)
    #expect(c.verdict(paperEffect: 0.3) == .inconclusive)
    #expect(c.verdict(paperEffect: nil) == .inconclusive)
  }

  @Test func aReversedEffectIsContradictedAndASmallerOneWeaker() {
    let reversed = PairedComparison.paired([0.30, 0.32, 0.29, 0.31], [0.40, 0.41, 0.40, 0.42], label: "r")
    #expect(reversed.upper! < 0)
    #expect(reversed.verdict(paperEffect: 30) == .contradicted)
    let smaller = PairedComparison.paired([5, 6, 4, 5, 5.5], [0, 0, 0, 0, 0], label: "s")
    #expect(smaller.lower! > 0)
    #expect(smaller.verdict(paperEffect: 30) == .weaker)
  }

  @Test func oneDrawIsInconclusiveWithoutInterval() throws {
    let c = PairedComparison.paired([0.9], [0.1], label: "one")
    #expect(c.mean != nil && c.lower == nil && c.upper == nil && c.standardError == nil)
    #expect(c.verdict(paperEffect: 30) == .inconclusive)
    #expect(c.text(unit: " points").contains("no interval"))
    #expect(PairedComparison.paired([], [], label: "none").verdict(paperEffect: 30) == .notMeasured)
    // No NaN in the encoding: it must encode with JSONEncoder's default (throwing) float strategy.
    let data = try JSONEncoder().encode(c)
    #expect(try JSONDecoder().decode(PairedComparison.self, from: data) == c)
  }

  @Test func verdictRawValues() {
    #expect([Verdict.reproduced, .weaker, .inconclusive, .contradicted, .notMeasured].map(\.rawValue)
      == ["reproduced", "weaker", "inconclusive", "contradicted", "not measured"])
  }

  @Test func bootstrapIsSeededAndBracketsTheMean() {
    let values = [0.1, 0.4, 0.35, 0.2, 0.5, 0.3, 0.25]
    let a = bootstrapMeanInterval(values, seed: 7), b = bootstrapMeanInterval(values, seed: 7)
    #expect(a.lower == b.lower && a.upper == b.upper)
    let mean = values.reduce(0, +) / Double(values.count)
    #expect(a.lower < mean && mean < a.upper)
    #expect(a.lower >= values.min()! && a.upper <= values.max()!)
    let c = bootstrapMeanInterval(values, seed: 8)
    #expect(c.lower != a.lower || c.upper != a.upper)
  }

  @Test func volumeBootstrapOfIdenticalRunsIsZero() throws {
    let volumes = (0..<6).map { VolumeScore(patient: $0, phase: $0 % 2 == 0 ? "ED" : "ES", dice: [0.5 + 0.05 * Double($0), 0.6, 0.7]) }
    let ci = try #require(pairedVolumeBootstrap(volumes, volumes.reversed(), seed: 3))
    #expect(ci.lower == 0 && ci.upper == 0)
    // A constant +0.1 on every volume (matched by patient and phase, not by position).
    let better = volumes.reversed().map { VolumeScore(patient: $0.patient, phase: $0.phase, dice: $0.dice.map { $0 + 0.1 }) }
    let shifted = try #require(pairedVolumeBootstrap(better, volumes, seed: 3))
    #expect(abs(shifted.lower - 0.1) < 1e-12 && abs(shifted.upper - 0.1) < 1e-12)
    // No volume in common: no interval.
    #expect(pairedVolumeBootstrap(volumes, [VolumeScore(patient: 99, phase: "ED", dice: [1, 1, 1])], seed: 3) == nil)
  }

  @Test func isotonicRegressionPoolsViolatorsWithWeights() {
    #expect(isotonicRegression([1, 3, 2, 4], weights: [1, 1, 1, 1]) == [1, 2.5, 2.5, 4])
    // Weight 3 on the 3 pulls the pool to (3·3 + 2) / 4.
    #expect(isotonicRegression([1, 3, 2, 4], weights: [1, 3, 1, 1]) == [1, 2.75, 2.75, 4])
    #expect(isotonicRegression([3, 2, 1], weights: [1, 1, 1]) == [2, 2, 2])
    #expect(isotonicRegression([0.1, 0.2, 0.3], weights: [5, 3, 1]) == [0.1, 0.2, 0.3])
  }

  @Test func matchingBudgetInterpolatesInLogBudget() {
    let fit = MonotoneFit(budgets: [1, 10], means: [0.5, 0.7], weights: [1, 1])
    let match = matchingBudget(fit: fit, target: 0.6)
    #expect(abs(match.budget! - 10.0.squareRoot()) < 1e-9)
    #expect(matchingBudget(fit: fit, target: 0.4) == BudgetMatch(budget: 1, aboveEveryBudget: false))
    #expect(matchingBudget(fit: fit, target: 0.8) == BudgetMatch(budget: nil, aboveEveryBudget: true))
    // First crossing on a pooled (flat) stretch: 0.6 at 2 and 5 after pooling, reached at 2.
    let flat = MonotoneFit(budgets: [1, 2, 5, 10], means: [0.4, 0.65, 0.55, 0.8], weights: [1, 1, 1, 1])
    #expect(zip(flat.values, [0.4, 0.6, 0.6, 0.8]).allSatisfy { abs($0 - $1) < 1e-12 })
    #expect(flat.values[1] == flat.values[2])
    #expect(abs(matchingBudget(fit: flat, target: flat.values[1]).budget! - 2) < 1e-9)
  }

  static let cleanBaseline: [Int: [Double]] = [
    1: [0.40, 0.44, 0.42, 0.41, 0.43], 2: [0.50, 0.53, 0.51, 0.52, 0.54], 5: [0.62, 0.64, 0.63],
    10: [0.70], 20: [0.75], 100: [0.80],
  ]

  @Test func reductionFactorBootstrapIsSeededAndContainsK() throws {
    let treated = [0.61, 0.63, 0.62, 0.64, 0.60]
    let a = try #require(reductionFactor(baseline: Self.cleanBaseline, treated: treated, n: 1, seed: 11))
    let b = try #require(reductionFactor(baseline: Self.cleanBaseline, treated: treated, n: 1, seed: 11))
    #expect(a.lower == b.lower && a.upper == b.upper && a.k == b.k)
    #expect(a.k > 2 && a.k < 5, "k = \(a.k)")
    #expect(a.lower <= a.k && a.k <= a.upper)
    #expect(a.lower > 1 && a.upper.isFinite)
    #expect(a.censoredFraction == 0)
  }

  @Test func aTargetAboveTheCurveIsCensored() throws {
    let f = try #require(reductionFactor(baseline: Self.cleanBaseline, treated: [0.85, 0.86], n: 1, seed: 1))
    #expect(f.k == .infinity && f.upper == .infinity && f.censoringLimit == 100)
    #expect(reductionFactor(baseline: [1: [0.5]], treated: [0.6], n: 1, seed: 1) == nil)
  }
}
