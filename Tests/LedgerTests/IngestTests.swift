import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
import Testing

@Suite("Ingest engine")
struct IngestTests {
    static let node = Fixtures.key(7)
    static let device = Fixtures.key(8)

    func engine(_ dir: TemporaryDirectory, maxBlock: Int = 4096, maxPayload: Int = 16 * 1024, blockInterval: Duration = .seconds(1)) throws -> IngestEngine {
        var config = IngestEngine.Configuration()
        config.blockInterval = blockInterval
        config.maxBlockReadings = maxBlock
        config.maxPayloadBytes = maxPayload
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.node.publicKey)
        return try IngestEngine(store: store, key: Self.node, configuration: config, now: { 1_000 }).running()
    }

    @Test func anAcknowledgedReadingIsAlreadyDurable() async throws {
        let dir = TemporaryDirectory()
        let engine = try engine(dir)
        let reading = try Fixtures.reading(Self.device, seq: 1)
        let ack = try await engine.submit(reading)
        #expect(ack == Ack(id: reading.id, device: "sensor-1", seq: 1))
        // The files as a crash right after the acknowledgement would leave them (the SQLite
        // transaction usually still open, the journal record fsynced): opened, the reading is
        // there (AckJournalTests shows the journal's part with settling held off).
        let crashed = TemporaryDirectory("crashed")
        for suffix in ["", "-wal", ".acklog"] where FileManager.default.fileExists(atPath: dir.file("ledger.sqlite" + suffix)) {
            try FileManager.default.copyItem(atPath: dir.file("ledger.sqlite" + suffix), toPath: crashed.file("ledger.sqlite" + suffix))
        }
        let reopened = try LedgerStore(path: crashed.file("ledger.sqlite"), owner: Self.node.publicKey)
        #expect(try reopened.reading(id: reading.id)?.reading == reading)
        // Another process sees it too: it asks the running engine to publish what it acknowledged.
        let other = try LedgerStore(path: dir.file("ledger.sqlite"), owner: nil, readOnly: true)
        #expect(try await other.offload { try $0.catchUpWithJournal(timeout: .seconds(30)) } == 0)
        #expect(try other.reading(id: reading.id)?.reading == reading)
    }

    @Test func aResentReadingIsTheSameReading() async throws {
        let dir = TemporaryDirectory()
        let engine = try engine(dir)
        let reading = try Fixtures.reading(Self.device, seq: 1)
        let first = try await engine.submit(reading)
        let again = try await engine.submit(reading)
        #expect(first == again)
        #expect(try engine.store.counts().readings == 1)
    }

    @Test func badReadingsGetPreciseErrorsAndLoseNothing() async throws {
        let dir = TemporaryDirectory()
        let engine = try engine(dir, maxPayload: 64)
        let good = try Fixtures.reading(Self.device, seq: 5)
        _ = try await engine.submit(good)

        let forged = try Reading(device: "sensor-1", seq: 6, time: 0, timeQuality: .synced, source: .rpc,
                                 payload: Array("{}".utf8), signer: Self.device.publicKey, signature: [UInt8](repeating: 1, count: 64))
        let cases: [(Reading, IngestError)] = [
            (forged, .badSignature(signer: Self.device.publicKey.hex)),
            (try Fixtures.reading(Self.device, seq: 6, payload: "[1,2]"), .payloadNotJSONObject("it is not strict JSON: expected a JSON object ('{') at byte 0")),
            (try Fixtures.reading(Self.device, seq: 6, payload: "\"text\""), .payloadNotJSONObject("it is not strict JSON: expected a JSON object ('{') at byte 0")),
            (try Fixtures.reading(Self.device, seq: 6, payload: "  "), .payloadNotJSONObject("it is not strict JSON: empty text, expected a JSON object at byte 2")),
            (try Fixtures.reading(Self.device, seq: 6, payload: "{\"a\":" + String(repeating: "1", count: 80) + "}"), .payloadTooLarge(size: 86, limit: 64)),
            (try Fixtures.reading(Self.device, seq: 5, payload: #"{"other":1}"#), .seqNotIncreasing(device: "sensor-1", seq: 5, last: 5)),
            (try Fixtures.reading(Self.device, seq: 3), .seqNotIncreasing(device: "sensor-1", seq: 3, last: 5)),
            (try Fixtures.reading(Self.device, seq: UInt64(Int64.max) + 1), .seqOutOfRange(UInt64(Int64.max) + 1)),
        ]
        for (reading, expected) in cases {
            await #expect(throws: expected) { try await engine.submit(reading) }
        }
        do {
            _ = try await engine.submit(try Fixtures.reading(Self.device, seq: 6, payload: "{\"a\":}"))
            Issue.record("invalid JSON accepted")
        } catch let IngestError.payloadNotJSONObject(why) {
            #expect(why.contains("expected a value at byte 5"), "\(why)")
        }
        #expect(try engine.store.counts().readings == 1)
        #expect(try await engine.submit(try Fixtures.reading(Self.device, seq: 6)).seq == 6, "still serving after bad input")
    }

    @Test func concurrentSubmitsAreGroupCommittedAndAllAcknowledged() async throws {
        let dir = TemporaryDirectory()
        let engine = try engine(dir)
        // Distinct devices: concurrent tasks have no arrival order, and seq must grow per device.
        let readings = try (0..<400).map { try Fixtures.reading(Self.device, device: "dev-\($0)", seq: 1) }
        let acks = try await withThrowingTaskGroup(of: Ack.self) { group in
            for r in readings { group.addTask { try await engine.submit(r) } }
            return try await group.reduce(into: Set<Ack>()) { $0.insert($1) }
        }
        #expect(acks.count == 400)
        #expect(try engine.store.counts().readings == 400)
        let transactions = await engine.transactions
        #expect(transactions < 100, "400 concurrent readings took \(transactions) transactions: not grouped")
    }

    @Test func blocksAreCutOnRequestAndWhenFull() async throws {
        let dir = TemporaryDirectory()
        // An hour between scheduled cuts: every block cut here is a full one (or asked for).
        let engine = try engine(dir, maxBlock: 10, blockInterval: .seconds(3600))
        for seq in 1...25 { _ = try await engine.submit(try Fixtures.reading(Self.device, seq: UInt64(seq))) }
        // Full blocks are sealed by the engine's loop right after the commit that filled them
        // (acknowledgements do not wait for sealing): give it a moment, far below the interval.
        _ = try await eventually(every: .milliseconds(5)) { try engine.store.counts().blocks >= 2 }
        #expect(try engine.store.counts().blocks == 2, "two full blocks cut without waiting for the interval")
        #expect(await engine.pendingCount == 5)
        let last = try #require(try await engine.cutBlock())
        #expect(last.height == 2 && last.count == 5)
        #expect(try await engine.cutBlock() == nil, "no empty blocks")
        try engine.store.verifyAll()
    }

    @Test func drainSealsEverythingAndRefusesNewReadings() async throws {
        let dir = TemporaryDirectory()
        let engine = try engine(dir)
        for seq in 1...3 { _ = try await engine.submit(try Fixtures.reading(Self.device, seq: UInt64(seq))) }
        try await engine.drain()
        #expect(try engine.store.counts().pending == 0)
        await #expect(throws: IngestError.shuttingDown) { try await engine.submit(try Fixtures.reading(Self.device, seq: 4)) }
    }
}

/// What the engine writes at low rates: a block cut rides in a later commit's transaction, and a
/// commit window gathers readings into one transaction.
@Suite("Ingest engine: fewer transactions at low rates")
struct IngestTransactionTests {
    static let node = Fixtures.key(9)

    func engine(_ dir: TemporaryDirectory, interval: Duration, window: Duration = .zero, clock: ManualMonotonicClock? = nil) throws -> IngestEngine {
        var config = IngestEngine.Configuration()
        config.blockInterval = interval
        config.commitWindow = window
        if let clock { config.monotonic = clock.reading }
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.node.publicKey)
        return try IngestEngine(store: store, key: Self.node, configuration: config).running()
    }

    /// Submits one reading and returns once the engine has done its bookkeeping too: the
    /// acknowledgement resolves before the engine notes when the reading became pending, and a
    /// test that moved the clock in between would start that wait late.
    func submit(_ engine: IngestEngine, _ i: Int) async throws -> Ack {
        let ack = try await engine.ingest(.unsigned(device: "slow", payload: Array(#"{"i":\#(i)}"#.utf8), time: nil, timeQuality: .synced, source: .rpc))
        _ = await engine.pendingCount
        return ack
    }

    @Test func aBlockCutRidesInTheNextCommitsTransaction() async throws {
        let dir = TemporaryDirectory()
        // The engine schedules by a clock the test moves: a seal is due after ⅞ of an interval,
        // the timer seals alone after 1¼ intervals, whatever a loaded machine does meanwhile.
        let clock = ManualMonotonicClock()
        let engine = try engine(dir, interval: .seconds(2), clock: clock)
        _ = try await submit(engine, 0)
        clock.advance(by: .milliseconds(1100))   // half an interval and more: not yet
        _ = try await submit(engine, 1)
        #expect(try engine.store.tip() == nil, "a commit ¾ of an interval after the oldest pending reading does not seal it")
        let before = engine.store.transactions
        clock.advance(by: .milliseconds(700))    // 1.8 s of 2: a seal is due
        try await Task.sleep(for: .seconds(1))    // the timer looks (every ½ s) and leaves it to the next commit
        #expect(try engine.store.tip() == nil, "the timer does not seal before 1¼ intervals")
        _ = try await submit(engine, 2)
        #expect(engine.store.transactions == before + 1, "one transaction stored reading 2 and sealed readings 0 and 1")
        let tip = try #require(try engine.store.tip())
        #expect(tip.count == 2 && tip.height == 0, "block 0 holds readings 0 and 1")
        #expect(await engine.pendingCount == 1)
        // Alone, a pending reading is sealed by the timer once it waited 1¼ intervals.
        clock.advance(by: .milliseconds(2600))
        _ = try await eventually(every: .milliseconds(100)) { try engine.store.tip()?.height == 1 }
        #expect(try engine.store.tip()?.height == 1, "reading 2 sealed by the timer")
    }

    @Test func aCommitWindowGathersReadingsIntoOneTransaction() async throws {
        let dir = TemporaryDirectory()
        // A window far longer than the pause between the two submissions, so a loaded machine
        // that wakes the second one late still lands it in the first one's transaction.
        let engine = try engine(dir, interval: .seconds(60), window: .seconds(3))
        let before = engine.store.transactions
        async let a = submit(engine, 0)
        try await Task.sleep(for: .milliseconds(5))
        async let b = submit(engine, 1)
        _ = try await (a, b)
        #expect(engine.store.transactions == before + 1, "both readings in one transaction")
    }
}
