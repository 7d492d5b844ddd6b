import Dispatch
import Foundation
import Optimized
import Reference
import TestSupport

// MARK: - Kernels written once for both backends

/// Seeded inputs in [-1, 1), rounded through Float so both backends see the same numbers.
struct ProbeInputs {
  var rng: SplitMix64
  init(_ seed: UInt64) { rng = SplitMix64(seed: seed, stream: 0x5052_4F46) }
  mutating func values(_ count: Int, scale: Double = 1, offset: Double = 0) -> [Double] {
    (0..<count).map { _ in Double(Float(offset + scale * (2 * rng.uniform() - 1))) }
  }
}

protocol ProbeKernel: Sendable {
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]]
}

/// A kernel on square images of side `size`, whose work scales with size².
protocol SizedProbeKernel: ProbeKernel {
  var size: Int { get set }
}

func probeCast<B: Backend>(_ values: [Double], _: B) -> [B.Scalar] { values.map { B.Scalar($0) } }
func probeCast<B: Backend>(_ shape: Shape, _ values: [Double], _ b: B) -> Tensor<B.Scalar> {
  Tensor(shape: shape, data: probeCast(values, b))
}

struct Conv3x3Probe: SizedProbeKernel {
  var cin: Int, cout: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(cin * 1000 + cout + size))
    let shape = Shape(batch, cin, size, size)
    let x = probeCast(shape, r.values(shape.count), b)
    let w = probeCast(r.values(cout * cin * 9, scale: (3 / Double(9 * cin)).squareRoot()), b)
    if !backward { return { [b.conv3x3Forward(input: x, weight: w, outputChannels: cout).data] } }
    let dy = probeCast(Shape(batch, cout, size, size), r.values(batch * cout * size * size), b)
    return {
      let g = b.conv3x3Backward(input: x, weight: w, gradOutput: dy)
      return [g.gradInput.data, g.gradWeight]
    }
  }
}

struct Conv1x1Probe: SizedProbeKernel {
  var cin: Int, cout: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    conv1x1Call(b, input: Shape(batch, cin, size, size), cout: cout, backward: backward, seed: UInt64(cin * 1000 + cout + size + 1))
  }
}

/// The projection head's last layer as the pretraining step runs it (`projectionOutputRows`):
/// `rows` pixel rows laid out as one (1, cin, 1, rows) image. Not sized: its work does not depend
/// on the image side.
struct RowsConv1x1Probe: ProbeKernel {
  var cin: Int, cout: Int, rows: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    conv1x1Call(b, input: Shape(1, cin, 1, rows), cout: cout, backward: backward, seed: UInt64(cin * 1000 + cout + rows + 1))
  }
}

/// Seeded inputs of a 1x1 convolution (forward, or backward with a random output gradient) and
/// the call that runs it.
func conv1x1Call<B: Backend>(_ b: B, input shape: Shape, cout: Int, backward: Bool, seed: UInt64) -> () -> [[B.Scalar]] {
  var r = ProbeInputs(seed)
  let x = probeCast(shape, r.values(shape.count), b)
  let w = probeCast(r.values(cout * shape.c, scale: (3 / Double(shape.c)).squareRoot()), b)
  let bias = probeCast(r.values(cout), b)
  if !backward { return { [b.conv1x1Forward(input: x, weight: w, bias: bias).data] } }
  let outShape = Shape(shape.n, cout, shape.h, shape.w)
  let dy = probeCast(outShape, r.values(outShape.count), b)
  return {
    let g = b.conv1x1Backward(input: x, weight: w, gradOutput: dy)
    return [g.gradInput.data, g.gradWeight, g.gradBias]
  }
}

