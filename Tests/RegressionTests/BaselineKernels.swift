import Optimized
import Reference
import Testing
import TestSupport

// The image-level baselines' kernels (SimCLR: global average pooling and the pooled objective;
// Mean Teacher: the consistency loss and the teacher's average) as regression-harness entries,
// listed in `kernelRegistry` (KernelRegistry.swift).

// MARK: - Entries

/// Planes from 1x1 to past one 256-value reduction block (33 x 130 = 4290: 17 blocks), widths
/// around the 8 lanes, batch 1 and 3, channel groups past 64 planes (3 x 33 = 99).
struct GlobalAveragePoolKernel: RegressionKernel {
  let name = "globalAveragePool"
  let tolerance = Tolerance.float32Kernel
  let cases = [
    KernelShape(1, 1, 9, 13), KernelShape(3, 7, 5, 8), KernelShape(2, 17, 1, 1), KernelShape(1, 9, 4, 17),
    KernelShape(3, 33, 3, 3), KernelShape(2, 3, 33, 130), KernelShape(8, 128, 8, 8),
  ]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    let x = tensor(s.shape, inputs.normal(s.shape.count, scale: 2, offset: 0.5), for: b)
    let y = b.globalAveragePoolForward(input: x)
    let dy = tensor(y.shape, inputs.normal(y.shape.count), for: b)
    return [output("forward", y), output("gradInput", b.globalAveragePoolBackward(gradOutput: dy, height: s.h, width: s.w))]
  }
}

/// (N, K, H, W) logits. Variant 1: the teacher's logits equal the student's (loss and gradient 0);
/// variant 2: the teacher's differ by at most 1e-3 (the differences cancel). 33 x 33 = 1089 pixels
/// is two 1024-pixel blocks, the second with a partial 8-lane group; K = 1 has a softmax of 1.
struct ConsistencyLossKernel: RegressionKernel {
  let name = "consistencyLoss"
  /// On the gradient scaled by N·K·H·W (below), whose entries are O(1) like the loss's.
  let tolerance = Tolerance.float32Kernel
  let cases = [
    KernelShape(1, 4, 9, 13), KernelShape(3, 2, 5, 3), KernelShape(2, 4, 16, 16), KernelShape(1, 7, 1, 1),
    KernelShape(2, 4, 33, 33), KernelShape(1, 1, 3, 3), KernelShape(2, 4, 64, 64),
    KernelShape(3, 4, 9, 13, variant: 1), KernelShape(2, 4, 17, 9, variant: 2),
  ]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    let studentValues = inputs.normal(s.shape.count, scale: 3)
    let teacherValues: [Double]
    switch s.variant {
    case 1: teacherValues = studentValues
    case 2: teacherValues = zip(studentValues, inputs.uniform(s.shape.count, -1e-3, 1e-3)).map { Double(Float($0 + $1)) }
    default: teacherValues = inputs.normal(s.shape.count, scale: 3)
    }
    let result = b.consistencyLoss(
      studentLogits: tensor(s.shape, studentValues, for: b), teacherLogits: tensor(s.shape, teacherValues, for: b))
    // The gradient's entries are O(1 / NKHW): scaled by the element count (exactly, in Double, on
    // both backends) so the absolute part of the tolerance does not swallow them.
    let elements = Double(s.shape.count)
    return [
      LabeledOutput(label: "loss", values: [result.loss]),
      LabeledOutput(label: "gradStudentLogits · NKHW", values: doubles(result.gradStudentLogits.data).map { $0 * elements }),
    ]
  }
}

/// `c` values, the range [other, c - other), decay 0.99 (variant 0), the warm-up decay 1/2 of step 1
/// (variant 2), or a student equal to the teacher (variant 1, unchanged bit for bit). 150_001 values
/// are three 65_536-value chunks.
struct EMAKernel: RegressionKernel {
  let name = "emaUpdate"
  let tolerance = Tolerance.float32Kernel
  let cases = [
    KernelShape(1, 1, 1, 1), KernelShape(1, 7, 1, 1), KernelShape(1, 17, 1, 1, other: 3),
    KernelShape(1, 150_001, 1, 1, other: 5), KernelShape(1, 33, 1, 1, variant: 1),
    KernelShape(1, 40, 1, 1, other: 1, variant: 2),
  ]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    var teacher = scalars(inputs.normal(s.c, scale: 0.1), for: b)
    let student = s.variant == 1 ? teacher : scalars(inputs.normal(s.c, scale: 0.1), for: b)
    let decay = s.variant == 2 ? meanTeacherDecay(step: 1) : MeanTeacherConstants.emaDecay
    b.emaUpdate(teacher: &teacher, student: student, range: s.other..<(s.c - s.other), decay: decay)
    return [output("teacher", teacher)]
  }
}

/// The SimCLR objective on encoder outputs (B, C, H, W) of two views: pooling, the projection
/// (C -> C -> min(C, 128), or -> `other` outputs when set), L2 normalisation and NT-Xent at tau 0.1,
/// and every gradient. (8, 128, 8, 8) is the cpu preset's bottleneck at the pretraining batch;
/// B = 1 has one negative-free pair (loss and gradients 0).
struct SimCLRObjectiveKernel: RegressionKernel {
  let name = "simCLR objective"
  /// The gradients with respect to the encoder outputs are compared multiplied by H·W (the pooled
  /// rows' gradient, spread), so their entries are O(1e-2) rather than O(1e-2 / HW).
  let tolerance = Tolerance.float32Kernel
  let cases = [
    KernelShape(1, 3, 1, 1), KernelShape(3, 7, 3, 5), KernelShape(4, 17, 2, 3, other: 9), KernelShape(2, 33, 4, 4),
    KernelShape(8, 128, 8, 8),
  ]

  func run<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> [LabeledOutput] {
    let features = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    let other = tensor(s.shape, inputs.normal(s.shape.count), for: b)
    let widths = SimCLRConstants.projectionWidths(bottleneck: s.c)
    let output = s.other > 0 ? s.other : widths.output
    let head = SimCLRProjectionHead(
      inputWidth: s.c, hidden: widths.hidden, output: output,
      weight1: scalars(inputs.normal(widths.hidden * s.c, scale: 1 / Double(s.c).squareRoot()), for: b),
      bias1: scalars(inputs.normal(widths.hidden, scale: 0.1), for: b),
      weight2: scalars(inputs.normal(output * widths.hidden, scale: 1 / Double(widths.hidden).squareRoot()), for: b),
      bias2: scalars(inputs.normal(output, scale: 0.1), for: b))
    let r = b.simCLRLoss(features: features, otherFeatures: other, head: head)
    let pixels = Double(s.h * s.w)
    return [
      LabeledOutput(label: "loss", values: [r.loss]),
      LabeledOutput(label: "gradFeatures · HW", values: doubles(r.gradFeatures.data).map { $0 * pixels }),
      LabeledOutput(label: "gradOtherFeatures · HW", values: doubles(r.gradOtherFeatures.data).map { $0 * pixels }),
      Self.labeled("gradWeight1", r.gradHead.weight1), Self.labeled("gradBias1", r.gradHead.bias1),
      Self.labeled("gradWeight2", r.gradHead.weight2), Self.labeled("gradBias2", r.gradHead.bias2),
    ]
  }

  static func labeled<S: BinaryFloatingPoint>(_ label: String, _ values: [S]) -> LabeledOutput {
    LabeledOutput(label: label, values: doubles(values))
  }
}

// MARK: - Tests beyond the registry's (KernelHarness.swift runs every entry above against the
// reference and across worker counts)

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
