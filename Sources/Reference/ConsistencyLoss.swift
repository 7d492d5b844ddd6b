// MARK: - Mean Teacher consistency loss (Tarvainen and Valpola 2017)

/// The mean squared difference of the student's and the teacher's softmax outputs, with its
/// gradient with respect to the student's logits; the teacher's logits are a constant (the
/// original code detaches them).
///
/// studentLogits, teacherLogits: (N, K, H, W), W fastest. With `p = softmax(student)` and
/// `q = softmax(teacher)` over the K channels at every pixel (`softmaxForward`):
/// `loss = (1 / NKHW) · sum over n, k, y, x of (p - q)²`, the mean over every element.
/// The original `softmax_mse_loss` (CuriousAI/mean-teacher, pytorch/mean_teacher/losses.py) returns
/// the sum over the (N, K) logits divided by K, and `main.py` divides it by the minibatch size N:
/// the same mean over every element, which at every pixel of a segmentation map is this one (and is
/// what the segmentation adaptations compute, `torch.mean` of the squared difference).
/// Gradient: `dL/dp = 2 (p - q) / NKHW`, then back through the softmax (`softmaxBackward`).
/// Returns the loss and dL/dstudentLogits, (N, K, H, W).
public func consistencyLoss(studentLogits: Tensor<Double>, teacherLogits: Tensor<Double>)
  -> (loss: Double, gradStudentLogits: Tensor<Double>)
{
  let s = studentLogits.shape
  teacherLogits.checkShape(s, "consistencyLoss teacherLogits")
  precondition(s.count > 0, "consistencyLoss: logits \(s) are empty")
  let p = softmaxForward(logits: studentLogits)
  let q = softmaxForward(logits: teacherLogits)
  let elements = Double(s.count)
  var gradProbabilities = Tensor<Double>(zeros: s)
  var total = 0.0
  for n in 0..<s.n {
    for k in 0..<s.c {
      for y in 0..<s.h {
        for x in 0..<s.w {
          let difference = p[n, k, y, x] - q[n, k, y, x]
          total += difference * difference
          gradProbabilities[n, k, y, x] = 2 * difference / elements
        }
      }
    }
  }
  let gradLogits = softmaxBackward(output: p, gradOutput: gradProbabilities)
  return (total / elements, gradLogits)
}
