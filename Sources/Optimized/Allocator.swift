#if canImport(Glibc)
  import Glibc

  @_silgen_name("mallopt")
  private func mallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

// MARK: - Keeping freed tensors in the heap

/// Every kernel returns fresh arrays. glibc serves blocks above its mmap threshold (dynamic, at
/// most 32 MB) with `mmap` and unmaps them on free, so a (8, 256, 64, 64) activation costs 8192 page
/// faults on every call: measured here, that was 60% of a projection-head 1x1 convolution. Raising
/// the mmap and trim thresholds keeps freed blocks in the heap, where the next call reuses them.
/// This changes process-wide malloc settings, so a library never does it on its own: an
/// executable calls `retainFreedMemory()` once at start (`verify` does). Idempotent; returns
/// whether the settings were applied (false off glibc).
@discardableResult
public func retainFreedMemory() -> Bool { freedMemoryRetained }

private let freedMemoryRetained: Bool = {
  #if canImport(Glibc)
    let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD
    let trimThreshold: Int32 = -1  // M_TRIM_THRESHOLD
    let oneGigabyte: Int32 = 1 << 30
    return mallopt(mmapThreshold, oneGigabyte) == 1 && mallopt(trimThreshold, oneGigabyte) == 1
  #else
    return false
  #endif
}()
