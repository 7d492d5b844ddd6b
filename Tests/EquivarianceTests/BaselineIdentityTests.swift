import Foundation
import Reference
import TestExpectations
import Testing
import TestSupport

/// The identities the image-level baselines rely on: SimCLR's NT-Xent is pixel InfoNCE on pooled
/// rows; Mean Teacher's consistency loss vanishes for identical networks, its average fixes equal
/// weights, and its ramp-up has the original endpoints.
@Suite struct SimCLRIdentityTests {
  /// Chen et al. 2020's NT-Xent written out as in their Algorithm 1: the views interleaved (view
  /// 2k and 2k + 1 of sample k), sim(u, v) = <u, v> / (|u| |v|) on unnormalised vectors, and the
  /// mean over all 2B anchors of -log(exp(sim(i, partner) / tau) / sum over k != i of exp(sim(i, k) / tau)).
  static func literalNTXent(_ first: [[Double]], _ second: [[Double]], temperature: Double) -> Double {
    var views: [[Double]] = []
    for k in first.indices { views += [first[k], second[k]] }
    func similarity(_ u: [Double], _ v: [Double]) -> Double {
      let dot = zip(u, v).reduce(0) { $0 + $1.0 * $1.1 }
      let norms = (u.reduce(0) { $0 + $1 * $1 } * v.reduce(0) { $0 + $1 * $1 }).squareRoot()
      return dot / norms
    }
    var total = 0.0
    for i in views.indices {
      let partner = i % 2 == 0 ? i + 1 : i - 1
      var denominator = 0.0
      for k in views.indices where k != i { denominator += exp(similarity(views[i], views[k]) / temperature) }
      total -= log(exp(similarity(views[i], views[partner]) / temperature) / denominator)
    }
    return total / Double(views.count)
  }

  /// Rows of a (M, d, 1, 1) tensor as arrays.
  static func rows(_ t: Tensor<Double>) -> [[Double]] {
    (0..<t.shape.n).map { m in (0..<t.shape.c).map { t[m, $0, 0, 0] } }
  }

  /// The plane means of (N, C, H, W), written out per sample: one array of C means per sample.
  static func handPooled(_ t: Tensor<Double>) -> [[Double]] {
    let s = t.shape
    return (0..<s.n).map { n in
      (0..<s.c).map { c in
        var sum = 0.0
        for y in 0..<s.h { for x in 0..<s.w { sum += t[n, c, y, x] } }
        return sum / Double(s.h * s.w)
      }
    }
  }

  @Test("NT-Xent of a batch's pooled features equals pixel InfoNCE on the pooled, normalised rows")
  func ntXentIsPooledInfoNCE() {
    let shape = Shape(5, 4, 3, 2)
    let features = normalTensor(shape, seed: 301), other = normalTensor(shape, seed: 302)
    let tau = SimCLRConstants.temperature
    let literal = Self.literalNTXent(Self.handPooled(features), Self.handPooled(other), temperature: tau)
    let z = l2NormalizeForward(input: globalAveragePoolForward(input: features))
    let zPrime = l2NormalizeForward(input: globalAveragePoolForward(input: other))
    let pixel = infoNCE(z: z, zPrime: zPrime, temperature: tau)
    let backend = ReferenceBackend()
    let nt = backend.ntXent(z: z, zPrime: zPrime)
    expectClose("literal NT-Xent vs pixel InfoNCE on pooled rows", pixel.loss, literal, tolerance: .doubleRounding)
    expectClose("ntXent vs pixel InfoNCE: loss", nt.loss, pixel.loss, tolerance: .exact)
    expectClose("ntXent vs pixel InfoNCE: gradient of z", nt.gradZ.data, pixel.gradZ.data, tolerance: .exact)
    expectClose("ntXent vs pixel InfoNCE: gradient of z'", nt.gradZPrime.data, pixel.gradZPrime.data, tolerance: .exact)
  }

  @Test("the SimCLR objective equals the literal NT-Xent of the projected pooled features, at any temperature",
    arguments: [SimCLRConstants.temperature, 0.5])
  func objectiveIsLiteralNTXent(temperature: Double) {
    let shape = Shape(4, 6, 2, 3)
    let features = normalTensor(shape, seed: 311), other = normalTensor(shape, seed: 312)
    let head = SimCLRProjectionHead<Double>(inputWidth: 6, seed: 313)
    let backend = ReferenceBackend()
    let projected = { (t: Tensor<Double>) in
      Self.rows(backend.simCLRProjectionForward(rows: globalAveragePoolForward(input: t), head: head).output)
    }
    let literal = Self.literalNTXent(projected(features), projected(other), temperature: temperature)
    let result = backend.simCLRLoss(features: features, otherFeatures: other, head: head, temperature: temperature)
    expectClose("SimCLR objective vs literal NT-Xent", result.loss, literal, tolerance: .doubleRounding)
  }

