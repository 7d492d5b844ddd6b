import Optimized
import Reference

// MARK: - The downstream work on the optimized backend, specialised here

// `downstreamStep` and `evaluate` are generic over the backend. The reproduction calls them from
// this module with `OptimizedBackend`, so the compiler specialises them (and the network code they
// run) for it; a generic call from another module runs the unspecialised code instead, every
// element-wise loop of the network (the skip connections' gradient sums, `accumulate`) through
// witness tables and generic metadata: measured here, the fine-tuning step took about twice as
// long that way. `verify profile` times these, so it times what the reproduction runs.

/// `downstreamStep` on the optimized backend (the same function, specialised in this module).
package func optimizedDownstreamStep(
  _ net: inout Pix2RepNetwork<OptimizedBackend>, optimizer: inout AdamOptimizer<Float>, probing: Bool, train: SliceSet,
  indices: [Int], rng: inout SplitMix64
) -> Double {
  downstreamStep(&net, optimizer: &optimizer, probing: probing, train: train, indices: indices, rng: &rng)
}

/// `evaluate` on the optimized backend (the same function, specialised in this module).
package func optimizedEvaluate(_ net: inout Pix2RepNetwork<OptimizedBackend>, test: SliceSet, batchSize: Int) -> [VolumeScore] {
  evaluate(&net, test: test, batchSize: batchSize)
}
