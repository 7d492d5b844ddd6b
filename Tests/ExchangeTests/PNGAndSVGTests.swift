import Dataset
import Experiment
import Foundation
import Reference
import TestExpectations
import Testing

@Suite("PNG and SVG writers")
struct PNGAndSVGTests {
  /// A written PNG inflates (zlib's inflate) to exactly the pixels given, row by row behind filter
  /// byte 0, for greyscale and RGB and odd sizes.
  @Test(arguments: [(7, 5, PNG.ColorType.rgb), (9, 13, .grey), (1, 1, .grey), (16, 3, .rgb)])
  func pngDecodesToTheSamePixels(width: Int, height: Int, color: PNG.ColorType) throws {
    var rng = SplitMix64(seed: 7)
    let channels = color == .rgb ? 3 : 1
    let pixels = (0..<(width * height * channels)).map { _ in UInt8(rng.int(below: 256)) }
    let chunks = try pngChunks(PNG.encode(width: width, height: height, color: color, pixels: pixels))
    #expect(chunks.map(\.type) == ["IHDR", "IDAT", "IEND"])
    let header = chunks[0].data
    let be = { (i: Int) in (0..<4).reduce(0) { $0 << 8 | Int(header[i + $1]) } }
    #expect(be(0) == width && be(4) == height)
    #expect(Array(header[8...]) == [8, color.rawValue, 0, 0, 0], "bit depth, colour type, compression, filter, interlace")
    let raw = try Gzip.decompress(chunks[1].data)
    let row = width * channels
    try #require(raw.count == (row + 1) * height, "inflated size")
    for y in 0..<height {
      #expect(raw[y * (row + 1)] == 0, "filter byte of row \(y)")
      #expect(Array(raw[(y * (row + 1) + 1)..<((y + 1) * (row + 1))]) == Array(pixels[(y * row)..<((y + 1) * row)]), "row \(y)")
    }
  }

  /// On a log-x plot, x = 1, 10, 100 are equally spaced; the SVG is one well-formed XML element.
  @Test func logAxisSpacesDecadesEqually() throws {
    var plot = LinePlot(title: "t <&>", xLabel: "x", yLabel: "y", logX: true)
    plot.series = [.init(name: "a", color: "#000000", points: [.init(x: 1, y: 0.2, error: 0.1), .init(x: 10, y: 0.5), .init(x: 100, y: 0.9)])]
    plot.annotations = [.init(x: 1, y: 0.3, text: "claim")]
    let svg = plot.svg
    #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
    #expect(svg.contains("t &lt;&amp;&gt;"), "the title is escaped")
    let line = try #require(svg.split(separator: "\n").first { $0.hasPrefix("<polyline") })
    let points = line.split(separator: "\"")[1].split(separator: " ").map { Double($0.split(separator: ",")[0])! }
    try #require(points.count == 3)
    #expect(abs((points[1] - points[0]) - (points[2] - points[1])) < 0.11, "decades at \(points)")
    #expect(svg.components(separatedBy: "<svg").count == 2 && svg.hasSuffix("</svg>\n"))
  }

  /// The principal-component picture puts the dominant direction of variation in red: with
  /// features varying only along x, red increases along every row.
  @Test func firstPrincipalComponentFollowsTheDominantVariation() {
    let (h, w) = (5, 8)
    var data = [Float]()
    for c in 0..<4 {
      for _ in 0..<h { for x in 0..<w { data.append(c == 1 ? Float(x) * 3 : (c == 2 ? -Float(x) : 0.5)) } }
    }
    let rgb = principalComponentsRGB(Tensor(shape: Shape(1, 4, h, w), data: data))[0]
    for y in 0..<h {
      let red = (0..<w).map { rgb[3 * (y * w + $0)] }
      #expect(red == red.sorted() && red.first! < red.last!, "row \(y): \(red)")
    }
  }
}