struct ConvTransposeProbe: SizedProbeKernel {
  var cin: Int, cout: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(cin * 1000 + cout + size + 2))
    let shape = Shape(batch, cin, size, size)
    let x = probeCast(shape, r.values(shape.count), b)
    let w = probeCast(r.values(cin * cout * 4, scale: (3 / Double(cin)).squareRoot()), b)
    let bias = probeCast(r.values(cout), b)
    if !backward { return { [b.convTranspose2x2Forward(input: x, weight: w, bias: bias).data] } }
    let dy = probeCast(Shape(batch, cout, 2 * size, 2 * size), r.values(batch * cout * 4 * size * size), b)
    return {
      let g = b.convTranspose2x2Backward(input: x, weight: w, gradOutput: dy)
      return [g.gradInput.data, g.gradWeight, g.gradBias]
    }
  }
}

struct BatchNormProbe: SizedProbeKernel {
  var channels: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(channels * 100 + size + 3))
    let shape = Shape(batch, channels, size, size)
    let x = probeCast(shape, r.values(shape.count, scale: 2, offset: 0.5), b)
    let weight = probeCast(r.values(channels, scale: 0.5, offset: 1), b)
    let bias = probeCast(r.values(channels), b)
    let mean = probeCast(r.values(channels), b)
    let variance = probeCast(r.values(channels, scale: 0.5, offset: 1), b)
    if !backward {
      return {
        var m = mean, v = variance
        let y = b.batchNormForward(input: x, weight: weight, bias: bias, runningMean: &m, runningVariance: &v, training: true)
        return [y.output.data, m, v]
      }
    }
    var m = mean, v = variance
    let saved = b.batchNormForward(input: x, weight: weight, bias: bias, runningMean: &m, runningVariance: &v, training: true).saved
    let dy = probeCast(shape, r.values(shape.count), b)
    return {
      let g = b.batchNormBackward(input: x, weight: weight, saved: saved, gradOutput: dy)
      return [g.gradInput.data, g.gradWeight, g.gradBias]
    }
  }
}

struct ReLUProbe: SizedProbeKernel {
  var channels: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(channels * 100 + size + 4))
    let shape = Shape(batch, channels, size, size)
    let x = probeCast(shape, r.values(shape.count), b)
    if !backward { return { [b.reluForward(input: x).data] } }
    let y = b.reluForward(input: x)
    let dy = probeCast(shape, r.values(shape.count), b)
    return { [b.reluBackward(output: y, gradOutput: dy).data] }
  }
}

struct MaxPoolProbe: SizedProbeKernel {
  var channels: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(channels * 100 + size + 5))
    let shape = Shape(batch, channels, size, size)
    let x = probeCast(shape, r.values(shape.count), b)
    if !backward { return { [b.maxPool2x2Forward(input: x).data] } }
    let dy = probeCast(Shape(batch, channels, size / 2, size / 2), r.values(shape.count / 4), b)
    return { [b.maxPool2x2Backward(input: x, gradOutput: dy).data] }
  }
}

struct ConcatProbe: SizedProbeKernel {
  var channels: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(channels * 100 + size + 6))
    let shape = Shape(batch, channels, size, size)
    let first = probeCast(shape, r.values(shape.count), b)
    let second = probeCast(shape, r.values(shape.count), b)
    if !backward { return { [b.concatChannels(first, second).data] } }
    let joined = b.concatChannels(first, second)
    return {
      let (p, q) = b.splitChannels(joined, firstChannels: channels)
      return [p.data, q.data]
    }
  }
}

struct WarpProbe: SizedProbeKernel {
  var channels: Int, size: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(channels * 100 + size + 7))
    let shape = Shape(batch, channels, size, size)
    let x = probeCast(shape, r.values(shape.count), b)
    var rng = SplitMix64(seed: 7, stream: 1)
    let affines = (0..<batch).map { _ in sampleSpatialTransform(rng: &rng).affine }
    if !backward { return { [b.warpForward(input: x, affines: affines).data] } }
    return { [b.warpBackward(gradOutput: x, affines: affines).data] }
  }
}

