import Foundation

// MARK: - Mean Teacher (Tarvainen and Valpola 2017): the teacher's average and the ramp-up

public enum MeanTeacherConstants {
  /// alpha, the decay of the teacher's exponential moving average of the student's weights: the
  /// value Tarvainen and Valpola (NeurIPS 2017, arXiv 1703.01780, appendix) use during the
  /// consistency ramp-up, and the setting of this package's protocol.
  public static let emaDecay = 0.99
  /// The 5 in the sigmoid ramp-up `exp(-5 (1 - t/T)²)` of the consistency weight: the original
  /// code's `ramps.sigmoid_rampup` (CuriousAI/mean-teacher), from Laine and Aila 2017
  /// (arXiv 1610.02242). The weight starts at e^-5 ≈ 0.0067 of its maximum.
  public static let rampUpSharpness = 5.0
}

/// The teacher's exponential moving average of the student's weights, on `teacher[range]`
/// (entries outside `range` are left untouched):
/// `teacher = decay · teacher + (1 - decay) · student`,
/// computed as `teacher + (1 - decay) · (student - teacher)`, the same value up to rounding, so
/// that a teacher equal to the student stays equal bit for bit (the difference is exactly 0).
///
/// teacher, student: the same flat parameter layout; decay in [0, 1]. The original code
/// (`update_ema_variables`) averages `model.parameters()` only: BatchNorm's running statistics are
/// not averaged, so a caller passes the trainable ranges.
public func emaUpdate(teacher: inout [Double], student: [Double], range: Range<Int>, decay: Double) {
  precondition(student.count == teacher.count, "emaUpdate: student \(student.count), teacher \(teacher.count)")
  precondition(range.lowerBound >= 0 && range.upperBound <= teacher.count, "emaUpdate: range \(range) outside 0 ..< \(teacher.count)")
  precondition((0...1).contains(decay), "emaUpdate: decay \(decay) outside [0, 1]")
  let rate = 1 - decay
  for i in range {
    teacher[i] += rate * (student[i] - teacher[i])
  }
}

/// The decay the original code applies at optimisation step `step` (counted from 1, the first
/// update after the first student step): `min(1 - 1 / (step + 1), decay)`, so early teachers are
/// the plain average of the weights seen so far ("use the true average until the exponential
/// average is more correct", `update_ema_variables` in CuriousAI/mean-teacher).
public func meanTeacherDecay(step: Int, decay: Double = MeanTeacherConstants.emaDecay) -> Double {
  precondition(step >= 1, "meanTeacherDecay: step \(step), expected >= 1 (counts from 1)")
  return min(1 - 1 / Double(step + 1), decay)
}

/// The consistency weight at time `t` (steps or epochs, the unit of `rampUpLength`) under the
/// original sigmoid ramp-up: `w(t) = maximum · exp(-5 (1 - t/T)²)` for `0 <= t < T`, `maximum` from
/// T on; t below 0 counts as 0 and T = 0 means no ramp-up, as `ramps.sigmoid_rampup` clips them.
/// So w(0) = maximum · e^-5, w(T) = maximum, increasing in between.
public func consistencyWeight(at t: Double, rampUpLength: Double, maximum: Double) -> Double {
  precondition(rampUpLength >= 0, "consistencyWeight: ramp-up length \(rampUpLength) is negative")
  if rampUpLength == 0 { return maximum }
  let phase = 1 - min(max(t, 0), rampUpLength) / rampUpLength
  return maximum * exp(-MeanTeacherConstants.rampUpSharpness * phase * phase)
}
