import Foundation

/// One preprocessed 2D slice, ready for training.
///
/// Layout: `image` and `label` are S x S, row-major, y then x (index `y * S + x`), where x is the
/// first NIfTI axis and y the second.
public struct PreparedSlice: Sendable, Equatable {
  /// Intensities in [0, 1] (clipped to the volume's 1st-99th percentiles, then rescaled).
  public var image: [Float]
  /// 0 background, 1 RV cavity, 2 myocardium, 3 LV cavity.
  public var label: [UInt8]
  /// The ACDC patient number (1 ... 150).
  public var patient: Int
  public var phase: CardiacPhase
  /// The slice's z index in the original volume.
  public var sliceIndex: Int

  public init(image: [Float], label: [UInt8], patient: Int, phase: CardiacPhase, sliceIndex: Int) {
    self.image = image
    self.label = label
    self.patient = patient
    self.phase = phase
    self.sliceIndex = sliceIndex
  }
}

/// Where a prepared volume came from, enough to map predictions back to the original grid and
/// export them as NIfTI.
public struct VolumeGeometry: Sendable, Equatable {
  /// (nx, ny, nz) of the original image.
  public var originalShape: [Int]
  /// pixdim of the original image (x, y, z), mm.
  public var spacing: [Double]
  /// The orientation fields of the original image (for exporting predictions on its grid).
  public var orientation: NIfTIGeometry
  /// The in-plane crop, half-open ranges of x and y in the original grid.
  public var cropX: Range<Int>
  public var cropY: Range<Int>
  /// S: every kept slice is S x S.
  public var size: Int
  /// The intensity window (1st and 99th percentiles of the cropped volume) mapped to [0, 1].
  public var intensityWindow: ClosedRange<Double>
  /// z indices of the kept slices, ascending (those whose resized label map is not empty).
  public var keptSlices: [Int]

  public init(
    originalShape: [Int], spacing: [Double], orientation: NIfTIGeometry, cropX: Range<Int>, cropY: Range<Int>,
    size: Int, intensityWindow: ClosedRange<Double>, keptSlices: [Int]
  ) {
    self.originalShape = originalShape
    self.spacing = spacing
    self.orientation = orientation
    self.cropX = cropX
    self.cropY = cropY
    self.size = size
    self.intensityWindow = intensityWindow
    self.keptSlices = keptSlices
  }
}

/// A preprocessed ED or ES volume: its kept slices in ascending z, and its geometry.
public struct PreparedVolume: Sendable, Equatable {
  public var patient: Int
  public var group: PathologyGroup
  public var phase: CardiacPhase
  public var slices: [PreparedSlice]
  public var geometry: VolumeGeometry

  public init(patient: Int, group: PathologyGroup, phase: CardiacPhase, slices: [PreparedSlice], geometry: VolumeGeometry) {
    self.patient = patient
    self.group = group
    self.phase = phase
    self.slices = slices
    self.geometry = geometry
  }
}

/// The preprocessing of docs/PROTOCOL.md section 1 (the authors' code, with our stated deviations).
///
/// For each ED/ES volume:
/// 1. Crop in-plane to the bounding box of all labelled voxels of the volume (over all slices),
///    plus `margin` pixels on every side, clamped to the image. (The code's upper bound is
///    exclusive, giving margin - 1 pixels beyond the last labelled voxel; ours is symmetric.)
/// 2. Clip intensities to the cropped volume's `lowerPercentile` and `upperPercentile`
///    (linear interpolation between order statistics, as numpy.percentile and torch.quantile),
///    then rescale to [0, 1] (deviation: the code stops at clipping). Labels are never clipped.
/// 3. Resize each slice to `size` x `size`. Images: bilinear with align_corners = false (pixel
///    centres at half-integers: source coordinate `(d + 0.5) * in / out - 0.5`, clamped to the
///    image), as torch's `F.interpolate(mode: "bilinear", align_corners=False)`. Labels: nearest
///    neighbour on the same half-pixel grid, source index `floor((d + 0.5) * in / out)` (torch's
///    "nearest-exact"), so labels and images stay aligned. (Deviation: the code uses
///    nearest-neighbour for the images too.) The crop is not square: the resize changes the
///    aspect ratio, as in the code.
/// 4. Keep only slices whose resized label map is not empty.
public struct Preprocessing: Sendable, Equatable {
  /// S, the side of the resized slices (128 in the paper).
  public var size: Int
  public var margin: Int
  public var lowerPercentile: Double
  public var upperPercentile: Double

