import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
import Testing

@Suite("Readings of one device keep their order")
struct IngestOrderTests {
    static let node = Fixtures.key(31)
    static let device = Fixtures.key(32)

    @Test func aThousandReadingsInBatchesAndPipelinedTurnsAreAllStored() async throws {
        let dir = TemporaryDirectory()
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.node.publicKey)
        let engine = try IngestEngine(store: store, key: Self.node).running()
        let readings = try (1...1000).map { try Fixtures.reading(Self.device, device: "ordered", seq: UInt64($0), payload: "{\"n\":\($0)}") }
        let order = IngestOrder()
        // Ten batches of 50, then 500 single submissions, all in flight at once; each takes its
        // turn in send order, though validation runs in parallel.
        let results = await withTaskGroup(of: [Result<Ack, IngestError>].self) { group in
            for b in 0..<10 {
                let turn = order.next()
                let batch = readings[(b * 50)..<((b + 1) * 50)].map { Submission.signed($0) }
                group.addTask { await engine.ingest(batch, after: turn) }
            }
            for r in readings[500...] {
                let turn = order.next()
                group.addTask { [await engine.ingest([.signed(r)], after: turn)[0]] }
            }
            var all: [Result<Ack, IngestError>] = []
            for await r in group { all += r }
            return all
        }
        let refused = results.compactMap { if case let .failure(e) = $0 { e } else { nil } }
        #expect(refused.isEmpty, "refused: \(refused.prefix(3))")
        #expect(try store.counts().readings == 1000)
        #expect(try store.lastSeq(device: "ordered") == 1000)
    }

    @Test func readingsTheNodeNumbersAndSignsInParallelAreStoredInNumberingOrder() async throws {
        // The node numbers unsigned readings in turn but signs them in parallel, so later batches
        // can finish signing first; none may then be stored ahead of an earlier seq (it would be
        // refused as "seq not increasing" and lost).
        let dir = TemporaryDirectory()
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.node.publicKey)
        let engine = try IngestEngine(store: store, key: Self.node).running()
        let order = IngestOrder()
        let results = await withTaskGroup(of: [Result<Ack, IngestError>].self) { group in
            for b in 0..<40 {
                let turn = order.next()
                // Batches of varied size, so signing work per call differs.
                let batch = (0..<(1 + (b * 7) % 23)).map { i in
                    Submission.unsigned(device: "node-numbered-\(i % 3)", payload: Array("{\"b\":\(b),\"i\":\(i)}".utf8),
                                        time: nil, timeQuality: .synced, source: .mqtt)
                }
                group.addTask { await engine.ingest(batch, after: turn) }
            }
            var all: [Result<Ack, IngestError>] = []
            for await r in group { all += r }
            return all
        }
        let refused = results.compactMap { if case let .failure(e) = $0 { e } else { nil } }
        #expect(refused.isEmpty, "refused: \(refused.prefix(3))")
        for d in 0..<3 {
            let stored = try store.readings(afterCursor: 0, device: "node-numbered-\(d)", limit: 1000)
            #expect(stored.map(\.reading.seq) == Array(1...UInt64(stored.count)), "consecutive, in arrival order")
            // Arrival order is submission order: (b, i) increases along the stored rows.
            let keys = stored.map { r -> [Int] in
                let text = String(decoding: r.reading.payload, as: UTF8.self)
                return text.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            }
            #expect(keys == keys.sorted { $0.lexicographicallyPrecedes($1) })
            #expect(stored.allSatisfy { $0.reading.hasValidSignature })
        }
        #expect(try store.counts().readings == results.count)
    }

    @Test func aBatchIsIngestedInTheOrderGiven() async throws {
        let dir = TemporaryDirectory()
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.node.publicKey)
        let engine = try IngestEngine(store: store, key: Self.node).running()
        let readings = try (1...200).map { try Fixtures.reading(Self.device, device: "batch", seq: UInt64($0)) }
        let results = await engine.ingest(readings.map { .signed($0) })
        #expect(results.allSatisfy { (try? $0.get()) != nil })
        let stored = try store.readings(afterCursor: 0, device: "batch", limit: 500).map(\.reading.seq)
        #expect(stored == Array(1...200), "arrival order is send order")
    }

    @Test func aTurnThatFailsStillLetsTheNextOneGo() async throws {
        let dir = TemporaryDirectory()
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.node.publicKey)
        let engine = try IngestEngine(store: store, key: Self.node).running()
        let order = IngestOrder()
        let bad = order.next(), good = order.next()
        let forged = try Reading(device: "d", seq: 1, time: 1, timeQuality: .synced, source: .rpc, payload: Array("{}".utf8),
                                 signer: Self.device.publicKey, signature: [UInt8](repeating: 7, count: 64))
        async let second = engine.ingest([.signed(try Fixtures.reading(Self.device, device: "d", seq: 2))], after: good)
        let first = await engine.ingest([.signed(forged)], after: bad)
        #expect(throws: IngestError.self) { try first[0].get() }
        #expect(try await second[0].get().seq == 2)
    }
}

@Suite("One cutter at a time")
struct BlockCuttingTests {
    static let node = Fixtures.key(33)
    static let device = Fixtures.key(34)

    /// The block cutter and a full queue both cut blocks; racing them must neither seal a reading
    /// twice nor lose count of what is pending.
    @Test func concurrentCutsSealEveryReadingOnceAndKeepPendingExact() async throws {
        let dir = TemporaryDirectory()
        var config = IngestEngine.Configuration()
        config.maxBlockReadings = 7
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.node.publicKey)
        let engine = try IngestEngine(store: store, key: Self.node, configuration: config).running()
        let readings = try (1...300).map { try Fixtures.reading(Self.device, device: "d\($0)", seq: 1, payload: "{\"n\":\($0)}") }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for r in readings { group.addTask { _ = try await engine.submit(r) } }
            for _ in 0..<40 { group.addTask { _ = try await engine.cutBlock() } }
            try await group.waitForAll()
        }
        // A cut that a full queue started may still be finishing; the next cut waits for it.
        while try await engine.cutBlock() != nil {}
        #expect(await engine.pendingCount == 0)
        let counts = try store.counts()
        #expect(counts.readings == 300 && counts.pending == 0)
        try store.verifyAll()
        let snapshot = await engine.snapshot()
        let tip = try store.tip()
        #expect(snapshot.readings == 300 && snapshot.blocks == counts.blocks && snapshot.tip == tip)
    }

    @Test func newestFirstIsHonoured() throws {
        let dir = TemporaryDirectory()
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.node.publicKey)
        _ = try store.commitSync(try (1...5).map { try Fixtures.reading(Self.device, device: "t", seq: UInt64($0), time: Int64($0)) })
        #expect(try store.readings(device: "t", limit: 3, newestFirst: true).map(\.reading.seq) == [5, 4, 3])
        #expect(try store.readings(device: "t", limit: 3, newestFirst: false).map(\.reading.seq) == [3, 4, 5])
    }
}
