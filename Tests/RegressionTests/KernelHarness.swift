import KernelCatalog
import Optimized
import Reference
import Testing
import TestSupport

// One harness for every kernel: each entry of the kernel catalogue (`kernelCatalog`, in the
// KernelCatalog module, which `verify profile` runs at a preset's shapes too) runs its forward and
// backward on any `Backend`, from seeded inputs that are exactly representable in Float (so both
// backends see the same numbers), over its sweep of shapes that hits the optimized code's remainder
// paths. The tests below run every entry against the reference and across worker counts.

// MARK: - The registry as test arguments

/// A catalogue entry as a test argument.
struct RegisteredKernel: Sendable, CustomTestStringConvertible {
  let kernel: any CatalogKernel
  var testDescription: String { kernel.name }
}

let kernelRegistry = kernelCatalog.map { RegisteredKernel(kernel: $0) }

// MARK: - Checks

/// Seed of one case, so every case draws different numbers and reruns draw the same.
func caseSeed(_ kernel: any CatalogKernel, _ index: Int) -> UInt64 {
  FNV1a.hash(kernel.name.utf8) &+ UInt64(index)
}

func runKernel<B: Backend>(_ kernel: any CatalogKernel, on backend: B, case index: Int) -> [LabeledOutput] {
  var inputs = SeededInputs(seed: caseSeed(kernel, index))
  return kernel.run(backend, kernel.cases[index], &inputs)
}

/// Records an issue for every case where the optimized kernel (2 workers) differs from the
/// reference by more than the kernel's tolerance.
func expectMatchesReference(_ kernel: any CatalogKernel) {
  for index in kernel.cases.indices {
    let expected = runKernel(kernel, on: ReferenceBackend(), case: index)
    let actual = runKernel(kernel, on: OptimizedBackend(workers: 2), case: index)
    let context = "\(kernel.name) \(kernel.cases[index])"
    if let problem = compareOutputs(context, actual: actual, expected: expected, tolerance: kernel.tolerance) {
      Issue.record(Comment(rawValue: problem))
    }
  }
}

/// Records an issue for every case where the optimized kernel's bits with `workers` workers differ
/// from its bits with one.
func expectDeterministic(_ kernel: any CatalogKernel, workers counts: [Int]) {
  for index in kernel.cases.indices {
    let single = runKernel(kernel, on: OptimizedBackend(workers: 1), case: index)
    for workers in counts {
      let actual = runKernel(kernel, on: OptimizedBackend(workers: workers), case: index)
      let context = "\(kernel.name) \(kernel.cases[index]) workers \(workers) vs 1"
      if let problem = compareBits(context, actual: actual, expected: single) {
        Issue.record(Comment(rawValue: problem))
      }
    }
  }
}

// MARK: - Tests

@Suite struct KernelRegressionTests {
  @Test("every optimized kernel matches its reference over the shape sweep", arguments: kernelRegistry)
  func matchesReference(_ entry: RegisteredKernel) {
    #expect(!entry.kernel.cases.isEmpty, "\(entry.kernel.name) has no cases")
    expectMatchesReference(entry.kernel)
  }

  @Test("every optimized kernel gives bit-identical results for 1, 2, 3 and 8 workers", arguments: kernelRegistry)
  func deterministicAcrossWorkers(_ entry: RegisteredKernel) {
    expectDeterministic(entry.kernel, workers: [2, 3, 8])
  }

  @Test("the registry covers every Backend kernel and the channel counts 1, 3, 7, 8, 9, 15, 16, 17, 33")
  func registryCoverage() {
    let names = Set(kernelRegistry.map(\.kernel.name))
    for required in [
      "conv3x3", "conv1x1", "convTranspose2x2", "batchNorm (training)", "batchNorm (evaluation)", "relu",
      "maxPool2x2", "concat/split", "warp", "l2Normalize", "infoNCE", "barlowTwins", "softDice", "adam",
      "intensityAugmentation", "globalAveragePool", "consistencyLoss", "emaUpdate", "simCLR objective",
    ] {
      #expect(names.contains(required), "no registry entry for \(required)")
    }
    for name in ["conv3x3", "conv1x1", "convTranspose2x2"] {
      guard let kernel = kernelRegistry.first(where: { $0.kernel.name == name })?.kernel else { continue }
      let channels = Set(kernel.cases.flatMap { [$0.c, $0.other] })
      let batches = Set(kernel.cases.map(\.n))
      for required in [1, 3, 7, 8, 9, 15, 16, 17, 33] {
        #expect(channels.contains(required), "\(name) never uses \(required) channels")
      }
      #expect(batches.contains(1) && batches.contains(3), "\(name) needs batch 1 and batch 3 cases")
      #expect(kernel.cases.contains { $0.h == 9 && $0.w == 13 }, "\(name) needs a 9x13 case")
    }
  }
}
