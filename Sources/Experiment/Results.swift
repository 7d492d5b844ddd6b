/// The methods of the Dice table, in row order.
public enum Method: String, Codable, CaseIterable, Sendable {
  case supervised = "Supervised U-Net"
  case pix2repLinear = "Pix2Rep LP"
  case pix2repFineTune = "Pix2Rep FT"
  case barlowLinear = "Pix2Rep-v2 LP"
  case barlowFineTune = "Pix2Rep-v2 FT"
  case randomLinear = "Random-backbone LP"
  /// Image-level contrastive pretraining of the encoder (Chen et al. 2020), then probed or fine-tuned.
  case simCLRLinear = "SimCLR LP"
  case simCLRFineTune = "SimCLR FT"
  /// Semi-supervised training from the random backbone (Tarvainen and Valpola 2017).
  case meanTeacher = "Mean Teacher"
  /// Mean Teacher from the InfoNCE backbone with the fine-tuning rates.
  case pix2repMeanTeacher = "Pix2Rep FT + MT"
  /// No training: each test pixel takes the label of its nearest labelled pixel by cosine
  /// similarity of g(f(x)) (docs/PROTOCOL.md section 9), on the InfoNCE, Barlow Twins and random
  /// backbones.
  case pix2repInContext = "Pix2Rep in-context"
  case barlowInContext = "Pix2Rep-v2 in-context"
  case randomInContext = "Random-backbone in-context"

  /// A short name for file names.
  public var key: String {
    switch self {
    case .supervised: "supervised"
    case .pix2repLinear: "pix2rep-lp"
    case .pix2repFineTune: "pix2rep-ft"
    case .barlowLinear: "pix2rep-v2-lp"
    case .barlowFineTune: "pix2rep-v2-ft"
    case .randomLinear: "random-lp"
    case .simCLRLinear: "simclr-lp"
    case .simCLRFineTune: "simclr-ft"
    case .meanTeacher: "mean-teacher"
    case .pix2repMeanTeacher: "pix2rep-ft-mt"
    case .pix2repInContext: "pix2rep-ic"
    case .barlowInContext: "pix2rep-v2-ic"
    case .randomInContext: "random-ic"
    }
  }

  /// Whether the method trains the segmentation head alone on a frozen backbone.
  public var isLinearProbe: Bool { self == .pix2repLinear || self == .barlowLinear || self == .randomLinear || self == .simCLRLinear }

  /// Whether the method trains with a mean teacher (`trainMeanTeacher`).
  public var isMeanTeacher: Bool { self == .meanTeacher || self == .pix2repMeanTeacher }

  /// Whether the method segments in context, with no training (`InContextBackbone`).
  public var isInContext: Bool { self == .pix2repInContext || self == .barlowInContext || self == .randomInContext }
}

/// One downstream run: a method at a budget and draw, evaluated on the test volumes.
public struct RunResult: Codable, Hashable, Sendable {
  public var method: Method
  public var budget: Int
  public var draw: Int
  /// The labelled training patients drawn.
  public var patients: [Int]
  public var summary: DiceSummary
  public var volumes: [VolumeScore]
  /// The backbone learning rate chosen on validation (supervised baseline), else nil.
  public var chosenLearningRate: Double?
  public var steps: Int
  public var bestValidationLoss: Double
  /// Wall seconds of training and evaluation, added up over the processes that resumed the run
  /// from its checkpoint (from before 2026-12-01, only the last process's).
  public var seconds: Double
  /// The validation loss curve (nil in run folders from before it was stored).
  public var curve: [CurvePoint]?
  /// The step of the best validation (whose weights are the run's result).
  public var bestStep: Int?
  /// Steps per epoch, validation interval, cap and patience of the run.
  public var schedule: DownstreamSchedule?
  /// Patience or the epoch cap.
  public var stopReason: StopReason?
  /// In-context runs (which train nothing: 0 steps, validation loss 0): the labelled pixels per
  /// class and how many the support kept. Nil for trained runs.
  public var support: SupportSample?

  /// Epochs trained (steps over steps per epoch).
  public var epochs: Double? { schedule.map { Double(steps) / Double($0.stepsPerEpoch) } }

  /// How much the best validation loss still improved over the run's last quarter of steps:
  /// (best overall - best up to 3/4 of the steps) / |best up to 3/4|, 0 or negative. Near 0: the
  /// run had converged, whatever stopped it; clearly negative at the cap: the cap ended a run that
  /// was still improving. Nil without a stored curve.
  public var relativeChangeLastQuarter: Double? {
    guard let curve, !curve.isEmpty else { return nil }
    let quarter = 3 * steps / 4
    guard let early = curve.filter({ $0.step <= quarter }).map(\.loss).min(), early != 0,
      let overall = curve.map(\.loss).min()
    else { return nil }
    return (overall - early) / abs(early)
  }

  public init(
    method: Method, budget: Int, draw: Int, patients: [Int], summary: DiceSummary, volumes: [VolumeScore],
    chosenLearningRate: Double?, steps: Int, bestValidationLoss: Double, seconds: Double, curve: [CurvePoint]? = nil,
    bestStep: Int? = nil, schedule: DownstreamSchedule? = nil, stopReason: StopReason? = nil, support: SupportSample? = nil
  ) {
    self.method = method
    self.budget = budget
    self.draw = draw
    self.patients = patients
    self.summary = summary
    self.volumes = volumes
    self.chosenLearningRate = chosenLearningRate
    self.steps = steps
    self.bestValidationLoss = bestValidationLoss
    self.seconds = seconds
    self.curve = curve
    self.bestStep = bestStep
    self.schedule = schedule
    self.stopReason = stopReason
    self.support = support
  }
}

/// Mean and sample standard deviation (0 for one value).
public func meanAndSD(_ values: [Double]) -> (mean: Double, sd: Double) {
  guard !values.isEmpty else { return (.nan, .nan) }
  let mean = values.reduce(0, +) / Double(values.count)
  guard values.count > 1 else { return (mean, 0) }
  let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
  return (mean, variance.squareRoot())
}

/// The results of all runs, indexed for the table and the claims.
public struct ResultTable: Sendable {
  public let runs: [RunResult]
  public let budgets: [Int]

  public init(runs: [RunResult], budgets: [Int]) {
    self.runs = runs
    self.budgets = budgets
  }

  /// Mean Dice (of the three classes, or of class `k`) per draw, for a method and budget.
  public func values(_ method: Method, _ budget: Int, classIndex: Int? = nil) -> [Double] {
    runs.filter { $0.method == method && $0.budget == budget }
      .sorted { $0.draw < $1.draw }
      .map { run in classIndex.map { run.summary.perClass[$0] } ?? run.summary.mean }
  }

  public func cell(_ method: Method, _ budget: Int, classIndex: Int? = nil) -> (mean: Double, sd: Double, count: Int)? {
    let v = values(method, budget, classIndex: classIndex)
    if v.isEmpty { return nil }
    let m = meanAndSD(v)
    return (m.mean, m.sd, v.count)
  }
}
