import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
import Synchronization
import Testing

@Suite("Clock synchronisation and timeSynced")
struct ClockSyncTests {
    static let node = Fixtures.key(17)

    final class FakeKernel: Sendable {
        let synced = Atomic<Bool>(false)
        let reads = Atomic<Int>(0)
        func read() -> ClockSync.State {
            reads.add(1, ordering: .relaxed)
            let s = synced.load(ordering: .relaxed)
            return ClockSync.State(synchronised: s, maxErrorMicroseconds: s ? 20_000 : 16_000_000)
        }
    }

    @Test func theKernelIsAskedAtMostOnceASecondAndTheModesOverrideIt() {
        let kernel = FakeKernel()
        let clock = ClockSync(mode: .kernel) { kernel.read() }
        #expect(clock.quality == .unsynced)
        for _ in 0..<100 { _ = clock.synchronised }
        #expect(kernel.reads.load(ordering: .relaxed) == 1, "cached for a second")
        #expect(ClockSync(mode: .trusted) { kernel.read() }.quality == .synced)
        #expect(ClockSync(mode: .untrusted) { kernel.read() }.quality == .unsynced)
        // This machine's own kernel answers (whatever it says, it is readable and consistent).
        let real = ClockSync().state
        #expect(real.maxErrorMicroseconds >= 0, "adjtimex is readable")
        #expect(real.synchronised == (real.maxErrorMicroseconds < 16_000_000))
    }

    @Test func whatTheNodeStampsCarriesTheClocksStateAndAGivenTimeKeepsItsOwn() async throws {
        let dir = TemporaryDirectory()
        let kernel = FakeKernel()
        var config = IngestEngine.Configuration()
        config.clock = ClockSync(mode: .kernel) { kernel.read() }
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.node.publicKey)
        let engine = try IngestEngine(store: store, key: Self.node, configuration: config, now: { 5_000 }).running()
        let payload = Array(#"{"t":1}"#.utf8)
        let stamped = try await engine.ingest(.unsigned(device: "d", payload: payload, time: nil, timeQuality: .synced, source: .rpc))
        let given = try await engine.ingest(.unsigned(device: "d", payload: payload, time: 4_000, timeQuality: .synced, source: .rpc))
        #expect(try store.reading(id: stamped.id)?.reading.timeQuality == .unsynced, "stamped by the node while its clock is not synchronised")
        #expect(try store.reading(id: stamped.id)?.reading.time == 5_000)
        #expect(try store.reading(id: given.id)?.reading.timeQuality == .synced, "a time given by the sender keeps the sender's word")
    }
}
