import Foundation
import Reference

// MARK: - Intensity augmentation (docs/PROTOCOL.md section 3)

/// Optimized twin of `Reference.augmentIntensity(batch:parameters:)`: each sample n of batch
/// (N, C, H, W), W fastest, gets the transforms `parameters[n]` selects, in the protocol's order
/// (noise, blur, gamma, bias field, inversion). Returns the same shape.
///
/// Parallel over samples (sample n owns its output slice, so the result does not depend on
/// `workers`). Per sample: the noise field is drawn from the same `SplitMix64(seed:).normal()`
/// sequence and added in Double, as in the reference; the blur runs in Float with the reference's
/// taps (computed in Double), its border reflection resolved once per pass instead of per tap,
/// and the same pairing of mirrored taps; gamma, the bias field and the inversion are fused into
/// one Float pass (gamma by `powf`, the field's polynomial and exponential in Double per pixel, as
/// the reference, once per sample instead of per plane element). Differs from the reference only
/// in precision (Float after the noise) and in where that rounding happens.
public func augmentIntensity(batch: Tensor<Float>, parameters: [IntensityParameters], workers: Int) -> Tensor<Float> {
  checkWorkers(workers)
  let s = batch.shape
  precondition(parameters.count == s.n, "augmentIntensity: \(parameters.count) parameter sets for batch \(s.n)")
  let sampleCount = s.c * s.plane
  let data = makeArray(s.count) { out in
    batch.data.withUnsafeBufferPointer { xBuffer in
      // Disjoint writes: sample n writes out[n * sampleCount ..< (n + 1) * sampleCount] only.
      nonisolated(unsafe) let x = xBuffer.baseAddress!
      nonisolated(unsafe) let y = out
      parallelFor(s.n, workers: workers) { n in
        augmentSample(
          x + n * sampleCount, y + n * sampleCount, planes: s.c, height: s.h, width: s.w, parameters: parameters[n])
      }
    }
  }
  return Tensor(shape: s, data: data)
}

/// One sample's planes (planes x height x width) from `source` into `target`.
func augmentSample(
  _ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, planes: Int, height: Int, width: Int,
  parameters: IntensityParameters
) {
  let plane = height * width, count = planes * plane
  if let noise = parameters.noise {
    // The reference's field, value for value: one standard normal per element in data order.
    var rng = SplitMix64(seed: noise.seed)
    for i in 0..<count { target[i] = Float(Double(source[i]) + noise.sigma * rng.normal()) }
  } else {
    target.update(from: source, count: count)
  }
  if let blur = parameters.blur {
    let tapsX = gaussianTaps(sigma: blur.sigmaX).map { Float($0) }
    let tapsY = gaussianTaps(sigma: blur.sigmaY).map { Float($0) }
    withScratch(plane + 2 * max(width, height) + 2 * max(tapsX.count, tapsY.count) + 16) { scratch in
      for p in 0..<planes {
        blurPlane(target + p * plane, height: height, width: width, tapsX: tapsX, tapsY: tapsY, scratch: scratch)
      }
    }
  }
  fusedPointwise(target, planes: planes, height: height, width: width, parameters: parameters)
}

// MARK: - Blur

/// Separable blur of one (height x width) plane in place: rows with `tapsX`, then columns with
/// `tapsY` (a single tap is the identity). Each output is `w0·v[i] + sum_k wk·(v[i - k] + v[i + k])`
/// with half-sample symmetric reflection at the borders, as `Reference.blurAxis`.
func blurPlane(
  _ image: UnsafeMutablePointer<Float>, height: Int, width: Int, tapsX: [Float], tapsY: [Float],
  scratch: UnsafeMutablePointer<Float>
) {
  if tapsX.count > 1 {
    // Each row, reflected into a padded copy, then filtered back into place.
    let r = tapsX.count - 1
    let padded = scratch
    for y in 0..<height {
      let row = image + y * width
      for i in 0..<(width + 2 * r) { padded[i] = row[reflectIndex(i - r, size: width)] }
      filterRow(padded + r, into: row, count: width, taps: tapsX)
    }
  }
  if tapsY.count > 1 {
    // Rows of the result from rows of the input: the source rows are kept in the scratch.
    let r = tapsY.count - 1
    let copy = scratch
    copy.update(from: image, count: height * width)
    for y in 0..<height {
      let out = image + y * width
      let center = copy + y * width
      let t0 = Vec8(repeating: tapsY[0])
      var x = 0
      while x + 8 <= width {
        var sum = t0 * load8(center + x)
        for k in 1...r {
          let above = copy + reflectIndex(y - k, size: height) * width, below = copy + reflectIndex(y + k, size: height) * width
          sum += Vec8(repeating: tapsY[k]) * (load8(above + x) + load8(below + x))
        }
        store8(sum, out + x)
        x += 8
      }
      while x < width {
        var sum = tapsY[0] * center[x]
        for k in 1...r {
          sum += tapsY[k] * (copy[reflectIndex(y - k, size: height) * width + x] + copy[reflectIndex(y + k, size: height) * width + x])
        }
        out[x] = sum
        x += 1
      }
    }
  }
}

