import KernelCatalog
import Optimized
import Reference
import Testing
import TestSupport

// MARK: - Identities

/// A backend as a test argument.
struct NamedBackend: Sendable, CustomTestStringConvertible {
  let name: String
  let labels: @Sendable (_ queries: [Double], _ support: [Double], _ supportLabels: [UInt8], _ dimension: Int) -> [UInt8]
  var testDescription: String { name }

  static func using<B: Backend>(_ backend: B, _ name: String) -> NamedBackend {
    NamedBackend(name: name) { queries, support, supportLabels, d in
      backend.nearestNeighbourLabels(
        queries: tensor(Shape(queries.count / d, d, 1, 1), queries, for: backend),
        support: tensor(Shape(support.count / d, d, 1, 1), support, for: backend), supportLabels: supportLabels)
    }
  }

  static let all = [using(ReferenceBackend(), "reference"), using(OptimizedBackend(workers: 2), "optimized, 2 workers")]
}

@Suite struct NearestNeighbourIdentityTests {
  /// `count` normalised Gaussian rows of dimension `d` (rounded through Float) and random labels 0 ..< 4.
  static func rows(_ count: Int, _ d: Int, seed: UInt64) -> (values: [Double], labels: [UInt8]) {
    var inputs = SeededInputs(seed: seed)
    let kernel = NearestNeighbourKernel()
    let values = (0..<count).flatMap { _ in kernel.normalized(inputs.normal(d)) }
    return (values, (0..<count).map { _ in UInt8(inputs.int(below: 4)) })
  }

  @Test("a support equal to the query labels every pixel correctly", arguments: NamedBackend.all)
  func supportEqualToQuery(_ backend: NamedBackend) {
    let (values, labels) = Self.rows(389, 16, seed: 1)
    let predicted = backend.labels(values, values, labels, 16)
    #expect(predicted.count == labels.count)
    let wrong = zip(predicted, labels).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
    #expect(wrong.isEmpty, "\(wrong.count) of \(labels.count) pixels mislabelled, first at \(wrong.first ?? -1)")
  }

  @Test("labels permuted in the support are permuted in the prediction", arguments: NamedBackend.all)
  func permutedLabels(_ backend: NamedBackend) {
    let (support, labels) = Self.rows(300, 8, seed: 2)
    let (queries, _) = Self.rows(250, 8, seed: 3)
    let permutation: [UInt8] = [2, 0, 3, 1]
    let predicted = backend.labels(queries, support, labels, 8)
    let permuted = backend.labels(queries, support, labels.map { permutation[Int($0)] }, 8)
    #expect(Set(predicted).count > 1, "every query got the same label: the check would be vacuous")
    #expect(permuted == predicted.map { permutation[Int($0)] })
  }

  @Test("reversing the support's order changes no label (distinct rows: no ties)", arguments: NamedBackend.all)
  func supportOrder(_ backend: NamedBackend) {
    let (support, labels) = Self.rows(280, 16, seed: 4)
    let (queries, _) = Self.rows(200, 16, seed: 5)
    let reversedRows = (0..<280).reversed().flatMap { Array(support[($0 * 16)..<(($0 + 1) * 16)]) }
    #expect(backend.labels(queries, reversedRows, labels.reversed(), 16) == backend.labels(queries, support, labels, 16))
  }
}
