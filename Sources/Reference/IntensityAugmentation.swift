import Foundation

// MARK: - Intensity augmentations (docs/PROTOCOL.md section 3)
//
// Each view of a slice gets its own draw of five intensity transforms, applied in this order, each
// with its own probability: Gaussian noise, Gaussian blur, gamma, polynomial bias field, inversion.
// Every transform is a pure function of the image and explicit parameters; only the sampler draws
// random numbers. Images are (N, C, H, W) tensors with intensities in about [0, 1], and the same
// parameters apply to every plane; `augmentIntensity(batch:parameters:)` gives each sample its own.

/// docs/PROTOCOL.md section 3's probabilities and ranges (code).
public enum IntensityAugmentationDistribution {
  /// Additive noise with sigma ~ U(0, maxNoiseSigma).
  public static let noiseProbability = 0.3
  public static let maxNoiseSigma = 0.5
  /// Blur with sigma ~ U(0, maxBlurSigma) pixels, drawn separately for x and y.
  public static let blurProbability = 0.5
  public static let maxBlurSigma = 1.3
  /// gamma = exp(b), b ~ U(-maxLogGamma, maxLogGamma).
  public static let gammaProbability = 0.9
  public static let maxLogGamma = 0.05
  /// Bias field exp(P), P of total degree <= 3 with coefficients ~ U(-maxBiasCoefficient, +).
  public static let biasFieldProbability = 0.75
  public static let maxBiasCoefficient = 0.9
  /// `x -> 1 - x`.
  public static let inversionProbability = 0.35
}

/// Additive Gaussian noise `sigma · field`, the field drawn from `seed` (`gaussianNoiseField`).
public struct NoiseParameters: Hashable, Sendable, Codable {
  public var sigma: Double
  public var seed: UInt64
  public init(sigma: Double, seed: UInt64) {
    self.sigma = sigma
    self.seed = seed
  }
}

/// Gaussian blur with one standard deviation, in pixels, per axis.
public struct BlurParameters: Hashable, Sendable, Codable {
  public var sigmaX: Double
  public var sigmaY: Double
  public init(sigmaX: Double, sigmaY: Double) {
    self.sigmaX = sigmaX
    self.sigmaY = sigmaY
  }
}

/// One view's intensity transforms; nil (or false) means the transform is not applied.
public struct IntensityParameters: Hashable, Sendable, Codable {
  public var noise: NoiseParameters?
  public var blur: BlurParameters?
  /// b, with gamma = exp(b).
  public var logGamma: Double?
  /// The `biasFieldTermCount` coefficients of P, in the order of `biasFieldExponents`.
  public var biasCoefficients: [Double]?
  public var invert: Bool

  public init(
    noise: NoiseParameters? = nil, blur: BlurParameters? = nil, logGamma: Double? = nil,
    biasCoefficients: [Double]? = nil, invert: Bool = false
  ) {
    self.noise = noise
    self.blur = blur
    self.logGamma = logGamma
    self.biasCoefficients = biasCoefficients
    self.invert = invert
  }

  /// No transform applied.
  public static let identity = IntensityParameters()
}

// MARK: - Sampling and application

/// Draws one view's parameters per docs/PROTOCOL.md section 3. For each transform in order (noise,
/// blur, gamma, bias field, inversion) one uniform decides whether it applies; if it does, its
/// parameters follow: noise sigma then a 64-bit field seed; blur sigma x then y; b; the ten
/// coefficients.
public func sampleIntensityParameters(rng: inout SplitMix64) -> IntensityParameters {
  let p = IntensityAugmentationDistribution.self
  var parameters = IntensityParameters()
  if rng.bernoulli(p.noiseProbability) {
    let sigma = rng.uniform(0, p.maxNoiseSigma)
    parameters.noise = NoiseParameters(sigma: sigma, seed: rng.next())
  }
  if rng.bernoulli(p.blurProbability) {
    let sigmaX = rng.uniform(0, p.maxBlurSigma)
    parameters.blur = BlurParameters(sigmaX: sigmaX, sigmaY: rng.uniform(0, p.maxBlurSigma))
  }
  if rng.bernoulli(p.gammaProbability) {
    parameters.logGamma = rng.uniform(-p.maxLogGamma, p.maxLogGamma)
  }
  if rng.bernoulli(p.biasFieldProbability) {
    parameters.biasCoefficients = (0..<biasFieldTermCount).map { _ in
      rng.uniform(-p.maxBiasCoefficient, p.maxBiasCoefficient)
    }
  }
  parameters.invert = rng.bernoulli(p.inversionProbability)
  return parameters
}

