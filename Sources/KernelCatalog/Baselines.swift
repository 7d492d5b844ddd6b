import Reference
import TestSupport

// The image-level baselines' kernels (SimCLR: global average pooling and the pooled objective;
// Mean Teacher: the consistency loss and the teacher's average), listed in `kernelCatalog`
// (Catalog.swift).

// MARK: - Entries

/// Planes from 1x1 to past one 256-value reduction block (33 x 130 = 4290: 17 blocks), widths
/// around the 8 lanes, batch 1 and 3, channel groups past 64 planes (3 x 33 = 99).
package struct GlobalAveragePoolKernel: CatalogKernel {
  package let name = "globalAveragePool"
  package let tolerance = Tolerance.float32Kernel
  package let cases = [
    KernelShape(1, 1, 9, 13), KernelShape(3, 7, 5, 8), KernelShape(2, 17, 1, 1), KernelShape(1, 9, 4, 17),
    KernelShape(3, 33, 3, 3), KernelShape(2, 3, 33, 130), KernelShape(8, 128, 8, 8),
  ]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let x = tensor(s.shape, inputs.normal(s.shape.count, scale: 2, offset: 0.5), for: b)
    let pooledShape = Shape(s.n, s.c, 1, 1)
    let dy = tensor(pooledShape, inputs.normal(pooledShape.count), for: b)
    return PreparedKernel(
      forward: { [KernelOutput("forward", b.globalAveragePoolForward(input: x))] },
      backward: {
        [KernelOutput("gradInput", b.globalAveragePoolBackward(gradOutput: dy, height: s.h, width: s.w))]
      })
  }
}

/// (N, K, H, W) logits. Variant 1: the teacher's logits equal the student's (loss and gradient 0);
/// variant 2: the teacher's differ by at most 1e-3 (the differences cancel). 33 x 33 = 1089 pixels
/// is two 1024-pixel blocks, the second with a partial 8-lane group; K = 1 has a softmax of 1.
package struct ConsistencyLossKernel: CatalogKernel {
  package let name = "consistencyLoss"
  /// On the gradient scaled by N·K·H·W (below), whose entries are O(1) like the loss's.
  package let tolerance = Tolerance.float32Kernel
  package let cases = [
    KernelShape(1, 4, 9, 13), KernelShape(3, 2, 5, 3), KernelShape(2, 4, 16, 16), KernelShape(1, 7, 1, 1),
    KernelShape(2, 4, 33, 33), KernelShape(1, 1, 3, 3), KernelShape(2, 4, 64, 64),
    KernelShape(3, 4, 9, 13, variant: 1), KernelShape(2, 4, 17, 9, variant: 2),
  ]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let studentValues = inputs.normal(s.shape.count, scale: 3)
    let teacherValues: [Double]
    switch s.variant {
    case 1: teacherValues = studentValues
    case 2: teacherValues = zip(studentValues, inputs.uniform(s.shape.count, -1e-3, 1e-3)).map { Double(Float($0 + $1)) }
    default: teacherValues = inputs.normal(s.shape.count, scale: 3)
    }
    let student = tensor(s.shape, studentValues, for: b), teacher = tensor(s.shape, teacherValues, for: b)
    // The gradient's entries are O(1 / NKHW): scaled by the element count (exactly, in Double, on
    // both backends) so the absolute part of the tolerance does not swallow them.
    let elements = Double(s.shape.count)
    return PreparedKernel(forward: {
      let result = b.consistencyLoss(studentLogits: student, teacherLogits: teacher)
      return [
        KernelOutput("loss", [result.loss]),
        KernelOutput("gradStudentLogits · NKHW", result.gradStudentLogits, scale: elements),
      ]
    })
  }
}

/// `c` values, the range [other, c - other), decay 0.99 (variant 0), the warm-up decay 1/2 of step 1
/// (variant 2), or a student equal to the teacher (variant 1, unchanged bit for bit). 150_001 values
/// are three 65_536-value chunks.
package struct EMAKernel: CatalogKernel {
  package let name = "emaUpdate"
  package let tolerance = Tolerance.float32Kernel
  package let cases = [
    KernelShape(1, 1, 1, 1), KernelShape(1, 7, 1, 1), KernelShape(1, 17, 1, 1, other: 3),
    KernelShape(1, 150_001, 1, 1, other: 5), KernelShape(1, 33, 1, 1, variant: 1),
    KernelShape(1, 40, 1, 1, other: 1, variant: 2),
  ]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let initial = scalars(inputs.normal(s.c, scale: 0.1), for: b)
    let student = s.variant == 1 ? initial : scalars(inputs.normal(s.c, scale: 0.1), for: b)
    let decay = s.variant == 2 ? meanTeacherDecay(step: 1) : MeanTeacherConstants.emaDecay
    return PreparedKernel(forward: {
      var teacher = initial
      b.emaUpdate(teacher: &teacher, student: student, range: s.other..<(s.c - s.other), decay: decay)
      return [KernelOutput("teacher", teacher)]
    })
  }
}

/// The SimCLR objective on encoder outputs (B, C, H, W) of two views: pooling, the projection
/// (C -> C -> min(C, 128), or -> `other` outputs when set), L2 normalisation and NT-Xent at tau 0.1,
/// and every gradient. (8, 128, 8, 8) is the cpu preset's bottleneck at the pretraining batch;
/// B = 1 has one negative-free pair (loss and gradients 0).
package struct SimCLRObjectiveKernel: CatalogKernel {
  package let name = "simCLR objective"
  /// The gradients with respect to the encoder outputs are compared multiplied by H·W (the pooled
  /// rows' gradient, spread), so their entries are O(1e-2) rather than O(1e-2 / HW).
  package let tolerance = Tolerance.float32Kernel
  package let cases = [
    KernelShape(1, 3, 1, 1), KernelShape(3, 7, 3, 5), KernelShape(4, 17, 2, 3, other: 9), KernelShape(2, 33, 4, 4),
    KernelShape(8, 128, 8, 8),
  ]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
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
    let pixels = Double(s.h * s.w)
    return PreparedKernel(forward: {
      let r = b.simCLRLoss(features: features, otherFeatures: other, head: head)
      return [
        KernelOutput("loss", [r.loss]),
        KernelOutput("gradFeatures · HW", r.gradFeatures, scale: pixels),
        KernelOutput("gradOtherFeatures · HW", r.gradOtherFeatures, scale: pixels),
        KernelOutput("gradWeight1", r.gradHead.weight1), KernelOutput("gradBias1", r.gradHead.bias1),
        KernelOutput("gradWeight2", r.gradHead.weight2), KernelOutput("gradBias2", r.gradHead.bias2),
      ]
    })
  }
}