  @Test("the projection MLP is W2 · ReLU(W1 · h + b1) + b2 on each row")
  func projectionByHand() {
    let head = SimCLRProjectionHead<Double>(
      inputWidth: 2, hidden: 2, output: 1, weight1: [1, -1, 2, 0.5], bias1: [0, -10], weight2: [3, 7], bias2: [0.25])
    // Row (2, 1): W1 h + b1 = (1, 4.5 - 10) -> ReLU (1, 0) -> 3 + 0.25. Row (-1, 1): (-2, -11.5) -> 0.25.
    let rows = Tensor<Double>(shape: Shape(2, 2, 1, 1), data: [2, 1, -1, 1])
    let out = ReferenceBackend().simCLRProjectionForward(rows: rows, head: head).output
    expectClose("projection", out.data, [3.25, 0.25], tolerance: .doubleRounding)
  }

  @Test("the projection widths are bottleneck -> bottleneck -> min(bottleneck, 128): SimCLR's 2048 -> 2048 -> 128")
  func projectionWidths() {
    #expect(SimCLRConstants.projectionWidths(bottleneck: 2048) == (hidden: 2048, output: 128))
    #expect(SimCLRConstants.projectionWidths(bottleneck: ModelConfig.cpu.widths.last!) == (hidden: 128, output: 128))
    #expect(SimCLRConstants.projectionWidths(bottleneck: ModelConfig.smoke.widths.last!) == (hidden: 32, output: 32))
  }
}

@Suite struct MeanTeacherIdentityTests {
  // MARK: - Consistency loss

  @Test("the consistency loss and its gradient are exactly 0 for identical student and teacher logits", arguments: [
    Shape(2, 4, 3, 5), Shape(1, 1, 2, 2), Shape(3, 2, 1, 1),
  ])
  func consistencyOfIdenticalLogits(shape: Shape) {
    let logits = normalTensor(shape, seed: 321, scale: 4)
    let (loss, gradient) = consistencyLoss(studentLogits: logits, teacherLogits: logits)
    #expect(loss == 0)
    expectClose("gradient", gradient.data, [Double](repeating: 0, count: shape.count), tolerance: .exact)
  }

  @Test("the consistency loss of two 2-class pixels matches the hand value (mean over all N·K·H·W elements)")
  func consistencyHandValue() {
    // Pixel 0: student (0, 0) -> p = (1/2, 1/2); teacher (log 3, 0) -> q = (3/4, 1/4): squares 1/16, 1/16.
    // Pixel 1: both (5, 5) -> equal: squares 0, 0. Mean over the 4 elements: (1/8) / 4 = 1/32.
    let student = Tensor<Double>(shape: Shape(1, 2, 1, 2), data: [0, 5, 0, 5])
    let teacher = Tensor<Double>(shape: Shape(1, 2, 1, 2), data: [log(3.0), 5, 0, 5])
    let (loss, gradient) = consistencyLoss(studentLogits: student, teacherLogits: teacher)
    expectClose("loss", loss, 1.0 / 32, tolerance: .doubleRounding)
    // dL/dp = 2 (p - q) / 4 = (-1/8, 1/8) at pixel 0; through the softmax at p = (1/2, 1/2):
    // dL/dz_0 = 1/2 (-1/8 - 0) = -1/16, dL/dz_1 = 1/16. Pixel 1: 0. Channel-major (1, 2, 1, 2).
    expectClose("gradient", gradient.data, [-1.0 / 16, 0, 1.0 / 16, 0], tolerance: .doubleRounding)
  }

  @Test("the consistency loss is unchanged by adding a constant to a pixel's logits (softmax invariance)")
  func consistencyShiftInvariance() {
    let shape = Shape(2, 3, 2, 2)
    let student = normalTensor(shape, seed: 331), teacher = normalTensor(shape, seed: 332)
    var shifted = teacher
    for n in 0..<shape.n { for k in 0..<shape.c { for y in 0..<shape.h { for x in 0..<shape.w {
      shifted[n, k, y, x] += Double(n + 2 * y + x)
    } } } }
    let a = consistencyLoss(studentLogits: student, teacherLogits: teacher)
    let b = consistencyLoss(studentLogits: student, teacherLogits: shifted)
    expectClose("loss", b.loss, a.loss, tolerance: .doubleRounding)
    expectClose("gradient", b.gradStudentLogits.data, a.gradStudentLogits.data, tolerance: .doubleRounding)
  }