/// Applies the transforms `parameters` selects, in the order of docs/PROTOCOL.md section 3, to
/// every plane of `image`. image: (N, C, H, W). Returns the same shape. The noise field covers the
/// whole tensor.
public func augmentIntensity(_ image: Tensor<Double>, parameters: IntensityParameters) -> Tensor<Double> {
  var result = image
  if let noise = parameters.noise {
    result = addGaussianNoise(
      result, field: gaussianNoiseField(shape: image.shape, seed: noise.seed), sigma: noise.sigma)
  }
  if let blur = parameters.blur {
    result = gaussianBlur(result, sigmaX: blur.sigmaX, sigmaY: blur.sigmaY)
  }
  if let logGamma = parameters.logGamma {
    result = applyGamma(result, logGamma: logGamma)
  }
  if let coefficients = parameters.biasCoefficients {
    result = multiplyBiasField(result, coefficients: coefficients)
  }
  if parameters.invert {
    result = invertIntensity(result)
  }
  return result
}

/// `augmentIntensity` with one parameter set per sample: batch (N, C, H, W), parameters N entries.
/// Sample n's noise field is drawn for its own (1, C, H, W) slice.
public func augmentIntensity(batch: Tensor<Double>, parameters: [IntensityParameters]) -> Tensor<Double> {
  let s = batch.shape
  precondition(parameters.count == s.n, "augmentIntensity: \(parameters.count) parameter sets for batch \(s.n)")
  let sampleCount = s.c * s.plane
  var output = Tensor<Double>(zeros: s)
  for n in 0..<s.n {
    let range = (n * sampleCount)..<((n + 1) * sampleCount)
    let sample = Tensor(shape: Shape(1, s.c, s.h, s.w), data: Array(batch.data[range]))
    output.data.replaceSubrange(range, with: augmentIntensity(sample, parameters: parameters[n]).data)
  }
  return output
}

extension Backend {
  /// The reference definition on any backend: `augmentIntensity(batch:parameters:)` in Double,
  /// the result converted to `Scalar`.
  public func augmentIntensity(batch: Tensor<Scalar>, parameters: [IntensityParameters]) -> Tensor<Scalar> {
    Reference.augmentIntensity(batch: batch.converted(), parameters: parameters).converted()
  }
}

// MARK: - Noise, gamma, inversion (pointwise)

/// A field of independent standard normal values of `shape`, in data order, from
/// `SplitMix64(seed: seed).normal()`.
public func gaussianNoiseField(shape: Shape, seed: UInt64) -> Tensor<Double> {
  var rng = SplitMix64(seed: seed)
  var field = Tensor<Double>(zeros: shape)
  for i in 0..<shape.count { field.data[i] = rng.normal() }
  return field
}

/// `image + sigma · field`, elementwise. image, field: the same shape.
public func addGaussianNoise(_ image: Tensor<Double>, field: Tensor<Double>, sigma: Double) -> Tensor<Double> {
  field.checkShape(image.shape, "addGaussianNoise field")
  var output = image
  for i in 0..<image.data.count { output.data[i] = image.data[i] + sigma * field.data[i] }
  return output
}

/// `x -> sign(x) · |x|^gamma` with gamma = exp(logGamma), elementwise.
public func applyGamma(_ image: Tensor<Double>, logGamma: Double) -> Tensor<Double> {
  let gamma = exp(logGamma)
  var output = image
  for i in 0..<image.data.count {
    let v = image.data[i]
    let magnitude = pow(abs(v), gamma)
    output.data[i] = v < 0 ? -magnitude : magnitude
  }
  return output
}

/// `x -> 1 - x`, elementwise.
public func invertIntensity(_ image: Tensor<Double>) -> Tensor<Double> {
  var output = image
  for i in 0..<image.data.count { output.data[i] = 1 - image.data[i] }
  return output
}

// MARK: - Gaussian blur

/// Separable Gaussian blur: along x with `sigmaX`, then along y with `sigmaY` (pixels).
///
/// Each pass is scipy's `gaussian_filter1d` (mode "reflect", truncate 4): taps
/// `w_k ∝ exp(-k² / 2σ²)` for |k| <= r = floor(4σ + 0.5), normalised to sum 1, with half-sample
/// symmetric reflection at the borders (`d c b a | a b c d | d c b a`). Sigma 0 (r = 0) is the
/// identity. Each output is summed as `w_0·v[i] + sum over k of w_k·(v[i - k] + v[i + k])`, so the
/// result of a mirrored image is the mirrored result, bit for bit.
/// image: (N, C, H, W). Returns the same shape.
public func gaussianBlur(_ image: Tensor<Double>, sigmaX: Double, sigmaY: Double) -> Tensor<Double> {
  let alongX = blurAxis(image, taps: gaussianTaps(sigma: sigmaX), alongX: true)
  return blurAxis(alongX, taps: gaussianTaps(sigma: sigmaY), alongX: false)
}

