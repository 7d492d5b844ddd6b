import Foundation
import Reference

/// One tensor of a safetensors file: its name, dtype ("F32", "I64", ...), shape and raw
/// little-endian bytes.
public struct SafetensorsEntry: Sendable, Equatable {
  public var name: String
  public var dtype: String
  public var shape: [Int]
  public var bytes: [UInt8]

  public init(name: String, dtype: String, shape: [Int], bytes: [UInt8]) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.bytes = bytes
  }

  public init(name: String, shape: [Int], floats: [Float]) {
    var bytes = [UInt8]()
    bytes.reserveCapacity(4 * floats.count)
    for v in floats { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
    self.init(name: name, dtype: "F32", shape: shape, bytes: bytes)
  }

  /// The values of an F32 tensor.
  public var floats: [Float] {
    stride(from: 0, to: bytes.count - 3, by: 4).map {
      Float(bitPattern: UInt32(bytes[$0]) | UInt32(bytes[$0 + 1]) << 8 | UInt32(bytes[$0 + 2]) << 16 | UInt32(bytes[$0 + 3]) << 24)
    }
  }
}

/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length N, N
/// bytes of JSON `{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`
/// (padded with spaces to a multiple of 8), then the raw little-endian data; offsets are relative
/// to the start of the data. We write keys sorted, data contiguous in key order.
public enum Safetensors {
  static let dtypeSizes = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1]

  public static func encode(_ entries: [SafetensorsEntry], metadata: [String: String] = [:]) -> [UInt8] {
    let sorted = entries.sorted { $0.name < $1.name }
    var parts: [String] = []
    if !metadata.isEmpty {
      let fields = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
      parts.append("\"__metadata__\":{\(fields.joined(separator: ","))}")
    }
    var offset = 0
    for e in sorted {
      let shape = e.shape.map(String.init).joined(separator: ",")
      parts.append("\(jsonString(e.name)):{\"dtype\":\"\(e.dtype)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + e.bytes.count)]}")
      offset += e.bytes.count
    }
    var header = Array(("{" + parts.joined(separator: ",") + "}").utf8)
    while header.count % 8 != 0 { header.append(0x20) }
    var out = [UInt8]()
    out.reserveCapacity(8 + header.count + offset)
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { out += $0 }
    out += header
    for e in sorted { out += e.bytes }
    return out
  }

  /// Parses a safetensors file, checking the header against the format: length within the file,
  /// a JSON object, known dtypes, byte counts that match the shapes, offsets inside the data.
  public static func decode(_ bytes: [UInt8], file: String) throws -> (entries: [SafetensorsEntry], metadata: [String: String]) {
    func fail(_ why: String) -> ExperimentError { ExperimentError("\(file): not a valid safetensors file (\(why))") }
    guard bytes.count >= 8 else { throw fail("shorter than its 8-byte header length") }
    let n = bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    guard n >= 2, n <= UInt64(bytes.count - 8) else { throw fail("header length \(n) exceeds the file of \(bytes.count) bytes") }
    let headerEnd = 8 + Int(n)
    guard let object = try? JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd])) as? [String: Any] else {
      throw fail("header is not a JSON object")
    }
    let dataCount = bytes.count - headerEnd
    var metadata: [String: String] = [:]
    var entries: [SafetensorsEntry] = []
    for (name, value) in object.sorted(by: { $0.key < $1.key }) {
      if name == "__metadata__" {
        guard let m = value as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
        metadata = m
        continue
      }
      guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
        let shape = (info["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
        let offsets = (info["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }), offsets.count == 2
      else { throw fail("entry '\(name)' lacks dtype, shape or data_offsets") }
      guard let size = dtypeSizes[dtype] else { throw fail("entry '\(name)' has unknown dtype \(dtype)") }
      guard shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataCount else {
        throw fail("entry '\(name)' has offsets \(offsets) outside the \(dataCount) data bytes")
      }
      let expected = shape.reduce(1, *) * size
      guard offsets[1] - offsets[0] == expected else {
        throw fail("entry '\(name)' holds \(offsets[1] - offsets[0]) bytes for shape \(shape) of \(dtype) (\(expected))")
      }
      entries.append(SafetensorsEntry(
        name: name, dtype: dtype, shape: shape, bytes: Array(bytes[(headerEnd + offsets[0])..<(headerEnd + offsets[1])])))
    }
    return (entries, metadata)
  }

  public static func read(from url: URL) throws -> (entries: [SafetensorsEntry], metadata: [String: String]) {
    guard let data = FileManager.default.contents(atPath: url.path) else {
      throw ExperimentError("\(url.path): cannot read safetensors file")
    }
    return try decode([UInt8](data), file: url.lastPathComponent)
  }

  // MARK: - The official U-Net's state dict

  /// The backbone of `values` as the official `UNet`'s state dict: every backbone tensor of the
  /// layout (official key, shape), plus one `num_batches_tracked` (I64 scalar) per BatchNorm,
  /// which our layout does not hold: the number of training steps is not recorded, so it is 0.
  /// With `includeProjection`, the projection head's tensors (official `MLP` keys `net.*`) too.
  public static func backboneEntries(values: [Float], layout: ParameterLayout, includeProjection: Bool = false) -> [SafetensorsEntry] {
    var out: [SafetensorsEntry] = []
    for e in layout.entries where e.group == .backbone || (includeProjection && e.group == .projection) {
      out.append(SafetensorsEntry(name: e.name, shape: e.shape, floats: Array(values[e.range])))
      if e.role == .runningVariance {
        let prefix = e.name.dropLast("running_var".count)
        out.append(SafetensorsEntry(name: prefix + "num_batches_tracked", dtype: "I64", shape: [], bytes: [UInt8](repeating: 0, count: 8)))
      }
    }
    return out
  }

  /// Copies the backbone of a safetensors file into `values` (layout order). Every backbone key of
  /// the layout must be present as F32 with its shape; `num_batches_tracked` and the heads' keys
  /// (`net.*`, `conv.*`) are ignored; any other key is an error.
  public static func loadBackbone(_ entries: [SafetensorsEntry], file: String, into values: inout [Float], layout: ParameterLayout) throws {
    let byName = Dictionary(entries.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    for e in entries where !e.name.hasSuffix("num_batches_tracked") && !layout.contains(e.name) {
      throw ExperimentError("\(file): unexpected key '\(e.name)' (not in the official model of this configuration)")
    }
    for e in layout.entries where e.group == .backbone {
      guard let t = byName[e.name] else { throw ExperimentError("\(file): missing key '\(e.name)'") }
      guard t.dtype == "F32" else { throw ExperimentError("\(file): '\(e.name)' is \(t.dtype); only F32 is supported") }
      guard t.shape == e.shape else { throw ExperimentError("\(file): '\(e.name)' has shape \(t.shape), the model expects \(e.shape)") }
      values.replaceSubrange(e.range, with: t.floats)
    }
  }

  /// An `--init` backbone: the file's tensors, checked now against `model` (so a bad file fails
  /// before any data are loaded), its name, and its identity for the run folder (name and the
  /// FNV-1a of its tensors' bytes in name order).
  public static func initialBackbone(at url: URL, model: ModelConfig) throws -> (entries: [SafetensorsEntry], file: String, identity: String) {
    let file = try read(from: url)
    let layout = ParameterLayout(config: model)
    var check = [Float](repeating: 0, count: layout.count)
    try loadBackbone(file.entries, file: url.lastPathComponent, into: &check, layout: layout)
    let bytes = file.entries.sorted { $0.name < $1.name }.flatMap(\.bytes)
    return (file.entries, url.lastPathComponent, "\(url.lastPathComponent), FNV-1a \(String(FNV1a.hash(bytes), radix: 16))")
  }

  /// The backbone sizes of an official U-Net state dict (input channels, widths, D), with the other
  /// fields of `base` (image size, heads) kept.
  public static func inferModel(_ entries: [SafetensorsEntry], file: String, base: ModelConfig) throws -> ModelConfig {
    let shapes = Dictionary(entries.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
    guard let inc = shapes["inc.double_conv.0.weight"], inc.count == 4 else {
      throw ExperimentError("\(file): missing key 'inc.double_conv.0.weight' (not an official U-Net state dict)")
    }
    var widths = [inc[0]]
    while let s = shapes["down\(widths.count).maxpool_conv.1.double_conv.0.weight"], s.count == 4 { widths.append(s[0]) }
    guard let last = shapes["up\(widths.count - 1).conv.double_conv.3.weight"], last.count == 4 else {
      throw ExperimentError("\(file): missing key 'up\(widths.count - 1).conv.double_conv.3.weight'")
    }
    var config = base
    config.inputChannels = inc[1]
    config.widths = widths
    config.features = last[0]
    if let problem = config.problem() { throw ExperimentError("\(file): backbone shapes give an unusable model: \(problem)") }
    return config
  }
}

extension WeightsFile {
  /// The model configuration recorded in a weights file's header.
  public static func storedConfiguration(at url: URL) throws -> ModelConfig {
    guard let data = FileManager.default.contents(atPath: url.path) else {
      throw ExperimentError("\(url.path): cannot read weights file")
    }
    let bytes = [UInt8](data)
    guard bytes.count >= 28, Array(bytes[0..<4]) == magic else { throw ExperimentError("\(url.lastPathComponent): not a weights file (bad magic)") }
    let length = Int(read32(bytes[24..<28]))
    guard 28 + length <= bytes.count, let config = try? JSONDecoder().decode(ModelConfig.self, from: Data(bytes[28..<(28 + length)])) else {
      throw ExperimentError("\(url.lastPathComponent): damaged configuration in weights header")
    }
    return config
  }
}

/// A JSON string literal.
func jsonString(_ s: String) -> String {
  var out = "\""
  for u in s.unicodeScalars {
    switch u {
    case "\"": out += "\\\""
    case "\\": out += "\\\\"
    case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
    default: out.unicodeScalars.append(u)
    }
  }
  return out + "\""
}
