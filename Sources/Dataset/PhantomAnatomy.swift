import Foundation
import Reference

/// One phantom patient's anatomy and acquisition, drawn once from the patient's own random stream
/// (docs/PHANTOM.md, "Anatomy, per patient"). Lengths are reference pixels (128-pixel grid), angles
/// radians, y down. `d` is the difficulty.
struct PhantomAnatomy {
  var group: PathologyGroup
  var sliceCount: Int

  // MARK: Intensities (docs/PHANTOM.md, each jittered by U(-0.06, 0.06) d)
  var fat, muscle, lung, liver, marrow, bone, blood, myocardium, vessel, mediastinum: Double

  // MARK: Thorax
  var body: Ellipse
  var fatThickness: Double
  var lungCavity: Ellipse
  var mediastinumRegion: Ellipse
  var vertebra: Ellipse
  var aorta: Ellipse
  var liverEllipse: Ellipse
  /// Fraction of the stack after which the liver is gone.
  var liverEnd: Double
  /// Per slice: vessel dots in the lungs (x, y, radius).
  var vessels: [[(Double, Double, Double)]]

  // MARK: Heart (base values at end-diastole)
  var heartX, heartY: Double
  /// Per slice misregistration (breath-hold), and a linear drift of the LV axis base to apex.
  var sliceShift: [(Double, Double)]
  var drift: (Double, Double)
  var cavityRadius: Double  // R0
  var eccentricity: Double
  var cavityAngle: Double
  var wall: Double  // T0
  var systolicShrink: Double
  var systolicThickening: Double
  var rvDirection: Double
  var rvDepth: Double
  var rvWrap: Double
  /// Fraction of the stack after which the RV is gone.
  var rvEnd: Double
  var rvSystolicShrink: Double
  var rvWall: Double
  /// MINF: the thinned sector (direction, half width).
  var infarct: (direction: Double, halfWidth: Double)?
  var papillaryAngles: [Double]
  var papillaryRadius: Double
  /// Per slice: trabeculations (angle, radial fraction of the cavity radius, radius).
  var trabeculations: [[(Double, Double, Double)]]
  var epicardialFat: (direction: Double, halfWidth: Double, thickness: Double)?
  /// Outflow tract blob: (direction, radius as a fraction of R0, number of basal slices).
  var outflow: (direction: Double, radiusFraction: Double, slices: Int)?

  // MARK: Acquisition (image formation steps 1-6)
  var rotation: Double
  /// Three sinusoids: displacement direction (ex, ey), wave vector (kx, ky) in cycles per
  /// reference pixel, phase, amplitude.
  var displacement: [(ex: Double, ey: Double, kx: Double, ky: Double, phase: Double, amplitude: Double)]
  var blurSigma: Double
  var ghost: (alongX: Bool, shift: Double, weight: Double)?
  /// Bias: strength 0.3 d U(0.5, 1) and the six coefficients of P (1, x, y, x^2, xy, y^2).
  var biasStrength: Double
  var biasCoefficients: [Double]
  var gamma: Double
  var noiseSigma: Double

  // MARK: Info.cfg
  var frameCount: Int
  var endSystoleFrame: Int
  var height: Double
  var weight: Double