/// The taps w_0 ... w_r of a normalised Gaussian (r = floor(4σ + 0.5)); [1] when r = 0.
package func gaussianTaps(sigma: Double) -> [Double] {
  precondition(sigma >= 0, "gaussianTaps: negative sigma \(sigma)")
  let radius = Int(4 * sigma + 0.5)
  if radius == 0 { return [1] }
  var taps = [Double](repeating: 0, count: radius + 1)
  var total = 0.0
  for k in 0...radius {
    taps[k] = exp(-Double(k * k) / (2 * sigma * sigma))
    total += k == 0 ? taps[k] : 2 * taps[k]
  }
  for k in 0...radius { taps[k] /= total }
  return taps
}

/// Index i of an axis of `size` reflected into 0 ..< size, half-sample symmetric, any distance.
package func reflectIndex(_ i: Int, size: Int) -> Int {
  let period = 2 * size
  let m = ((i % period) + period) % period
  return m < size ? m : period - 1 - m
}

/// One symmetric 1-D convolution pass along x (or y) of every row (or column).
func blurAxis(_ image: Tensor<Double>, taps: [Double], alongX: Bool) -> Tensor<Double> {
  if taps.count == 1 { return image }
  let s = image.shape
  var output = Tensor<Double>(zeros: s)
  for n in 0..<s.n {
    for c in 0..<s.c {
      for y in 0..<s.h {
        for x in 0..<s.w {
          var sum = taps[0] * image[n, c, y, x]
          for k in 1..<taps.count {
            let pair =
              alongX
              ? image[n, c, y, reflectIndex(x - k, size: s.w)] + image[n, c, y, reflectIndex(x + k, size: s.w)]
              : image[n, c, reflectIndex(y - k, size: s.h), x] + image[n, c, reflectIndex(y + k, size: s.h), x]
            sum += taps[k] * pair
          }
          output[n, c, y, x] = sum
        }
      }
    }
  }
  return output
}

// MARK: - Bias field

/// The number of monomials x^i·y^j with i + j <= 3.
public let biasFieldTermCount = 10

/// The exponents (i, j) of x^i·y^j, coefficient by coefficient: i = 0 ... 3, then j = 0 ... 3 - i
/// (TorchIO's order): 1, y, y², y³, x, xy, xy², x², x²y, x³.
public func biasFieldExponents() -> [(x: Int, y: Int)] {
  var exponents = [(x: Int, y: Int)]()
  for i in 0...3 {
    for j in 0...(3 - i) { exponents.append((i, j)) }
  }
  return exponents
}

/// The normalised coordinate `(2i - (S - 1)) / (S - 1)` of pixel i of an axis of size S (0 when
/// S = 1): -1 and +1 at the corner pixel centres, as in the warp. The numerator is an exact integer,
/// so pixel S - 1 - i gets exactly the negated value and mirroring the image mirrors the field.
package func biasFieldCoordinate(_ i: Int, size: Int) -> Double {
  size > 1 ? Double(2 * i - (size - 1)) / Double(size - 1) : 0
}

/// `x -> x · exp(P(x_n, y_n))`, P the polynomial with `coefficients` (order of
/// `biasFieldExponents`) in normalised coordinates, the same field on every plane.
/// image: (N, C, H, W). Returns the same shape. All-zero coefficients give the identity.
public func multiplyBiasField(_ image: Tensor<Double>, coefficients: [Double]) -> Tensor<Double> {
  precondition(coefficients.count == biasFieldTermCount, "multiplyBiasField: \(coefficients.count) coefficients")
  let s = image.shape
  let exponents = biasFieldExponents()
  var output = image
  for y in 0..<s.h {
    for x in 0..<s.w {
      // Powers by repeated multiplication: exact sign symmetry under x -> -x.
      let xn = biasFieldCoordinate(x, size: s.w), yn = biasFieldCoordinate(y, size: s.h)
      let xPowers = [1, xn, xn * xn, xn * xn * xn], yPowers = [1, yn, yn * yn, yn * yn * yn]
      var polynomial = 0.0
      for t in 0..<biasFieldTermCount {
        polynomial += coefficients[t] * (xPowers[exponents[t].x] * yPowers[exponents[t].y])
      }
      let factor = exp(polynomial)
      for n in 0..<s.n {
        for c in 0..<s.c { output[n, c, y, x] = image[n, c, y, x] * factor }
      }
    }
  }
  return output
}
