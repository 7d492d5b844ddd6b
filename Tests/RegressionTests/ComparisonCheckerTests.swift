import KernelCatalog
import Optimized
import Reference
import Testing
import TestSupport

/// The checks the harness relies on must be able to fail.
@Suite struct ComparisonCheckerTests {
  /// A conv3x3 case's outputs on both backends.
  func conv3x3Outputs() -> (optimized: [LabeledOutput], reference: [LabeledOutput]) {
    let kernel = Conv3x3Kernel()
    return (runKernel(kernel, on: OptimizedBackend(workers: 2), case: 1), runKernel(kernel, on: ReferenceBackend(), case: 1))
  }

  @Test("the reference comparison rejects an optimized output perturbed by 10x the tolerance, and names it")
  func perturbedOutputFails() throws {
    let (optimized, reference) = conv3x3Outputs()
    #expect(compareOutputs("conv3x3", actual: optimized, expected: reference, tolerance: .float32Kernel) == nil)
    var perturbed = optimized
    let target = 1  // gradInput
    let index = perturbed[target].values.count / 2
    var values = perturbed[target].values
    values[index] += 10 * Tolerance.float32Kernel.limit(for: reference[target].values[index])
    perturbed[target] = LabeledOutput(label: perturbed[target].label, values: values)
    let message = try #require(
      compareOutputs("conv3x3", actual: perturbed, expected: reference, tolerance: .float32Kernel))
    #expect(message.contains("gradInput") && message.contains("index \(index)"), "\(message)")
  }

  @Test("the reference comparison rejects a missing element and a renamed output")
  func shapeAndLabelsFail() {
    let (optimized, reference) = conv3x3Outputs()
    var short = optimized
    short[0] = LabeledOutput(label: short[0].label, values: Array(short[0].values.dropLast()))
    #expect(compareOutputs("conv3x3", actual: short, expected: reference, tolerance: .float32Kernel) != nil)
    var renamed = optimized
    renamed[2] = LabeledOutput(label: "gradBias", values: renamed[2].values)
    #expect(compareOutputs("conv3x3", actual: renamed, expected: reference, tolerance: .float32Kernel) != nil)
  }

  @Test("the determinism comparison rejects a one-ulp change and a sign change of zero")
  func bitComparisonFails() {
    let (optimized, _) = conv3x3Outputs()
    var moved = optimized
    var values = moved[0].values
    values[3] = Double(Float(values[3]).nextUp)
    moved[0] = LabeledOutput(label: moved[0].label, values: values)
    #expect(compareBits("conv3x3", actual: moved, expected: optimized) != nil)
    let zero = [LabeledOutput(label: "z", values: [0])]
    let negativeZero = [LabeledOutput(label: "z", values: [-0.0])]
    #expect(compareBits("zero", actual: negativeZero, expected: zero) != nil)
    #expect(compareBits("conv3x3", actual: optimized, expected: optimized) == nil)
  }
}