  /// Draws a patient of `group` at difficulty `d` from `rng`. The number of values drawn does not
  /// depend on the grid size.
  init(group: PathologyGroup, difficulty d: Double, rng: inout SplitMix64) {
    self.group = group
    sliceCount = 8 + rng.int(below: 5)
    func jitter(_ value: Double) -> Double { value + rng.uniform(-0.06, 0.06) * d }
    fat = jitter(0.85)
    muscle = jitter(0.33)
    lung = max(0.0, jitter(0.06))
    liver = jitter(0.45)
    marrow = jitter(0.50)
    bone = max(0.0, jitter(0.12))
    blood = jitter(0.88 - rng.uniform(0, 0.08) * d)
    myocardium = jitter(0.27 + rng.uniform(0, 0.06) * d)
    vessel = jitter(0.60)
    mediastinum = jitter(0.38)

    // Thorax.
    let bodyX = 64 + rng.uniform(-4, 4) * d, bodyY = 64 + rng.uniform(-4, 4) * d
    body = Ellipse(cx: bodyX, cy: bodyY, a: rng.uniform(56, 63), b: rng.uniform(44, 51))
    fatThickness = rng.uniform(3, 6)
    lungCavity = Ellipse(
      cx: bodyX, cy: bodyY, a: body.a - fatThickness - rng.uniform(3, 7),
      b: body.b - fatThickness - rng.uniform(3, 7))
    let posteriorY = bodyY + lungCavity.b * 0.62
    mediastinumRegion = Ellipse(
      cx: bodyX + rng.uniform(-3, 3), cy: posteriorY, a: rng.uniform(14, 18), b: rng.uniform(10, 13))
    let vertebraRadius = rng.uniform(7.5, 10)
    vertebra = Ellipse(cx: bodyX + rng.uniform(-2, 2), cy: bodyY + lungCavity.b * 0.8, a: vertebraRadius, b: vertebraRadius)
    let aortaRadius = rng.uniform(4.5, 6.5)
    let side: Double = rng.bernoulli(0.5) ? -1 : 1
    aorta = Ellipse(
      cx: vertebra.cx + side * (vertebraRadius + aortaRadius + rng.uniform(0.5, 2.5)),
      cy: vertebra.cy - vertebraRadius * rng.uniform(0.4, 0.9), a: aortaRadius, b: aortaRadius)

    // Heart placement and shape.
    heartX = 64 + rng.uniform(-10, 10)
    heartY = 64 + rng.uniform(-10, 10)
    sliceShift = (0..<sliceCount).map { _ in (rng.uniform(-1.5, 1.5) * d, rng.uniform(-1.5, 1.5) * d) }
    drift = (rng.uniform(-3, 3), rng.uniform(-3, 3))
    cavityRadius = rng.uniform(13, 17)
    eccentricity = rng.uniform(1, 1.12)
    cavityAngle = rng.uniform(0, Double.pi)
    wall = rng.uniform(3, 5)
    systolicShrink = rng.uniform(0.60, 0.78)
    systolicThickening = rng.uniform(1.3, 1.6)
    rvDirection = Double.pi + rng.uniform(0.15, 0.6)
    rvDepth = rng.uniform(7, 12)
    rvWrap = rng.uniform(1.25, 1.6)
    rvEnd = rng.uniform(0.7, 0.95)
    rvSystolicShrink = rng.uniform(0.55, 0.75)
    rvWall = rng.uniform(1.0, 1.8)
    infarct = nil

    // Pathology (docs/PHANTOM.md, "Pathology groups change the heart").
    switch group {
    case .nor:
      break
    case .dcm:
      cavityRadius *= rng.uniform(1.3, 1.6)
      wall *= 0.7
      systolicShrink = rng.uniform(0.85, 0.95)
      systolicThickening = 1 + (systolicThickening - 1) * 0.3
    case .hcm:
      wall *= rng.uniform(1.8, 2.5)
      cavityRadius *= rng.uniform(0.7, 0.85)
      systolicShrink = rng.uniform(0.35, 0.55)
    case .minf:
      infarct = (rng.uniform(0, 2 * Double.pi), rng.uniform(60, 120) * Double.pi / 360)
      systolicShrink = rng.uniform(0.8, 0.9)
    case .rv:
      rvDepth *= rng.uniform(1.5, 2)
      // Deviation: the wrap is capped at 2 x the LV radius (a wider crescent leaves the thorax).
      rvWrap = min(2.0, rvWrap * rng.uniform(1.5, 2))
    }

    // Inside the cavity, and the distractors.
    let opposite = rvDirection + Double.pi
    papillaryAngles = [opposite - rng.uniform(0.6, 0.9), opposite + rng.uniform(0.6, 0.9)]
    papillaryRadius = rng.uniform(1.5, 2.5)
    trabeculations = (0..<sliceCount).map { _ in
      (0..<(5 + rng.int(below: 8))).map { _ in
        (rng.uniform(0, 2 * Double.pi), rng.uniform(0.85, 0.98), rng.uniform(0.5, 1.1))
      }
    }
    epicardialFat = nil
    if rng.bernoulli(min(1, 0.3 + 0.4 * d)) {
      epicardialFat = (opposite + rng.uniform(-0.8, 0.8), rng.uniform(0.5, 1.1), rng.uniform(1.5, 3.5))
    }
    outflow = nil
    if rng.bernoulli(min(1, 0.5 * d)) {
      outflow = (rvDirection + rng.uniform(0.7, 1.3), rng.uniform(0.45, 0.65), 1 + rng.int(below: 2))
    }

    // Lungs: vessel dots per slice, uniform in the lung cavity (rejection, bounded).
    let lungs = lungCavity
    vessels = (0..<sliceCount).map { _ in
      var dots: [(Double, Double, Double)] = []
      for _ in 0..<rng.poisson(6 * d) {
        for _ in 0..<20 {
          let x = lungs.cx + rng.uniform(-1, 1) * lungs.a, y = lungs.cy + rng.uniform(-1, 1) * lungs.b
          if lungs.signedDistance(x, y) < -2 {
            dots.append((x, y, rng.uniform(0.7, 1.6)))
            break
          }
        }
      }
      return dots
    }

    // Liver.
    liverEllipse = Ellipse(
      cx: heartX - rng.uniform(18, 28), cy: heartY + rng.uniform(20, 30), a: rng.uniform(22, 30),
      b: rng.uniform(16, 22), angle: rng.uniform(-0.4, 0.4))
    liverEnd = rng.uniform(0.35, 0.7)

    // Acquisition.
    rotation = rng.uniform(-30, 30) * d * Double.pi / 180
    let amplitude = rng.uniform(2, 4) * d
    displacement = (0..<3).map { _ in
      let e = rng.uniform(0, 2 * Double.pi), k = rng.uniform(0, 2 * Double.pi)
      let frequency = rng.uniform(0.5, 1.5) / 128
      return (cos(e), sin(e), frequency * cos(k), frequency * sin(k), rng.uniform(0, 2 * Double.pi), amplitude / 2)
    }
    blurSigma = rng.uniform(0.5, 0.9)
    ghost = nil
    if rng.bernoulli(max(0, min(1, 0.4 * (d - 0.5)))) {
      ghost = (rng.bernoulli(0.5), rng.uniform(20, 40), rng.uniform(0.04, 0.12) * d)
    }
    biasStrength = 0.3 * d * rng.uniform(0.5, 1)
    biasCoefficients = (0..<6).map { _ in rng.uniform(-1, 1) }
    gamma = exp(rng.uniform(-0.3, 0.3) * d)
    noiseSigma = rng.uniform(0.02, 0.06) * d

    frameCount = 20 + rng.int(below: 16)
    endSystoleFrame = max(2, Int((Double(frameCount) * rng.uniform(0.3, 0.45)).rounded()))
    height = rng.uniform(150, 195)
    weight = rng.uniform(50, 110)
  }

