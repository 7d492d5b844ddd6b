import Foundation
import Reference

// MARK: - BatchNorm2d

/// Optimized twin of `Reference.batchNormForward`: BatchNorm2d, eps 1e-5, momentum 0.1.
/// input: (N, C, H, W), W fastest; weight, bias, runningMean, runningVariance: (C).
///
/// Parallel over channels (each channel's statistics, running statistics and output planes belong
/// to one iteration). The statistics take one pass: sums of x - K and (x - K)², K the channel's
/// first value, in Float with 8-lane accumulators over blocks of 256 values, blocks and planes
/// combined in Double in order (the reference takes two passes, mean then squared deviations). The output is computed as
/// `in · scale + shift` with `scale = inverseStd · weight`, `shift = bias - mean · scale`. Differs
/// from the reference only in precision and summation order; bitwise deterministic for any `workers`.
public func batchNormForward(
  input: Tensor<Float>, weight: [Float], bias: [Float],
  runningMean: inout [Float], runningVariance: inout [Float], training: Bool, workers: Int
) -> (output: Tensor<Float>, saved: BatchNormSaved<Float>) {
  checkWorkers(workers)
  let s = input.shape
  precondition(
    weight.count == s.c && bias.count == s.c && runningMean.count == s.c && runningVariance.count == s.c,
    "batchNormForward: parameter counts differ from \(s.c) channels")
  let m = s.n * s.h * s.w
  precondition(!training || m > 1, "batchNormForward: training needs more than 1 value per channel, got \(m)")
  let plane = s.h * s.w
  var mean = [Float](repeating: 0, count: s.c)
  var inverseStd = [Float](repeating: 0, count: s.c)
  let output = makeArray(s.count) { out in
    input.data.withUnsafeBufferPointer { xBuffer in
      mean.withUnsafeMutableBufferPointer { meanBuffer in
        inverseStd.withUnsafeMutableBufferPointer { stdBuffer in
          runningMean.withUnsafeMutableBufferPointer { rmBuffer in
            runningVariance.withUnsafeMutableBufferPointer { rvBuffer in
              weight.withUnsafeBufferPointer { wBuffer in
                bias.withUnsafeBufferPointer { bBuffer in
                  // Disjoint writes: iteration c writes channel c's statistics and output planes.
                  nonisolated(unsafe) let x = xBuffer.baseAddress!
                  nonisolated(unsafe) let meanOut = meanBuffer.baseAddress!, stdOut = stdBuffer.baseAddress!
                  nonisolated(unsafe) let rm = rmBuffer.baseAddress!, rv = rvBuffer.baseAddress!
                  nonisolated(unsafe) let w = wBuffer.baseAddress!, b = bBuffer.baseAddress!
                  nonisolated(unsafe) let y = out
                  parallelFor(s.c, workers: workers) { c in
                    var mu: Double, invStd: Double
                    if training {
                      // One pass over the data: moments of x - K, K the channel's first value, so
                      // the subtraction in the variance cancels little.
                      let shift = x[c * plane]
                      var sum = 0.0, sumSquares = 0.0
                      for n in 0..<s.n {
                        let (a, b) = planeShiftedMoments(x + (n * s.c + c) * plane, count: plane, shift: shift)
                        sum += a
                        sumSquares += b
                      }
                      mu = Double(shift) + sum / Double(m)
                      let squares = max(0, sumSquares - sum * sum / Double(m))
                      let momentum = BatchNormConstants.momentum
                      rm[c] = Float((1 - momentum) * Double(rm[c]) + momentum * mu)
                      rv[c] = Float((1 - momentum) * Double(rv[c]) + momentum * squares / Double(m - 1))
                      invStd = 1 / (squares / Double(m) + BatchNormConstants.epsilon).squareRoot()
                    } else {
                      mu = Double(rm[c])
                      invStd = 1 / (Double(rv[c]) + BatchNormConstants.epsilon).squareRoot()
                    }
                    meanOut[c] = Float(mu)
                    stdOut[c] = Float(invStd)
                    let scale = invStd * Double(w[c])
                    let shift = Vec8(repeating: Float(Double(b[c]) - mu * scale))
                    let scaleVector = Vec8(repeating: Float(scale))
                    for n in 0..<s.n {
                      let offset = (n * s.c + c) * plane
                      mapPlane(x + offset, y + offset, count: plane) { $0 * scaleVector + shift }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  return (Tensor(shape: s, data: output), BatchNormSaved(mean: mean, inverseStd: inverseStd, training: training))
}

/// Optimized twin of `Reference.batchNormBackward`. Returns gradInput (N, C, H, W), gradWeight (C)
/// and gradBias (C); training mode differentiates through the batch statistics, evaluation mode
/// treats them as constants.
///
/// Parallel over channels, sums as in the forward. Differs from the reference only in precision and
/// summation order; bitwise deterministic for any `workers`.
public func batchNormBackward(
  input: Tensor<Float>, weight: [Float], saved: BatchNormSaved<Float>, gradOutput: Tensor<Float>, workers: Int
) -> (gradInput: Tensor<Float>, gradWeight: [Float], gradBias: [Float]) {
  checkWorkers(workers)
  let s = input.shape
  gradOutput.checkShape(s, "batchNormBackward gradOutput")
  precondition(
    weight.count == s.c && saved.mean.count == s.c && saved.inverseStd.count == s.c,
    "batchNormBackward: parameter counts differ from \(s.c) channels")
  let plane = s.h * s.w
  let m = Double(s.n * plane)
  var gradWeight = [Float](repeating: 0, count: s.c)
  var gradBias = [Float](repeating: 0, count: s.c)
  let training = saved.training
  let gradInput = makeArray(s.count) { out in
    input.data.withUnsafeBufferPointer { xBuffer in
      gradOutput.data.withUnsafeBufferPointer { gBuffer in
        gradWeight.withUnsafeMutableBufferPointer { gwBuffer in
          gradBias.withUnsafeMutableBufferPointer { gbBuffer in
            saved.mean.withUnsafeBufferPointer { meanBuffer in
              saved.inverseStd.withUnsafeBufferPointer { stdBuffer in
                weight.withUnsafeBufferPointer { wBuffer in
                  // Disjoint writes: iteration c writes channel c's gradients and planes.
                  nonisolated(unsafe) let x = xBuffer.baseAddress!, g = gBuffer.baseAddress!
                  nonisolated(unsafe) let gw = gwBuffer.baseAddress!, gb = gbBuffer.baseAddress!
                  nonisolated(unsafe) let meanIn = meanBuffer.baseAddress!, stdIn = stdBuffer.baseAddress!
                  nonisolated(unsafe) let w = wBuffer.baseAddress!
                  nonisolated(unsafe) let dx = out
                  parallelFor(s.c, workers: workers) { c in
                    let mu = meanIn[c], invStd = stdIn[c]
                    var sumGrad = 0.0, sumGradXHat = 0.0
                    for n in 0..<s.n {
                      let offset = (n * s.c + c) * plane
                      let (a, b) = planeGradientSums(x + offset, g + offset, count: plane, mean: mu)
                      sumGrad += a
                      sumGradXHat += b * Double(invStd)
                    }
                    gb[c] = Float(sumGrad)
                    gw[c] = Float(sumGradXHat)
                    let scale = Double(w[c]) * Double(invStd)
                    if training {
                      // gradIn = scale · (g - sumGrad / m - (x - mean) · invStd · sumGradXHat / m)
                      let k = Vec8(repeating: Float(scale))
                      let offsetTerm = Vec8(repeating: Float(sumGrad / m))
                      let slope = Vec8(repeating: Float(Double(invStd) * sumGradXHat / m))
                      let center = Vec8(repeating: mu)
                      for n in 0..<s.n {
                        let offset = (n * s.c + c) * plane
                        mapPlanes(x + offset, g + offset, dx + offset, count: plane) { xv, gv in
                          k * (gv - offsetTerm - (xv - center) * slope)
                        }
                      }
                    } else {
                      let k = Vec8(repeating: Float(scale))
                      for n in 0..<s.n {
                        let offset = (n * s.c + c) * plane
                        mapPlane(g + offset, dx + offset, count: plane) { $0 * k }
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  return (Tensor(shape: s, data: gradInput), gradWeight, gradBias)
}

// MARK: - Plane loops

/// (sum of x - shift, sum of (x - shift)²) over a plane: blocks of `reductionBlock` in 8-lane Float
/// accumulators (two per sum, combined in a fixed order), blocks added in Double.
@inline(__always)
func planeShiftedMoments(_ p: UnsafePointer<Float>, count: Int, shift: Float) -> (Double, Double) {
  let k = Vec8(repeating: shift)
  var sum = 0.0, squares = 0.0
  var start = 0
  while start < count {
    let end = min(count, start + reductionBlock)
    var s0 = Vec8(), s1 = Vec8(), q0 = Vec8(), q1 = Vec8()
    var i = start
    while i + 16 <= end {
      let d0 = load8(p + i) - k, d1 = load8(p + i + 8) - k
      s0 += d0
      s1 += d1
      q0.addProduct(d0, d0)
      q1.addProduct(d1, d1)
      i += 16
    }
    if i < end {
      let d = loadPartial(p + i, lanes: min(8, end - i)) - k.replacing(with: 0, where: laneMask(min(8, end - i)))
      s0 += d
      q0.addProduct(d, d)
      i += 8
      if i < end {
        let e = loadPartial(p + i, lanes: end - i) - k.replacing(with: 0, where: laneMask(end - i))
        s1 += e
        q1.addProduct(e, e)
      }
    }
    sum += Double(laneSum(s0 + s1))
    squares += Double(laneSum(q0 + q1))
    start = end
  }
  return (sum, squares)
}

/// Lanes at or past `lanes` (1 ... 8).
@inline(__always)
func laneMask(_ lanes: Int) -> SIMDMask<SIMD8<Int32>> {
  SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .>= SIMD8<Int32>(repeating: Int32(lanes))
}

/// sum of (x - mean)² over a plane, blocked like `planeShiftedMoments`.
@inline(__always)
func planeSquaredDeviations(_ p: UnsafePointer<Float>, count: Int, mean: Float) -> Double {
  let (sum, squares) = planeShiftedMoments(p, count: count, shift: mean)
  return squares - sum * sum / Double(max(count, 1))
}

/// (sum g, sum g · (x - mean)) over a plane, blocked like `planeShiftedMoments`.
@inline(__always)
func planeGradientSums(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, count: Int, mean: Float) -> (Double, Double) {
  let mu = Vec8(repeating: mean)
  var sum = 0.0, dot = 0.0
  var start = 0
  while start < count {
    let end = min(count, start + reductionBlock)
    var s0 = Vec8(), s1 = Vec8(), t0 = Vec8(), t1 = Vec8()
    var i = start
    while i + 16 <= end {
      let g0 = load8(g + i), g1 = load8(g + i + 8)
      s0 += g0
      s1 += g1
      t0.addProduct(g0, load8(x + i) - mu)
      t1.addProduct(g1, load8(x + i + 8) - mu)
      i += 16
    }
    // A partial vector of g is zero past its lanes, so the products there vanish.
    while i < end {
      let lanes = min(8, end - i)
      let gv = loadPartial(g + i, lanes: lanes)
      s0 += gv
      t0.addProduct(gv, loadPartial(x + i, lanes: lanes) - mu)
      i += lanes
    }
    sum += Double(laneSum(s0 + s1))
    dot += Double(laneSum(t0 + t1))
    start = end
  }
  return (sum, dot)
}

/// out[i] = f(x[i]) in 8-lane steps (a scalar tail goes through the same f).
@inline(__always)
func mapPlane(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int, _ f: (Vec8) -> Vec8) {
  var i = 0
  while i + 8 <= count {
    store8(f(load8(x + i)), out + i)
    i += 8
  }
  if i < count { store8(f(loadPartial(x + i, lanes: count - i)), out + i, lanes: count - i) }
}

/// out[i] = f(a[i], b[i]) in 8-lane steps.
@inline(__always)
func mapPlanes(
  _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int,
  _ f: (Vec8, Vec8) -> Vec8
) {
  var i = 0
  while i + 8 <= count {
    store8(f(load8(a + i), load8(b + i)), out + i)
    i += 8
  }
  if i < count {
    let lanes = count - i
    store8(f(loadPartial(a + i, lanes: lanes), loadPartial(b + i, lanes: lanes)), out + i, lanes: lanes)
  }
}
