import Experiment
import Foundation
import Reference
import Testing

@Suite("safetensors weights interchange")
struct SafetensorsTests {
  static let config = ModelConfig.smoke

  static func seededValues() -> (ParameterLayout, [Float]) {
    let layout = ParameterLayout(config: config)
    var rng = SplitMix64(seed: 11)
    return (layout, layout.initialValues(rng: &rng).map { Float($0) })
  }

  /// The header follows the format: 8-byte little-endian length N (here a multiple of 8), N bytes
  /// of JSON, one entry per official key with dtype, shape and contiguous data offsets that cover
  /// the data exactly; the backbone keys plus one I64 num_batches_tracked per BatchNorm.
  @Test func headerFollowsTheFormat() throws {
    let (layout, values) = Self.seededValues()
    let bytes = Safetensors.encode(Safetensors.backboneEntries(values: values, layout: layout), metadata: ["format": "pt"])
    let n = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    try #require(n % 8 == 0 && 8 + n <= bytes.count, "header length \(n) of \(bytes.count) bytes")
    let json = try #require(try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any])
    #expect((json["__metadata__"] as? [String: String]) == ["format": "pt"])
    let backbone = layout.entries.filter { $0.group == .backbone }
    let batchNorms = backbone.filter { $0.role == .runningVariance }
    #expect(json.count - 1 == backbone.count + batchNorms.count, "entries")
    var spans: [(Int, Int, String)] = []
    for (name, value) in json where name != "__metadata__" {
      let info = try #require(value as? [String: Any])
      let shape = try #require(info["shape"] as? [Int]), offsets = try #require(info["data_offsets"] as? [Int])
      let dtype = try #require(info["dtype"] as? String)
      if name.hasSuffix("num_batches_tracked") {
        #expect(dtype == "I64" && shape == [] && offsets[1] - offsets[0] == 8, "\(name)")
        #expect(layout.contains(String(name.dropLast("num_batches_tracked".count)) + "running_var"), "\(name) belongs to a BatchNorm")
      } else {
        #expect(dtype == "F32", "\(name)")
        #expect(layout.contains(name) && layout[name].group == .backbone && layout[name].shape == shape, "\(name): shape \(shape)")
        #expect(offsets[1] - offsets[0] == shape.reduce(1, *) * 4, "\(name): byte count")
      }
      spans.append((offsets[0], offsets[1], name))
    }
    spans.sort { $0.0 < $1.0 }
    var cursor = 0
    for (begin, end, name) in spans {
      #expect(begin == cursor, "\(name) begins at \(begin), expected \(cursor)")
      cursor = end
    }
    #expect(cursor == bytes.count - 8 - n, "offsets cover the data exactly")
  }

  /// Writing a backbone and loading it into a differently initialised buffer restores every
  /// backbone value bit for bit and leaves the heads alone; the model sizes are recovered from the
  /// shapes alone.
  @Test func roundTripRestoresTheBackbone() throws {
    let (layout, values) = Self.seededValues()
    let bytes = Safetensors.encode(Safetensors.backboneEntries(values: values, layout: layout, includeProjection: true))
    let file = try Safetensors.decode(bytes, file: "t.safetensors")
    var loaded = [Float](repeating: -7, count: layout.count)
    try Safetensors.loadBackbone(file.entries, file: "t.safetensors", into: &loaded, layout: layout)
    for e in layout.entries {
      let expected = e.group == .backbone ? Array(values[e.range]) : [Float](repeating: -7, count: e.count)
      #expect(Array(loaded[e.range]).map(\.bitPattern) == expected.map(\.bitPattern), "\(e.name)")
    }
    let inferred = try Safetensors.inferModel(file.entries, file: "t.safetensors", base: .cpu)
    #expect(inferred.widths == Self.config.widths && inferred.features == Self.config.features && inferred.inputChannels == 1)
  }

  /// Bad files fail with one line naming the problem.
  @Test func badFilesAreRefusedWithAReason() throws {
    let (layout, values) = Self.seededValues()
    var entries = Safetensors.backboneEntries(values: values, layout: layout)
    let good = Safetensors.encode(entries)
    var buffer = values
    func loadError(_ entries: [SafetensorsEntry]) -> String {
      do {
        try Safetensors.loadBackbone(entries, file: "f", into: &buffer, layout: layout)
        return "no error"
      } catch { return "\(error)" }
    }
    func decodeError(_ bytes: [UInt8]) -> String {
      do {
        _ = try Safetensors.decode(bytes, file: "f")
        return "no error"
      } catch { return "\(error)" }
    }
    #expect(decodeError(Array(good.prefix(good.count - 4))).contains("outside"), "truncated data")
    #expect(decodeError(Array(good.prefix(5))).contains("shorter"), "truncated header length")
    #expect(decodeError([16, 0, 0, 0, 0, 0, 0, 0] + Array("not json at all!".utf8)).contains("JSON"))
    let first = entries.removeFirst()
    #expect(loadError(entries).contains("missing key '\(first.name)'"))
    var reshaped = first
    reshaped.shape = [first.shape.reduce(1, *)]
    #expect(loadError([reshaped] + entries).contains("has shape"))
    var double = first
    double.dtype = "F64"
    #expect(loadError([double] + entries).contains("only F32"))
    #expect(loadError([first, SafetensorsEntry(name: "outc.conv.weight", shape: [1], floats: [0])] + entries).contains("unexpected key 'outc.conv.weight'"))
  }
}
