import Reference
import TestSupport

// MARK: - The catalogue: adding a kernel is one line

/// Every kernel of `Backend`, once. RegressionTests runs each over its `cases` on both backends
/// (against the reference, and bit for bit across worker counts); `verify profile` runs them at a
/// preset's layer shapes, checked against the reference before it times them.
package let kernelCatalog: [any CatalogKernel] = [
  Conv3x3Kernel(), Conv1x1Kernel(), ConvTranspose2x2Kernel(),
  BatchNormKernel(training: true), BatchNormKernel(training: false),
  ReLUKernel(), MaxPoolKernel(), ConcatKernel(), WarpKernel(), WarpGatherKernel(), L2NormalizeKernel(),
  InfoNCEKernel(), BarlowTwinsKernel(), SoftDiceKernel(), AdamKernel(), IntensityAugmentationKernel(),
  GlobalAveragePoolKernel(), ConsistencyLossKernel(), EMAKernel(), SimCLRObjectiveKernel(), NearestNeighbourKernel(),
]