  // MARK: - Slices

  /// Position of slice k from base (0) to apex (1).
  func stackPosition(_ k: Int) -> Double { sliceCount > 1 ? Double(k) / Double(sliceCount - 1) : 0 }

  /// The structures of slice k in the given phase, back to front.
  func layers(slice k: Int, phase: CardiacPhase) -> [Layer] {
    let t = stackPosition(k)
    let systole = phase == .es
    var layers: [Layer] = []
    func paint(_ region: Region, _ intensity: Double, _ label: UInt8 = 0) {
      layers.append(Layer(region: region, intensity: intensity, label: label))
    }

    // Thorax.
    paint(.ellipse(body), fat)
    paint(.ellipse(body.grown(-fatThickness)), muscle)
    paint(.ellipse(lungCavity), lung)
    for (x, y, r) in vessels[k] { paint(.ellipse(Ellipse(cx: x, cy: y, a: r, b: r)), vessel) }
    paint(.ellipse(mediastinumRegion), mediastinum)
    paint(.ellipse(aorta), blood * 0.95)
    paint(.ellipse(vertebra), bone)
    paint(.ellipse(vertebra.grown(-2)), marrow)
    if t < liverEnd {
      let size = (1 - (t / liverEnd) * (t / liverEnd)).squareRoot()
      paint(.clipped(liverEllipse.scaled(size), to: lungCavity.grown(1)), liver)
    }

    // Heart geometry of this slice.
    let cx = heartX + sliceShift[k].0 + drift.0 * t
    let cy = heartY + sliceShift[k].1 + drift.1 * t
    let shrink = systole ? systolicShrink : 1
    let radius = cavityRadius * max(0, 1 - t * t).squareRoot() * shrink
    let cavity = Ellipse(cx: cx, cy: cy, a: radius * eccentricity, b: radius, angle: cavityAngle)
    let thickening = systole ? systolicThickening : 1
    let baseThickness = wall * (1 + 0.25 * t)
    let thickness: [Double] = (0..<72).map { i in
      let angle = Double(i) * 2 * Double.pi / 72
      guard let infarct else { return baseThickness * thickening }
      // Thinned to 0.5x in the sector (no systolic thickening), tapered over 15 degrees.
      let delta = abs(remainder(angle - infarct.direction, 2 * Double.pi))
      let taper = min(1, max(0, (delta - infarct.halfWidth) / (15 * Double.pi / 180)))
      return baseThickness * (0.5 * (1 - taper) + thickening * taper)
    }
    let outerRadius = radius + baseThickness * thickening

    // RV crescent: an ellipse reaching from inside the LV to depth beyond its epicardium,
    // later covered by the LV myocardium.
    if t < rvEnd {
      let fade = max(0, 1 - (t / rvEnd) * (t / rvEnd)).squareRoot()
      let depth = rvDepth * fade * (systole ? rvSystolicShrink : 1)
      if depth > 0.5 {
        let near = -0.3 * outerRadius
        let halfLength = (outerRadius + depth - near) / 2
        let centre = near + halfLength
        // Wrap: the crescent's half-width is rvWrap times the LV radius (end-diastolic, this slice).
        let lvRadius = cavityRadius * max(0, 1 - t * t).squareRoot() + 0.5 * baseThickness
        let rv = Ellipse(
          cx: cx + cos(rvDirection) * centre, cy: cy + sin(rvDirection) * centre, a: halfLength,
          b: rvWrap * lvRadius * (systole ? 0.92 : 1), angle: rvDirection)
        paint(.ellipse(rv.grown(rvWall)), myocardium)
        paint(.ellipse(rv), blood, 1)
      }
    }
    if let fatRim = epicardialFat {
      let grown = cavity.grown(baseThickness * thickening + fatRim.thickness)
      paint(.sector(grown, direction: fatRim.direction, halfWidth: fatRim.halfWidth), fat)
    }
    paint(.dilated(cavity, thickness: thickness), myocardium, 2)
    if radius > 0.5 {
      paint(.ellipse(cavity), blood, 3)
      if radius > 4 {
        for angle in papillaryAngles {
          let r = radius * 0.62
          let size = papillaryRadius * min(1, radius / (cavityRadius * 0.6))
          paint(.ellipse(Ellipse(cx: cx + cos(angle) * r, cy: cy + sin(angle) * r, a: size, b: size * 1.3, angle: angle)), myocardium, 3)
        }
      }
      if radius > 3 {
        for (angle, fraction, size) in trabeculations[k] {
          let r = radius * fraction
          paint(.ellipse(Ellipse(cx: cx + cos(angle) * r, cy: cy + sin(angle) * r, a: size, b: size)), myocardium, 3)
        }
      }
    }
    if let outflow, k < outflow.slices {
      let r = cavityRadius * outflow.radiusFraction
      let distance = radius + baseThickness * 0.5
      paint(
        .ellipse(Ellipse(cx: cx + cos(outflow.direction) * distance, cy: cy + sin(outflow.direction) * distance, a: r, b: r * 0.8, angle: outflow.direction)),
        blood, 0)
    }
    return layers
  }
}
