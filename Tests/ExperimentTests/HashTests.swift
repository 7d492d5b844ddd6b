import Experiment
import Reference
import Testing

@Suite struct HashTests {
  @Test("FNV-1a 64 gives the published values for '', 'a' and 'foobar'")
  func knownAnswers() {
    #expect(FNV1a.hash([UInt8]()) == 0xcbf2_9ce4_8422_2325)
    #expect(FNV1a.hash("a".utf8) == 0xaf63_dc4c_8601_ec8c)
    #expect(FNV1a.hash("foobar".utf8) == 0x8594_4171_f739_67e8)
  }

  @Test("combining in pieces equals hashing the whole")
  func incremental() {
    var h = FNV1a()
    h.combine("foo".utf8)
    h.combine("bar".utf8)
    #expect(h.value == FNV1a.hash("foobar".utf8))
  }

  @Test("stage seeds are fixed by the name and the run seed")
  func stageSeeds() {
    let a = Reproduction.stageSeed("pretrain-infoNCE", runSeed: 1)
    #expect(a == Reproduction.stageSeed("pretrain-infoNCE", runSeed: 1))
    #expect(a != Reproduction.stageSeed("pretrain-infoNCE", runSeed: 2))
    #expect(a != Reproduction.stageSeed("pretrain-barlowTwins", runSeed: 1))
  }
}