  public init(size: Int = 128, margin: Int = 10, lowerPercentile: Double = 1, upperPercentile: Double = 99) {
    precondition(size >= 1 && margin >= 0, "size must be positive and margin non-negative")
    precondition(0 <= lowerPercentile && lowerPercentile <= upperPercentile && upperPercentile <= 100)
    self.size = size
    self.margin = margin
    self.lowerPercentile = lowerPercentile
    self.upperPercentile = upperPercentile
  }

  /// Preprocesses one image volume and its label volume.
  /// - Parameters:
  ///   - image, labels: 3D volumes of the same shape (a 2D volume is one slice; a 4D volume with
  ///     one frame is accepted).
  ///   - imageFile, labelFile: names for error messages.
  /// - Throws: `DataError` naming the label file for a shape mismatch or a label value outside
  ///   0...3, and the image file for non-finite intensities.
  public func prepare(
    image: NIfTIVolume, labels: NIfTIVolume, patient: Int, group: PathologyGroup, phase: CardiacPhase,
    imageFile: String, labelFile: String
  ) throws(DataError) -> PreparedVolume {
    guard let shape = Self.volumeShape(image.shape) else {
      throw DataError(file: imageFile, "expected a 3D volume, got shape \(image.shape)")
    }
    guard Self.volumeShape(labels.shape) == shape else {
      throw DataError(file: labelFile, "label shape \(labels.shape) differs from the image shape \(image.shape)")
    }
    let (nx, ny, nz) = (shape[0], shape[1], shape[2])
    var labelBytes = [UInt8](repeating: 0, count: labels.count)
    for (i, v) in labels.values.enumerated() {
      guard v == 0 || v == 1 || v == 2 || v == 3 else {
        let (x, y, z) = (i % nx, (i / nx) % ny, i / (nx * ny))
        throw DataError(file: labelFile, "label value \(v) at voxel (\(x), \(y), \(z)) is outside 0-3")
      }
      labelBytes[i] = UInt8(v)
    }
    if let bad = image.values.firstIndex(where: { !$0.isFinite }) {
      throw DataError(file: imageFile, "intensity \(image.values[bad]) at voxel \(bad) is not finite")
    }

    // 1. Crop box.
    var (x0, x1, y0, y1) = (nx, -1, ny, -1)
    for z in 0..<nz {
      for y in 0..<ny {
        for x in 0..<nx where labelBytes[x + nx * (y + ny * z)] != 0 {
          x0 = min(x0, x); x1 = max(x1, x); y0 = min(y0, y); y1 = max(y1, y)
        }
      }
    }
    let cropX: Range<Int>, cropY: Range<Int>
    if x1 < 0 {  // No labelled voxel: keep the whole image (every slice will be dropped).
      (cropX, cropY) = (0..<nx, 0..<ny)
    } else {
      cropX = max(0, x0 - margin)..<min(nx, x1 + margin + 1)
      cropY = max(0, y0 - margin)..<min(ny, y1 + margin + 1)
    }
    let (w, h) = (cropX.count, cropY.count)

    // 2. Intensity window over the cropped volume.
    var cropped = [Double]()
    cropped.reserveCapacity(w * h * nz)
    for z in 0..<nz {
      for y in cropY { for x in cropX { cropped.append(image.values[x + nx * (y + ny * z)]) } }
    }
    let window = Percentile.of(cropped, [lowerPercentile, upperPercentile])
    let (lo, hi) = (window[0], window[1])
    let scale = hi > lo ? 1 / (hi - lo) : 0

    // 3-4. Resize and filter each slice.
    var slices: [PreparedSlice] = []
    var kept: [Int] = []
    var planeImage = [Double](repeating: 0, count: w * h)
    var planeLabel = [UInt8](repeating: 0, count: w * h)
    for z in 0..<nz {
      for (j, y) in cropY.enumerated() {
        for (i, x) in cropX.enumerated() {
          let v = image.values[x + nx * (y + ny * z)]
          planeImage[j * w + i] = (min(max(v, lo), hi) - lo) * scale
          planeLabel[j * w + i] = labelBytes[x + nx * (y + ny * z)]
        }
      }
      let label = Self.resizeNearest(planeLabel, width: w, height: h, size: size)
      guard label.contains(where: { $0 != 0 }) else { continue }
      let resized = Self.resizeBilinear(planeImage, width: w, height: h, size: size)
      slices.append(
        PreparedSlice(image: resized.map { Float($0) }, label: label, patient: patient, phase: phase, sliceIndex: z))
      kept.append(z)
    }
    let spacing = (0..<3).map { $0 < image.spacing.count ? image.spacing[$0] : 1 }
    let geometry = VolumeGeometry(
      originalShape: shape, spacing: spacing, orientation: image.geometry, cropX: cropX, cropY: cropY,
      size: size, intensityWindow: lo...max(lo, hi), keptSlices: kept)
    return PreparedVolume(patient: patient, group: group, phase: phase, slices: slices, geometry: geometry)
  }

