import Reference

// ED-to-ES propagation (docs/PROTOCOL.md section 9): for each test patient, the ES frame segmented
// from the ED frame's ground truth by the in-context rule (support: the ED pixels; query: the ES
// pixels), scored by hard 3D Dice against the ES truth. No training.

/// One ES slice of a propagation, kept for the picture.
public struct PropagatedSlice: Codable, Sendable {
  public var patient: Int
  /// Indices into the test slices: the ED slice shown beside it and the ES slice itself.
  public var endDiastoleSlice: Int
  public var endSystoleSlice: Int
  /// The propagated labels of the ES slice (S x S).
  public var labels: [UInt8]
}

/// The propagation of one backbone over the test patients.
public struct PropagationResult: Codable, Sendable {
  public var backbone: InContextBackbone
  /// Hard 3D Dice of every ES volume (phase "ES").
  public var volumes: [VolumeScore]
  public var summary: DiceSummary
  /// Each patient's ED support (per class, in `volumes` order).
  public var supports: [SupportSample]
  public var pictured: [PropagatedSlice]
  public var seconds: Double
}

/// The test patients that have both an ED and an ES volume, in test order, with their slices.
func endDiastoleAndSystole(_ test: SliceSet) -> [(patient: Int, ed: [Int], es: [Int])] {
  var slices: [SliceSet.VolumeID: [Int]] = [:]
  for i in 0..<test.count { slices[test.volumes[test.volumeOfSlice[i]], default: []].append(i) }
  var seen = Set<Int>()
  return test.volumes.compactMap { id -> (Int, [Int], [Int])? in
    guard seen.insert(id.patient).inserted,
      let ed = slices[SliceSet.VolumeID(patient: id.patient, phase: "ED")],
      let es = slices[SliceSet.VolumeID(patient: id.patient, phase: "ES")]
    else { return nil }
    return (id.patient, ed, es)
  }
}

/// The patients the propagation picture shows: those of the first, middle and last test volumes
/// (as `fixedTestSlices`), each with its middle ED and middle ES slice.
func propagationPictureSlices(_ test: SliceSet) -> [(patient: Int, ed: Int, es: Int)] {
  let patients = endDiastoleAndSystole(test)
  let wanted = Set(fixedTestSlices(test).map { test.volumes[test.volumeOfSlice[$0]].patient })
  return patients.filter { wanted.contains($0.patient) }.map { ($0.patient, $0.ed[$0.ed.count / 2], $0.es[$0.es.count / 2]) }
}

/// Propagates every test patient's ED labels to its ES frame with `net`'s projected
/// representations. The ED support keeps at most `limit` pixels per class (seeded per patient from
/// `seed`). `seconds` is left 0 for the caller.
package func propagateEndDiastole<B: Backend>(
  _ net: Pix2RepNetwork<B>, backbone: InContextBackbone, test: SliceSet, limit: Int, seed: UInt64, batchSize: Int
) -> PropagationResult {
  var projector = ProjectedRows(net)
  let shown = propagationPictureSlices(test)
  let plane = test.size * test.size
  var volumes: [VolumeScore] = [], supports: [SupportSample] = [], pictured: [PropagatedSlice] = []
  for (patient, ed, es) in endDiastoleAndSystole(test) {
    var rng = SplitMix64(seed: seed, stream: UInt64(patient))
    let support = inContextSupport(
      &projector, slices: test.subset(ed), classes: net.config.classes, limit: limit, rng: &rng, batchSize: batchSize)
    let query = test.subset(es)
    let predicted = inContextLabels(&projector, support: support, query: query, batchSize: batchSize)
    volumes.append(VolumeScore(patient: patient, phase: "ES", dice: volumeDice(prediction: predicted, truth: query.labels)))
    supports.append(support.sample)
    for picture in shown where picture.patient == patient {
      let row = es.firstIndex(of: picture.es)!
      pictured.append(PropagatedSlice(
        patient: patient, endDiastoleSlice: picture.ed, endSystoleSlice: picture.es,
        labels: Array(predicted[(row * plane)..<((row + 1) * plane)])))
    }
  }
  precondition(!volumes.isEmpty, "propagateEndDiastole: no test patient has both an ED and an ES volume")
  return PropagationResult(
    backbone: backbone, volumes: volumes, summary: DiceSummary(volumes), supports: supports, pictured: pictured, seconds: 0)
}