  // MARK: - Exponential moving average

  @Test("an EMA of a teacher equal to the student leaves it unchanged bit for bit", arguments: [0, 0.5, 0.99, 1])
  func emaOfEqualWeights(decay: Double) {
    let weights = normalTensor(Shape(1, 37, 1, 1), seed: 341, scale: 3).data
    var teacher = weights
    emaUpdate(teacher: &teacher, student: weights, range: 0..<weights.count, decay: decay)
    expectClose("teacher", teacher, weights, tolerance: .exact)
  }

  @Test("the EMA is decay · teacher + (1 - decay) · student on its range and leaves the rest untouched")
  func emaFormula() {
    let student = normalTensor(Shape(1, 20, 1, 1), seed: 351).data
    let start = normalTensor(Shape(1, 20, 1, 1), seed: 352).data
    var teacher = start
    let decay = MeanTeacherConstants.emaDecay
    emaUpdate(teacher: &teacher, student: student, range: 3..<17, decay: decay)
    let expected = (0..<20).map { (3..<17).contains($0) ? decay * start[$0] + (1 - decay) * student[$0] : start[$0] }
    expectClose("teacher in range", Array(teacher[3..<17]), Array(expected[3..<17]), tolerance: .doubleRounding)
    expectClose("teacher outside the range", Array(teacher[0..<3]) + Array(teacher[17...]),
      Array(start[0..<3]) + Array(start[17...]), tolerance: .exact)
    var kept = start
    emaUpdate(teacher: &kept, student: student, range: 0..<20, decay: 1)
    expectClose("decay 1 keeps the teacher", kept, start, tolerance: .exact)
  }

  @Test("the original code's decay warm-up min(1 - 1/(t + 1), 0.99): 1/2 at step 1, 0.99 from step 99")
  func decayWarmUp() {
    expectClose("step 1", meanTeacherDecay(step: 1), 0.5, tolerance: .doubleRounding)
    expectClose("step 3", meanTeacherDecay(step: 3), 0.75, tolerance: .doubleRounding)
    expectClose("step 99", meanTeacherDecay(step: 99), 0.99, tolerance: .doubleRounding)
    #expect(meanTeacherDecay(step: 10_000) == MeanTeacherConstants.emaDecay)
  }

  // MARK: - Ramp-up

  @Test("the consistency ramp-up: w(0) = w_max · e^-5, w(T) = w_max, w_max after T, increasing in between")
  func rampUp() {
    let maximum = 3.0, length = 40.0
    expectClose("w(0)", consistencyWeight(at: 0, rampUpLength: length, maximum: maximum), maximum * exp(-5.0),
      tolerance: .doubleRounding)
    expectClose("w(T/2)", consistencyWeight(at: 20, rampUpLength: length, maximum: maximum), maximum * exp(-1.25),
      tolerance: .doubleRounding)
    #expect(consistencyWeight(at: length, rampUpLength: length, maximum: maximum) == maximum)
    #expect(consistencyWeight(at: 1000, rampUpLength: length, maximum: maximum) == maximum)
    #expect(consistencyWeight(at: -5, rampUpLength: length, maximum: maximum)
      == consistencyWeight(at: 0, rampUpLength: length, maximum: maximum))
    #expect(consistencyWeight(at: 7, rampUpLength: 0, maximum: maximum) == maximum)
    let curve = stride(from: 0.0, through: length, by: 0.5).map { consistencyWeight(at: $0, rampUpLength: length, maximum: maximum) }
    for i in 1..<curve.count {
      #expect(curve[i] > curve[i - 1], "w not increasing at t = \(Double(i) * 0.5): \(curve[i - 1]) then \(curve[i])")
    }
  }
}

/// A seeded tensor of standard normal values times `scale`.
private func normalTensor(_ shape: Shape, seed: UInt64, scale: Double = 1) -> Tensor<Double> {
  var rng = SplitMix64(seed: seed, stream: 0xBA5E)
  return Tensor(shape: shape, data: (0..<shape.count).map { _ in scale * rng.normal() })
}
