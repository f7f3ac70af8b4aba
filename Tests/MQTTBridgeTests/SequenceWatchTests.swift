import FlowchainCrypto
import FlowchainTesting
import Ledger
@testable import MQTTBridge
import Testing

@Suite("Device counters: gaps recorded, repeats not stored twice")
struct SequenceWatchTests {
    @Test func jumpsAreGapsAndRepeatsAreRepeatsAndAStartResumesFromTheLedger() async throws {
        let dir = TemporaryDirectory()
        let key = Fixtures.key(71)
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: key.publicKey)
        let engine = try IngestEngine(store: store, key: key).running()
        _ = try await engine.ingest(.unsigned(device: "meter", json: #"{"n":7}"#, source: .mqtt))

        let watch = SequenceWatch(store: store)
        #expect(await watch.check(device: "meter", seq: 8, field: "n") == .next, "the ledger's newest reading says 7 came last")
        #expect(await watch.check(device: "meter", seq: 11, field: "n") == .gap(after: 8))
        #expect(await watch.check(device: "meter", seq: 10, field: "n") == .repeated(last: 11))
        #expect(await watch.check(device: "meter", seq: 12, field: "n") == .next)
        #expect(await watch.check(device: "fresh", seq: 40, field: "n") == .next, "no history: anything starts")

        guard case let .unsigned(device, payload, _, _, source) = SequenceWatch.gapEvent(device: "meter", topic: "m/meter", after: 8, next: 11) else {
            Issue.record("not unsigned"); return
        }
        #expect(device == "mqtt-bridge" && source == .mqtt)
        #expect(String(decoding: payload, as: UTF8.self) == #"{"after":8,"device":"meter","event":"gap","missing":2,"next":11,"topic":"m/meter"}"#)
    }
}
