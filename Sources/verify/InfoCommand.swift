import Reference

/// `verify info --preset P`: the named tensors of a preset and its parameter counts.
enum InfoCommand: VerifyCommand {
  static let name = "info"
  static let summary = "print a preset's named tensors and parameter counts"
  static let options = [OptionSpec("preset", value: true)]
  static let help = """
    usage: verify info [--preset paper|cpu|smoke|tiny]

    Prints every named tensor of the network (official PyTorch state-dict keys), its shape and
    offset in the flat parameter buffer, and the trainable parameter counts of the U-Net, the
    projection head and the segmentation head (running statistics excluded). Default preset: cpu.
    """

  static func run(_ options: inout Options) throws {
    try options.requireNoPositional(name)
    let (presetName, config) = try options.modelPreset()
    let layout = ParameterLayout(config: config)
    print("preset \(presetName): widths \(config.widths), D = \(config.features), S = \(config.imageSize), "
      + "projection \(config.projectionHidden)-\(config.projectionOutput), classes \(config.classes)")
    for entry in layout.entries {
      let shape = "(" + entry.shape.map(String.init).joined(separator: ", ") + ")"
      print("  \(entry.name.padding(toLength: 44, withPad: " ", startingAt: 0)) \(shape.padding(toLength: 22, withPad: " ", startingAt: 0)) offset \(entry.offset)")
    }
    print("U-Net parameters:              \(grouped(layout.trainableCount(.backbone)))")
    print("projection head parameters:    \(grouped(layout.trainableCount(.projection)))")
    print("segmentation head parameters:  \(grouped(layout.trainableCount(.segmentation)))")
    print("flat buffer (with running statistics): \(grouped(layout.count)) values")
  }
}

/// 134883072 -> "134,883,072".
func grouped(_ value: Int) -> String {
  let digits = Array(String(value))
  var out = ""
  for (i, ch) in digits.enumerated() {
    if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
    out.append(ch)
  }
  return out
}
