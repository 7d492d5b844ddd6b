import Foundation

// MARK: - The CPU the kernels were compiled for

/// Why this machine cannot run the optimized kernels as compiled, or nil when it can (or cannot
/// tell). On x86-64 the package compiles them for `haswell` (AVX2 and FMA; Package.swift), so a
/// CPU without either would stop on an illegal instruction in the first kernel; an executable
/// calls this first and says so instead. Reads the flags of /proc/cpuinfo (Linux); elsewhere nil.
public func unsupportedCPU() -> String? {
  #if arch(x86_64) && os(Linux)
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
      let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return nil }
    let flags = Set(flagsLine.split(separator: " ").map(String.init))
    let missing = ["avx2", "fma"].filter { !flags.contains($0) }
    guard !missing.isEmpty else { return nil }
    return "this CPU lacks \(missing.joined(separator: " and ")), which the optimized kernels are compiled for (x86-64-v3: "
      + "AVX2 and FMA); PIX2REP_TARGET_CPU=native swift build -c release builds them for this CPU instead "
      + "(without FMA they run many times slower)"
  #else
    return nil
  #endif
}
