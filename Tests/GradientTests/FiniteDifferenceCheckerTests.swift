import Reference
import Testing
import TestSupport

/// The gradient checker itself must fail on a wrong backward, and say where.
@Suite struct FiniteDifferenceCheckerTests {
  let shape = Shape(2, 3, 2, 3)
  let outputChannels = 2

  /// conv1x1's input, bias, upstream gradient, its correct gradient w.r.t. weight, and the loss.
  func weightProblem() -> (weight: [Double], analytic: [Double], loss: ([Double]) -> Double) {
    let input = LayerCheck.tensor(shape, seed: 61)
    let weight = LayerCheck.uniform(count: outputChannels * shape.c, seed: 62)
    let bias = LayerCheck.uniform(count: outputChannels, seed: 63)
    let dy = LayerCheck.upstream(Shape(shape.n, outputChannels, shape.h, shape.w), seed: 64)
    let analytic = conv1x1Backward(input: input, weight: weight, gradOutput: dy).gradWeight
    let loss = { (w: [Double]) in
      FiniteDifference.dot(conv1x1Forward(input: input, weight: w, bias: bias).data, dy.data)
    }
    return (weight, analytic, loss)
  }

  @Test("the checker accepts the correct conv1x1 weight gradient")
  func acceptsCorrect() {
    let problem = weightProblem()
    let mismatch = FiniteDifference.check(
      "conv1x1 weight", point: problem.weight, analytic: problem.analytic, loss: problem.loss)
    #expect(mismatch == nil, "\(mismatch?.description ?? "")")
  }

  @Test("the checker rejects a gradient scaled by 1.01")
  func rejectsScaled() throws {
    let problem = weightProblem()
    let scaled = problem.analytic.map { $0 * 1.01 }
    let mismatch = try #require(
      FiniteDifference.check("scaled", point: problem.weight, analytic: scaled, loss: problem.loss))
    #expect(mismatch.mismatches == problem.weight.count, "\(mismatch)")
    #expect(mismatch.description.contains("scaled"))
  }

  @Test("the checker rejects a gradient with one entry dropped, and names that entry")
  func rejectsDroppedEntry() throws {
    let problem = weightProblem()
    var dropped = problem.analytic
    dropped[4] = 0
    let mismatch = try #require(
      FiniteDifference.check("dropped", point: problem.weight, analytic: dropped, loss: problem.loss))
    #expect(mismatch.index == 4, "\(mismatch)")
    #expect(mismatch.mismatches == 1, "\(mismatch)")
    #expect(mismatch.actual == 0, "\(mismatch)")
  }

  @Test("the checker rejects a gradient of the wrong count before comparing values")
  func rejectsWrongCount() throws {
    let problem = weightProblem()
    let short = Array(problem.analytic.dropLast())
    let mismatch = try #require(
      FiniteDifference.check("short", point: problem.weight, analytic: short, loss: problem.loss))
    #expect(mismatch.index == -1, "\(mismatch)")
  }
}
