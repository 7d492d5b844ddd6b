import Foundation
import Reference

/// Image formation of one phantom frame (docs/PHANTOM.md, "Image formation" steps 1-7).
///
/// Layout of every buffer: G x G x n, x fastest, then y, then slice (NIfTI order).
enum PhantomImaging {
  /// Paints every slice of a frame through the patient's geometric warp (step 1): output pixel p
  /// (reference coordinates of its centre) shows the anatomy at
  /// `q = c + R(-rotation) (p - c) + D(p)`, c the grid centre and D the sum of three sinusoids.
  /// Each layer's coverage is `clamp(0.5 - distance / w, 0, 1)` with w one output pixel: a soft,
  /// anti-aliased edge. A pixel's label is that of the last layer covering at least half of it.
  static func paint(_ anatomy: PhantomAnatomy, phase: CardiacPhase, gridSize g: Int) -> (image: [Double], labels: [UInt8]) {
    let n = anatomy.sliceCount
    let step = 128 / Double(g)  // Reference pixels per output pixel.
    var image = [Double](repeating: 0, count: g * g * n)
    var labels = [UInt8](repeating: 0, count: g * g * n)
    let c = cos(-anatomy.rotation), s = sin(-anatomy.rotation)
    // The warp is the same for every slice and both frames.
    var warpX = [Double](repeating: 0, count: g * g), warpY = [Double](repeating: 0, count: g * g)
    for j in 0..<g {
      for i in 0..<g {
        let px = (Double(i) + 0.5) * step, py = (Double(j) + 0.5) * step
        var qx = 64 + c * (px - 64) - s * (py - 64)
        var qy = 64 + s * (px - 64) + c * (py - 64)
        for wave in anatomy.displacement {
          let value = wave.amplitude * sin(2 * Double.pi * (wave.kx * px + wave.ky * py) + wave.phase)
          qx += wave.ex * value
          qy += wave.ey * value
        }
        warpX[j * g + i] = qx
        warpY[j * g + i] = qy
      }
    }
    // Tiles of 8 x 8 output pixels and the bounding box of their anatomy coordinates.
    let tile = 8
    let tiles = (g + tile - 1) / tile
    var tileBoxes: [(x0: Double, x1: Double, y0: Double, y1: Double)] = []
    for tj in 0..<tiles {
      for ti in 0..<tiles {
        var box = (x0: Double.infinity, x1: -Double.infinity, y0: Double.infinity, y1: -Double.infinity)
        for j in (tj * tile)..<min(g, (tj + 1) * tile) {
          for i in (ti * tile)..<min(g, (ti + 1) * tile) {
            box.x0 = min(box.x0, warpX[j * g + i]); box.x1 = max(box.x1, warpX[j * g + i])
            box.y0 = min(box.y0, warpY[j * g + i]); box.y1 = max(box.y1, warpY[j * g + i])
          }
        }
        tileBoxes.append(box)
      }
    }
    for k in 0..<n {
      let layers = anatomy.layers(slice: k, phase: phase)
      // Culling: a pixel farther than radius + one pixel from a layer's bounding circle is
      // untouched by it (coverage 0), so its signed distance is not computed. A tile keeps only
      // the layers whose grown circle meets its box; pixels still test each kept layer, so the
      // result is the same as testing every layer at every pixel.
      let bounds = layers.map { layer in
        let circle = layer.region.boundingCircle
        return (circle.x, circle.y, circle.radius + step)
      }
      let offset = k * g * g
      var kept: [Int] = []
      for tj in 0..<tiles {
        for ti in 0..<tiles {
          let box = tileBoxes[tj * tiles + ti]
          kept.removeAll(keepingCapacity: true)
          for (index, (bx, by, r)) in bounds.enumerated() {
            let dx = max(box.x0 - bx, 0, bx - box.x1), dy = max(box.y0 - by, 0, by - box.y1)
            if dx * dx + dy * dy <= r * r { kept.append(index) }
          }
          for j in (tj * tile)..<min(g, (tj + 1) * tile) {
            for i in (ti * tile)..<min(g, (ti + 1) * tile) {
              let p = j * g + i
              let qx = warpX[p], qy = warpY[p]
              var value = 0.01
              var label: UInt8 = 0
              for index in kept {
                let (bx, by, r) = bounds[index]
                if (qx - bx) * (qx - bx) + (qy - by) * (qy - by) > r * r { continue }
                let distance = layers[index].region.signedDistance(qx, qy)
                if distance >= 0.5 * step { continue }
                let alpha = min(1, 0.5 - distance / step)
                value += (layers[index].intensity - value) * alpha
                if distance <= 0 { label = layers[index].label }
              }
              image[offset + p] = value
              labels[offset + p] = label
            }
          }
        }
      }
    }
    return (image, labels)
  }

