/// A NIfTI image in memory: its shape, voxel size, stored data type, orientation fields and voxel
/// values (after intensity scaling).
///
/// Layout of `values`: x fastest, then y, z, t (NIfTI's own order), so voxel (x, y, z, t) is at
/// `x + nx * (y + ny * (z + nz * t))`. A 2D slice z of a 3D volume is therefore a row-major
/// (y, x) array of `nx * ny` values starting at `z * nx * ny`.
public struct NIfTIVolume: Sendable, Equatable {
  /// Extent along each axis, 1 to 4 entries (dim[1 ... dim[0]]; trailing axes of extent 1 beyond
  /// the fourth are dropped).
  public var shape: [Int]
  /// pixdim[1 ... shape.count]: the voxel size along each axis (mm in space, s in time for files
  /// written here).
  public var spacing: [Double]
  /// The type the voxels are stored as in the file.
  public var dataType: NIfTIDataType
  /// Voxel values, `slope * stored + intercept` when the file scales, otherwise the stored values
  /// exactly (every supported type converts to Double without rounding).
  public var values: [Double]
  /// The orientation fields (qform, sform, units).
  public var geometry: NIfTIGeometry
  /// The header's `descrip` text.
  public var descriptionText: String
  /// How the file was stored (NIfTI-1 or -2, byte order, scaling, extensions). The writer ignores
  /// this: it always writes NIfTI-1, little-endian, unscaled, without extensions.
  public var storage: NIfTIStorage

  /// A volume with a sensible default orientation: identity rotation, voxel axes along the scanner
  /// axes, scaled by `spacing`, voxel (0, 0, 0) at `origin` (mm). qform and sform codes are 1
  /// (scanner anatomical) and agree.
  /// - Parameters:
  ///   - shape: extents, x fastest, 1 to 4 entries, each >= 1.
  ///   - spacing: one positive size per axis.
  ///   - values: `shape.reduce(1, *)` values in the layout described on the type.
  public init(
    shape: [Int], spacing: [Double], dataType: NIfTIDataType, values: [Double],
    origin: [Double] = [0, 0, 0], descriptionText: String = ""
  ) {
    precondition((1...4).contains(shape.count) && shape.allSatisfy { $0 >= 1 }, "NIfTI shape must have 1 to 4 positive extents")
    precondition(spacing.count == shape.count, "one spacing per axis")
    precondition(values.count == shape.reduce(1, *), "values.count must be the product of the shape")
    precondition(origin.count == 3, "origin is (x, y, z) in mm")
    self.shape = shape
    self.spacing = spacing
    self.dataType = dataType
    self.values = values
    self.descriptionText = descriptionText
    self.storage = NIfTIStorage()
    var space = [1.0, 1.0, 1.0]
    for axis in 0..<min(3, spacing.count) { space[axis] = spacing[axis] }
    self.geometry = NIfTIGeometry(
      qformCode: 1, sformCode: 1, qfac: 1, quaternion: [0, 0, 0], qoffset: origin,
      srow: [
        [space[0], 0, 0, origin[0]],
        [0, space[1], 0, origin[1]],
        [0, 0, space[2], origin[2]],
      ],
      xyztUnits: 2 | 8)
  }

  /// Builds a volume from parts already checked by the reader.
  init(
    shape: [Int], spacing: [Double], dataType: NIfTIDataType, values: [Double],
    geometry: NIfTIGeometry, descriptionText: String, storage: NIfTIStorage
  ) {
    self.shape = shape
    self.spacing = spacing
    self.dataType = dataType
    self.values = values
    self.geometry = geometry
    self.descriptionText = descriptionText
    self.storage = storage
  }

  /// Number of voxels.
  public var count: Int { values.count }
}

/// The voxel data types this package reads (and writes).
public enum NIfTIDataType: Int, Sendable, CaseIterable, CustomStringConvertible {
  case uint8 = 2
  case int16 = 4
  case int32 = 8
  case float32 = 16
  case float64 = 64
  case int8 = 256
  case uint16 = 512

  /// Bytes per voxel.
  public var size: Int {
    switch self {
    case .uint8, .int8: 1
    case .int16, .uint16: 2
    case .int32, .float32: 4
    case .float64: 8
    }
  }

  public var description: String {
    switch self {
    case .uint8: "uint8"
    case .int16: "int16"
    case .int32: "int32"
    case .float32: "float32"
    case .float64: "float64"
    case .int8: "int8"
    case .uint16: "uint16"
    }
  }

  /// True for the integer types.
  public var isInteger: Bool { self != .float32 && self != .float64 }

  /// The range of the integer types (nil for floating point).
  public var integerRange: ClosedRange<Double>? {
    switch self {
    case .uint8: 0...255
    case .int8: -128...127
    case .int16: -32768...32767
    case .uint16: 0...65535
    case .int32: -2_147_483_648...2_147_483_647
    case .float32, .float64: nil
    }
  }

  /// Names of the NIfTI codes this package does not read, for error messages.
  static func unsupportedName(_ code: Int) -> String? {
    switch code {
    case 1: "binary (1 bit)"
    case 32: "complex64"
    case 128: "RGB24"
    case 1024: "int64"
    case 1280: "uint64"
    case 1536: "float128"
    case 1792: "complex128"
    case 2048: "complex256"
    case 2304: "RGBA32"
    default: nil
    }
  }
}

/// The NIfTI orientation fields, as stored (NIfTI-1 stores them as Float32: the reader converts
/// exactly, the writer rounds to Float32).
public struct NIfTIGeometry: Sendable, Equatable {
  /// 0 unknown, 1 scanner anatomical, 2 aligned, 3 Talairach, 4 MNI.
  public var qformCode: Int
  public var sformCode: Int
  /// pixdim[0]: -1 or 1, the handedness of the qform (0 is read as 1, as the standard says).
  public var qfac: Double
  /// (b, c, d) of the qform rotation quaternion.
  public var quaternion: [Double]
  /// (x, y, z) of the qform translation, mm.
  public var qoffset: [Double]
  /// The three rows of the sform affine, 4 values each.
  public var srow: [[Double]]
  /// xyzt_units: spatial units in bits 0-2 (2 = mm), temporal in bits 3-5 (8 = s).
  public var xyztUnits: Int
}

/// How a volume was stored on disk.
public struct NIfTIStorage: Sendable, Equatable {
  public enum Version: Int, Sendable { case nifti1 = 1, nifti2 = 2 }
  public enum ByteOrder: Sendable { case littleEndian, bigEndian }

  public var version: Version = .nifti1
  public var byteOrder: ByteOrder = .littleEndian
  /// scl_slope and scl_inter when the file scales its values (a finite, non-zero slope, and not
  /// the identity 1, 0), else nil. A non-finite scl_inter with a valid slope is read as 0.
  public var scaling: Scaling? = nil
  /// Header extensions (code and raw content), in file order.
  public var extensions: [Extension] = []
  /// Byte offset of the voxel data in the (decompressed) file.
  public var voxelOffset: Int = 352
  /// True when the file was gzip-compressed.
  public var compressed: Bool = false

  public struct Scaling: Sendable, Equatable {
    public var slope: Double
    public var intercept: Double
  }

  public struct Extension: Sendable, Equatable {
    /// ecode (e.g. 6 = comment, 4 = AFNI).
    public var code: Int
    /// The esize - 8 bytes after the code, including any zero padding.
    public var content: [UInt8]
  }

  public init() {}
}
