import Reference

/// The learned equivariance and invariance of a backbone f on test slices (BatchNorm in
/// evaluation mode), over output pixels whose source lies inside the image:
/// - relative error ‖φ·f(x) − f(φ·x)‖ / ‖φ·f(x)‖ (sums over valid pixels and channels);
/// - mean cosine similarity of corresponding pixel features φ·f(x)[p] and f(φ·x)[p], against
///   that of random pairs of valid pixels of the same slice;
/// - mean pixelwise cosine similarity of f(t(x)) and f(x) for seeded intensity augmentations t.
public func measureEquivariance<B: Backend>(
  _ net: inout Pix2RepNetwork<B>, name: String, test: SliceSet, slices: Int, seed: UInt64
) -> EquivarianceFigure {
  var rng = SplitMix64(seed: seed, stream: 31)
  let chosen = Array(rng.permutation(test.count).prefix(slices))
  let x: Tensor<B.Scalar> = test.imageTensor(chosen)
  let affines = chosen.map { _ in sampleSpatialTransform(rng: &rng).affine }
  let f = net.frozenFeatures(x)
  let warpedFeatures = net.backend.warpForward(input: f, affines: affines)
  let featuresOfWarped = net.frozenFeatures(net.backend.warpForward(input: x, affines: affines))
  let augmented = augmentedImages(test, chosen, rng: &rng, backend: net.backend)
  let featuresOfAugmented = net.frozenFeatures(augmented)
  let valid = validityMask(affines: affines, height: test.size, width: test.size)

  let s = f.shape
  var difference = 0.0, norm = 0.0
  var corresponding = 0.0, randomPairs = 0.0, intensity = 0.0
  var count = 0
  func vector(_ t: Tensor<B.Scalar>, _ n: Int, _ p: Int) -> [Double] {
    (0..<s.c).map { Double(t.data[(n * s.c + $0) * s.plane + p]) }
  }
  for n in 0..<s.n {
    let validPixels = (0..<s.plane).filter { valid[n * s.plane + $0] }
    for p in validPixels {
      let a = vector(warpedFeatures, n, p), b = vector(featuresOfWarped, n, p)
      for c in 0..<s.c {
        difference += (a[c] - b[c]) * (a[c] - b[c])
        norm += a[c] * a[c]
      }
      corresponding += cosine(a, b)
      let q = validPixels[rng.int(below: validPixels.count)]
      randomPairs += cosine(a, vector(featuresOfWarped, n, q))
      intensity += cosine(vector(f, n, p), vector(featuresOfAugmented, n, p))
      count += 1
    }
  }
  let c = Double(max(count, 1))
  return EquivarianceFigure(
    backbone: name, relativeError: (difference / max(norm, 1e-30)).squareRoot(),
    correspondingCosine: corresponding / c, randomPairCosine: randomPairs / c, intensityCosine: intensity / c)
}

/// Cosine similarity; 0 when either vector is zero.
func cosine(_ a: [Double], _ b: [Double]) -> Double {
  var dot = 0.0, na = 0.0, nb = 0.0
  for i in 0..<a.count {
    dot += a[i] * b[i]
    na += a[i] * a[i]
    nb += b[i] * b[i]
  }
  return na > 0 && nb > 0 ? dot / (na * nb).squareRoot() : 0
}
