// The optimized twin of Reference: see OptimizedBackend.swift.
import Reference