  /// Steps 2-7 on a painted frame. `noise` draws the Rician noise of this frame only.
  static func acquire(_ painted: [Double], _ anatomy: PhantomAnatomy, gridSize g: Int, noise: inout SplitMix64) -> [Double] {
    let n = anatomy.sliceCount
    var image = painted
    // 2. Partial-volume blur, sigma in reference pixels converted to output pixels.
    let sigma = anatomy.blurSigma * Double(g) / 128
    for k in 0..<n { blur(&image, offset: k * g * g, size: g, sigma: sigma) }
    // 3. Ghosting: a copy shifted (circularly, as aliasing does) along one axis.
    if let ghost = anatomy.ghost {
      let shift = Int((ghost.shift * Double(g) / 128).rounded())
      let source = image
      for k in 0..<n {
        let offset = k * g * g
        for j in 0..<g {
          for i in 0..<g {
            let (si, sj) = ghost.alongX ? ((i - shift + g) % g, j) : (i, (j - shift + g) % g)
            image[offset + j * g + i] += ghost.weight * source[offset + sj * g + si]
          }
        }
      }
    }
    // 4. Bias field 1 + strength P(x, y), P quadratic with max |P| = 1 on the grid, floored at 0.2.
    var field = [Double](repeating: 0, count: g * g)
    let a = anatomy.biasCoefficients
    for j in 0..<g {
      for i in 0..<g {
        let x = 2 * (Double(i) + 0.5) / Double(g) - 1, y = 2 * (Double(j) + 0.5) / Double(g) - 1
        field[j * g + i] = a[0] + a[1] * x + a[2] * y + a[3] * x * x + a[4] * x * y + a[5] * y * y
      }
    }
    let peak = max(field.map(abs).max() ?? 1, 1e-12)
    for p in 0..<(g * g) { field[p] = max(0.2, 1 + anatomy.biasStrength * field[p] / peak) }
    for k in 0..<n {
      for p in 0..<(g * g) {
        // 5. Gamma (on the non-negative signal).
        image[k * g * g + p] = pow(max(0, image[k * g * g + p] * field[p]), anatomy.gamma)
      }
    }
    // 6. Rician noise: |x + n1 + i n2|.
    for v in 0..<image.count {
      let n1 = noise.normal() * anatomy.noiseSigma, n2 = noise.normal() * anatomy.noiseSigma
      image[v] = ((image[v] + n1) * (image[v] + n1) + n2 * n2).squareRoot()
    }
    // 7. Clip to the frame's 1st-99th percentiles and rescale to [0, 1].
    let window = Percentile.of(image, [1, 99])
    let lo = window[0], hi = window[1]
    let scale = hi > lo ? 1 / (hi - lo) : 0
    for v in 0..<image.count { image[v] = (min(max(image[v], lo), hi) - lo) * scale }
    return image
  }

  /// Separable Gaussian blur of one size x size plane, truncated at 3 sigma, edges clamped.
  static func blur(_ image: inout [Double], offset: Int, size: Int, sigma: Double) {
    guard sigma > 0.05 else { return }
    let radius = max(1, Int((3 * sigma).rounded(.up)))
    var kernel = (-radius...radius).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
    let total = kernel.reduce(0, +)
    kernel = kernel.map { $0 / total }
    var temp = [Double](repeating: 0, count: size * size)
    for j in 0..<size {
      for i in 0..<size {
        var sum = 0.0
        for (t, w) in kernel.enumerated() {
          sum += w * image[offset + j * size + min(max(i + t - radius, 0), size - 1)]
        }
        temp[j * size + i] = sum
      }
    }
    for j in 0..<size {
      for i in 0..<size {
        var sum = 0.0
        for (t, w) in kernel.enumerated() {
          sum += w * temp[min(max(j + t - radius, 0), size - 1) * size + i]
        }
        image[offset + j * size + i] = sum
      }
    }
  }
}
