import Foundation

/// Greyscale slices with their labels drawn over them, as RGB pixels for `PNG`.
public enum LabelOverlay {
  /// RGB colours of labels 1 (RV: blue), 2 (myocardium: green), 3 (LV: red).
  public static let colors: [(UInt8, UInt8, UInt8)] = [(0, 0, 0), (40, 110, 255), (40, 220, 60), (255, 50, 40)]

  /// RGB pixels of one slice, row-major (y, x): the image (values in [0, 1], clamped) as grey,
  /// blended with the label colour at `opacity` where the label is not 0. `labels` nil gives the
  /// plain image.
  public static func rgb(image: [Float], labels: [UInt8]?, width: Int, height: Int, opacity: Double = 0.4) -> [UInt8] {
    precondition(image.count == width * height && (labels?.count ?? image.count) == image.count)
    var out = [UInt8](repeating: 0, count: 3 * width * height)
    for p in 0..<(width * height) {
      let grey = Double(min(max(image[p], 0), 1)) * 255
      let label = Int(labels?[p] ?? 0)
      let color = label >= 1 && label <= 3 ? colors[label] : nil
      for (channel, tint) in [color?.0, color?.1, color?.2].enumerated() {
        let value = tint.map { grey * (1 - opacity) + Double($0) * opacity } ?? grey
        out[3 * p + channel] = UInt8(min(255, max(0, value.rounded())))
      }
    }
    return out
  }

  /// Tiles equally sized RGB tiles into a grid (`columns` per row, `gap` black pixels between
  /// tiles), each upscaled by an integer `zoom` (nearest neighbour). Returns (width, height, RGB).
  public static func tile(_ tiles: [[UInt8]], tileWidth: Int, tileHeight: Int, columns: Int, zoom: Int = 1, gap: Int = 2) -> (width: Int, height: Int, pixels: [UInt8]) {
    let rows = (tiles.count + columns - 1) / columns
    let w = tileWidth * zoom, h = tileHeight * zoom
    let width = columns * w + (columns - 1) * gap, height = rows * h + (rows - 1) * gap
    var pixels = [UInt8](repeating: 0, count: 3 * width * height)
    for (index, tile) in tiles.enumerated() {
      let ox = (index % columns) * (w + gap), oy = (index / columns) * (h + gap)
      for y in 0..<h {
        for x in 0..<w {
          let source = 3 * ((y / zoom) * tileWidth + x / zoom)
          let target = 3 * ((oy + y) * width + ox + x)
          pixels[target] = tile[source]
          pixels[target + 1] = tile[source + 1]
          pixels[target + 2] = tile[source + 2]
        }
      }
    }
    return (width, height, pixels)
  }
}

extension PhantomGenerator {
  /// A PNG contact sheet to look at: one row per patient (default: the first training patient of
  /// each group), columns ED base, ED mid-ventricular (plain and with labels), ED apex, ES
  /// mid-ventricular (plain and with labels). Tiles are upscaled by `zoom` (default: to at least
  /// 128 pixels).
  public func previewPNG(patients ids: [Int] = [1, 21, 41, 61, 81], zoom: Int? = nil) -> [UInt8] {
    var tiles: [[UInt8]] = []
    let g = gridSize
    for id in ids {
      let patient = patient(id)
      func slice(_ volume: NIfTIVolume, _ k: Int) -> [Float] {
        volume.values[(k * g * g)..<((k + 1) * g * g)].map { Float($0) }
      }
      func labels(_ volume: NIfTIVolume, _ k: Int) -> [UInt8] {
        volume.values[(k * g * g)..<((k + 1) * g * g)].map { UInt8($0) }
      }
      let n = patient.endDiastole.image.shape[2]
      let (ed, es) = (patient.endDiastole, patient.endSystole)
      let mid = n / 2
      tiles.append(LabelOverlay.rgb(image: slice(ed.image, 0), labels: nil, width: g, height: g))
      tiles.append(LabelOverlay.rgb(image: slice(ed.image, mid), labels: nil, width: g, height: g))
      tiles.append(LabelOverlay.rgb(image: slice(ed.image, mid), labels: labels(ed.labels, mid), width: g, height: g))
      tiles.append(LabelOverlay.rgb(image: slice(ed.image, n - 1), labels: labels(ed.labels, n - 1), width: g, height: g))
      tiles.append(LabelOverlay.rgb(image: slice(es.image, mid), labels: nil, width: g, height: g))
      tiles.append(LabelOverlay.rgb(image: slice(es.image, mid), labels: labels(es.labels, mid), width: g, height: g))
    }
    let sheet = LabelOverlay.tile(tiles, tileWidth: g, tileHeight: g, columns: 6, zoom: zoom ?? max(1, 128 / g))
    return PNG.encode(width: sheet.width, height: sheet.height, color: .rgb, pixels: sheet.pixels)
  }
}
