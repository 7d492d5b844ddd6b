import KernelCatalog
import Optimized
import Reference
import Testing
import TestSupport

// MARK: - The baselines' kernels beyond the catalogue's checks (KernelHarness.swift runs every
// catalogue entry against the reference and across worker counts)

@Suite struct BaselineKernelTests {
  @Test("the optimized consistency loss and gradient are exactly 0 for identical logits")
  func consistencyOfIdenticalLogits() {
    var inputs = SeededInputs(seed: 0xC0515)
    let shape = Shape(3, 4, 9, 13)
    let logits = Tensor(shape: shape, data: inputs.normal(shape.count, scale: 3).map { Float($0) })
    let (loss, gradient) = OptimizedBackend(workers: 2).consistencyLoss(studentLogits: logits, teacherLogits: logits)
    #expect(loss == 0)
    #expect(gradient.data.allSatisfy { $0 == 0 }, "a nonzero gradient for identical logits")
  }

  @Test("the optimized EMA of a teacher equal to the student leaves it unchanged bit for bit", arguments: [0.5, 0.99])
  func emaOfEqualWeights(decay: Double) {
    var inputs = SeededInputs(seed: 0xE3A)
    let weights = inputs.normal(70_001, scale: 3).map { Float($0) }
    var teacher = weights
    OptimizedBackend(workers: 2).emaUpdate(teacher: &teacher, student: weights, range: 0..<weights.count, decay: decay)
    #expect(teacher == weights)
  }
}