/// out[i] = t0·v[i] + sum_k tk·(v[i - k] + v[i + k]) for i in 0 ..< count; v readable from -r to
/// count - 1 + r (the reflected padding).
@inline(__always)
func filterRow(_ v: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int, taps: [Float]) {
  let r = taps.count - 1
  var i = 0
  while i + 8 <= count {
    var sum = Vec8(repeating: taps[0]) * load8(v + i)
    for k in 1...r {
      sum += Vec8(repeating: taps[k]) * (load8(v + i - k) + load8(v + i + k))
    }
    store8(sum, out + i)
    i += 8
  }
  while i < count {
    var sum = taps[0] * v[i]
    for k in 1...r { sum += taps[k] * (v[i - k] + v[i + k]) }
    out[i] = sum
    i += 1
  }
}

// MARK: - Gamma, bias field, inversion

/// Gamma (`sign(x)·|x|^gamma`), the bias field (`x·exp(P)`) and the inversion (`1 - x`), those that
/// `parameters` selects, in that order, in one pass over the sample's planes.
func fusedPointwise(
  _ image: UnsafeMutablePointer<Float>, planes: Int, height: Int, width: Int, parameters: IntensityParameters
) {
  let plane = height * width
  let gamma = parameters.logGamma.map { Float(exp($0)) }
  let field: [Float]? = parameters.biasCoefficients.map { biasFieldFactors(height: height, width: width, coefficients: $0) }
  if gamma == nil && field == nil && !parameters.invert { return }
  for p in 0..<planes {
    let values = image + p * plane
    if let gamma {
      for i in 0..<plane {
        let v = values[i]
        let magnitude = powf(abs(v), gamma)
        values[i] = v < 0 ? -magnitude : magnitude
      }
    }
    if let field {
      field.withUnsafeBufferPointer { f in
        let factors = f.baseAddress!
        var i = 0
        while i + 8 <= plane {
          store8(load8(values + i) * load8(factors + i), values + i)
          i += 8
        }
        while i < plane {
          values[i] *= factors[i]
          i += 1
        }
      }
    }
    if parameters.invert {
      let one = Vec8(repeating: 1)
      var i = 0
      while i + 8 <= plane {
        store8(one - load8(values + i), values + i)
        i += 8
      }
      while i < plane {
        values[i] = 1 - values[i]
        i += 1
      }
    }
  }
}

/// exp(P(x_n, y_n)) at every pixel of a (height x width) plane, computed in Double as
/// `Reference.multiplyBiasField` computes it (the same monomials, order and coordinates), rounded
/// to Float.
func biasFieldFactors(height: Int, width: Int, coefficients: [Double]) -> [Float] {
  precondition(coefficients.count == biasFieldTermCount, "biasFieldFactors: \(coefficients.count) coefficients")
  let exponents = biasFieldExponents()
  // Powers 0 ... 3 of every coordinate, by repeated multiplication as in the reference.
  func powers(_ size: Int) -> [Double] {
    (0..<size).flatMap { i -> [Double] in
      let c = biasFieldCoordinate(i, size: size)
      return [1, c, c * c, c * c * c]
    }
  }
  let xPowers = powers(width), yPowers = powers(height)
  var factors = [Float](repeating: 0, count: height * width)
  for y in 0..<height {
    for x in 0..<width {
      var polynomial = 0.0
      for t in 0..<biasFieldTermCount {
        polynomial += coefficients[t] * (xPowers[4 * x + exponents[t].x] * yPowers[4 * y + exponents[t].y])
      }
      factors[y * width + x] = Float(exp(polynomial))
    }
  }
  return factors
}
