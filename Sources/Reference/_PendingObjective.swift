// Temporary placeholders for signatures still being written; each function moves to its own file
// when implemented, and this file is deleted when empty. Nothing here may land.

public func warpForward(input: Tensor<Double>, affines: [Affine2D]) -> Tensor<Double> { fatalError("pending") }
public func warpBackward(gradOutput: Tensor<Double>, affines: [Affine2D]) -> Tensor<Double> { fatalError("pending") }
public func l2NormalizeForward(input: Tensor<Double>) -> Tensor<Double> { fatalError("pending") }
public func l2NormalizeBackward(input: Tensor<Double>, gradOutput: Tensor<Double>) -> Tensor<Double> { fatalError("pending") }
public func infoNCE(z: Tensor<Double>, zPrime: Tensor<Double>, temperature: Double) -> (loss: Double, gradZ: Tensor<Double>, gradZPrime: Tensor<Double>) { fatalError("pending") }
public func barlowTwins(z: Tensor<Double>, zPrime: Tensor<Double>, lambda: Double) -> (loss: Double, gradZ: Tensor<Double>, gradZPrime: Tensor<Double>) { fatalError("pending") }
