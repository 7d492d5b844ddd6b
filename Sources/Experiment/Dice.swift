/// Hard 3D Dice (docs/PROTOCOL.md section 4): per foreground class over a whole volume (all its slices),
/// 2|P ∩ T| / (|P| + |T|), and 1 when the class is absent from both prediction and truth.
/// prediction, truth: label maps of equal length (the volume's slices concatenated).
public func volumeDice(prediction: [UInt8], truth: [UInt8], classes: [UInt8] = [1, 2, 3]) -> [Double] {
  precondition(prediction.count == truth.count, "Dice: \(prediction.count) predicted labels for \(truth.count)")
  return classes.map { k in
    var both = 0, predicted = 0, actual = 0
    for i in 0..<truth.count {
      let p = prediction[i] == k, t = truth[i] == k
      if p { predicted += 1 }
      if t { actual += 1 }
      if p && t { both += 1 }
    }
    return predicted + actual == 0 ? 1 : 2 * Double(both) / Double(predicted + actual)
  }
}

/// Dice of one test volume.
public struct VolumeScore: Codable, Hashable, Sendable {
  public var patient: Int
  public var phase: String
  /// RV, MYO, LV.
  public var dice: [Double]
  public var mean: Double { dice.reduce(0, +) / Double(dice.count) }

  public init(patient: Int, phase: String, dice: [Double]) {
    self.patient = patient
    self.phase = phase
    self.dice = dice
  }
}

/// Mean over volumes, per class (RV, MYO, LV) and of the three.
public struct DiceSummary: Codable, Hashable, Sendable {
  public var perClass: [Double]
  public var mean: Double

  public init(_ scores: [VolumeScore]) {
    precondition(!scores.isEmpty, "no test volumes to score")
    let classes = scores[0].dice.count
    perClass = (0..<classes).map { k in scores.reduce(0) { $0 + $1.dice[k] } / Double(scores.count) }
    mean = perClass.reduce(0, +) / Double(classes)
  }
}
