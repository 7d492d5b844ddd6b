import KernelCatalog
import Profiling
import Reference
import Testing

/// `verify profile` runs the catalogue's kernels at a preset's layer shapes: the same entries
/// RegressionTests sweeps, so a kernel cannot be profiled without being tested.
@Suite struct ProfileProbeTests {
  #if DEBUG
    /// In a debug build, rows above this many operations are left to the release build (the tiny
    /// preset's InfoNCE, 7e7 operations on 2 x 1000 rows, takes many seconds on the reference).
    static let operationBudget = 1e7
  #else
    static let operationBudget = Double.infinity
  #endif

  @Test("every kernel verify profile runs, at every preset, is an entry of the catalogue",
    arguments: ModelConfig.presets.map(\.name))
  func probesAreCatalogueEntries(preset: String) throws {
    let config = try #require(ModelConfig.preset(named: preset))
    let names = Set(kernelCatalog.map(\.name))
    let probes = ProfileProbe.all(config: config)
    #expect(!probes.isEmpty)
    for probe in probes {
      #expect(names.contains(probe.kernel.name), "\(probe.name) runs \(probe.kernel.name), not in the catalogue")
      #expect(probe.flops >= 0, "\(probe.name) \(probe.shape) counts \(probe.flops) operations")
    }
    let counted = probes.filter { $0.name.hasPrefix("conv") }
    #expect(counted.allSatisfy { $0.flops > 0 }, "a convolution row counts no operations")
  }

  @Test("every row of verify profile --preset tiny matches the reference within its kernel's tolerance")
  func tinyPresetRowsMatch() {
    for probe in ProfileProbe.all(config: .tiny) where probe.flops <= Self.operationBudget {
      if let problem = probe.check(workers: 2) {
        Issue.record(Comment(rawValue: "\(probe.name) \(probe.shape): \(problem)"))
      }
    }
  }
}