struct L2NormalizeProbe: ProbeKernel {
  var rows: Int, columns: Int, backward: Bool
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(rows + columns + 8))
    let shape = Shape(rows, columns, 1, 1)
    let x = probeCast(shape, r.values(shape.count), b)
    if !backward { return { [b.l2NormalizeForward(input: x).data] } }
    let dy = probeCast(shape, r.values(shape.count), b)
    return { [b.l2NormalizeBackward(input: x, gradOutput: dy).data] }
  }
}

struct InfoNCEProbe: ProbeKernel {
  var rows: Int, columns: Int
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(rows + columns + 9))
    let shape = Shape(rows, columns, 1, 1)
    // Unit rows, rounded to Float after normalising.
    func unitRows() -> Tensor<B.Scalar> {
      var values = [Double]()
      for _ in 0..<rows {
        let row = r.values(columns)
        let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
        values += row.map { Double(Float($0 / norm)) }
      }
      return probeCast(shape, values, b)
    }
    let z = unitRows(), zPrime = unitRows()
    return {
      let l = b.infoNCE(z: z, zPrime: zPrime, temperature: InfoNCEConstants.temperature)
      return [[B.Scalar(l.loss)], l.gradZ.data, l.gradZPrime.data]
    }
  }
}

struct BarlowTwinsProbe: ProbeKernel {
  var rows: Int, columns: Int
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(rows + columns + 10))
    let shape = Shape(rows, columns, 1, 1)
    let base = r.values(shape.count)
    let z = probeCast(shape, base, b)
    let zPrime = probeCast(shape, zip(base, r.values(shape.count, scale: 0.5)).map { Double(Float($0 + $1)) }, b)
    return {
      let l = b.barlowTwins(z: z, zPrime: zPrime, lambda: BarlowTwinsConstants.lambda)
      return [[B.Scalar(l.loss)], l.gradZ.data, l.gradZPrime.data]
    }
  }
}

/// The intensity augmentation of a downstream batch: images in [0, 1), the protocol's own draws
/// (`sampleIntensityParameters`), one per slice.
struct IntensityAugmentationProbe: SizedProbeKernel {
  var size: Int
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(size + 13))
    let shape = Shape(batch, 1, size, size)
    let images = probeCast(shape, r.values(shape.count, scale: 0.5, offset: 0.5), b)
    var rng = SplitMix64(seed: 13)
    let parameters = (0..<batch).map { _ in sampleIntensityParameters(rng: &rng) }
    return { [b.augmentIntensity(batch: images, parameters: parameters).data] }
  }
}

struct SoftDiceProbe: SizedProbeKernel {
  var classes: Int, size: Int
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(classes + size + 11))
    let shape = Shape(batch, classes, size, size)
    let logits = probeCast(shape, r.values(shape.count, scale: 3), b)
    var rng = SplitMix64(seed: 11)
    let labels = (0..<(batch * size * size)).map { _ in UInt8(rng.int(below: classes)) }
    return {
      let l = b.softDiceLoss(logits: logits, labels: labels)
      return [[B.Scalar(l.loss)], l.gradLogits.data]
    }
  }
}

struct AdamProbe: ProbeKernel {
  var count: Int
  func prepare<B: Backend>(_ b: B, batch: Int) -> () -> [[B.Scalar]] {
    var r = ProbeInputs(UInt64(count + 12))
    let values = probeCast(r.values(count), b)
    let gradients = probeCast(r.values(count, scale: 0.1), b)
    let first = probeCast(r.values(count, scale: 0.01), b)
    let second = probeCast(r.values(count, scale: 0.005, offset: 0.005), b)
    return {
      var v = values, m = first, s = second
      b.adamUpdate(
        values: &v, gradients: gradients, firstMoment: &m, secondMoment: &s, range: 0..<count, learningRate: 4.7e-4,
        hyper: AdamHyperparameters(), step: 3)
      return [v, m, s]
    }
  }
}