  /// (nx, ny, nz) of a 2D, 3D, or single-frame 4D shape; nil otherwise.
  static func volumeShape(_ shape: [Int]) -> [Int]? {
    switch shape.count {
    case 2: [shape[0], shape[1], 1]
    case 3: shape
    case 4 where shape[3] == 1: Array(shape[0..<3])
    default: nil
    }
  }

  // MARK: - Building blocks

  /// Bilinear resize of a row-major (height, width) plane to (size, size), align_corners = false:
  /// output pixel d samples the input at `(d + 0.5) * in / out - 0.5`, clamped to [0, in - 1].
  public static func resizeBilinear(_ plane: [Double], width: Int, height: Int, size: Int) -> [Double] {
    let xs = (0..<size).map { sourceCoordinate($0, input: width, output: size) }
    let ys = (0..<size).map { sourceCoordinate($0, input: height, output: size) }
    var out = [Double](repeating: 0, count: size * size)
    for (oy, (y0, y1, fy)) in ys.enumerated() {
      for (ox, (x0, x1, fx)) in xs.enumerated() {
        let top = plane[y0 * width + x0] * (1 - fx) + plane[y0 * width + x1] * fx
        let bottom = plane[y1 * width + x0] * (1 - fx) + plane[y1 * width + x1] * fx
        out[oy * size + ox] = top * (1 - fy) + bottom * fy
      }
    }
    return out
  }

  /// The two neighbours and the weight of the second for output index `d`.
  private static func sourceCoordinate(_ d: Int, input: Int, output: Int) -> (Int, Int, Double) {
    let s = min(max((Double(d) + 0.5) * Double(input) / Double(output) - 0.5, 0), Double(input - 1))
    let i0 = Int(s.rounded(.down))
    let i1 = min(i0 + 1, input - 1)
    return (i0, i1, s - Double(i0))
  }

  /// Nearest-neighbour resize on the half-pixel grid: output d takes input
  /// `min(floor((d + 0.5) * in / out), in - 1)`.
  public static func resizeNearest<T>(_ plane: [T], width: Int, height: Int, size: Int) -> [T] {
    let xs = (0..<size).map { min(Int((Double($0) + 0.5) * Double(width) / Double(size)), width - 1) }
    let ys = (0..<size).map { min(Int((Double($0) + 0.5) * Double(height) / Double(size)), height - 1) }
    var out = [T]()
    out.reserveCapacity(size * size)
    for y in ys { for x in xs { out.append(plane[y * width + x]) } }
    return out
  }
}
