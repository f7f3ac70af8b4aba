import FlowchainCrypto
import FlowchainTesting
import Foundation
@testable import Ledger
import Testing

/// The acknowledgement journal: the engine's commits are durable once their journal record is
/// fsynced; SQLite catches up in batches; a crash in between loses nothing acknowledged.
@Suite("Acknowledgement journal")
struct AckJournalTests {
    static let node = Fixtures.key(41)
    static let device = Fixtures.key(42)

    func engine(_ dir: TemporaryDirectory, settle: LedgerStore.SettlePolicy = .init(interval: .seconds(3600), whenIdle: .seconds(3600))) throws -> IngestEngine {
        var config = IngestEngine.Configuration()
        config.blockInterval = .seconds(3600)   // blocks are cut by the test
        // Settled only when the test says so, however slowly a loaded machine runs it.
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.node.publicKey, settle: settle)
        return try IngestEngine(store: store, key: Self.node, configuration: config, now: { 1_764_000_000_000 }).running()
    }

    /// Copies the ledger's files as a crash at this moment leaves them (what the process had
    /// written; the open SQLite transaction is not in them).
    func crashCopy(of dir: TemporaryDirectory) throws -> TemporaryDirectory {
        let copy = TemporaryDirectory("crashed")
        for suffix in ["", "-wal", ".acklog"] where FileManager.default.fileExists(atPath: dir.file("ledger.sqlite" + suffix)) {
            try FileManager.default.copyItem(atPath: dir.file("ledger.sqlite" + suffix), toPath: copy.file("ledger.sqlite" + suffix))
        }
        return copy
    }

    func submit(_ engine: IngestEngine, device: String, seqs: ClosedRange<UInt64>) async throws -> [Reading] {
        var out: [Reading] = []
        for seq in seqs {
            let r = try Fixtures.reading(Self.device, device: device, seq: seq, payload: #"{"n":\#(seq)}"#)
            _ = try await engine.submit(r)
            out.append(r)
        }
        return out
    }

    @Test func aCrashMidBatchLosesNoAcknowledgedReadingOrBlock() async throws {
        let dir = TemporaryDirectory("journal")
        let engine = try engine(dir)
        var sent = try await submit(engine, device: "a", seqs: 1...30)
        let first = try #require(try await engine.cutBlock())
        sent += try await submit(engine, device: "b", seqs: 1...20)
        let second = try #require(try await engine.cutBlock())
        sent += try await submit(engine, device: "a", seqs: 31...40)   // pending, unsealed
        #expect(engine.store.journal?.used ?? 0 > 0, "the commits are in the journal, not yet settled")

        let copy = try crashCopy(of: dir)
        let reopened = try LedgerStore(path: copy.file("ledger.sqlite"), owner: Self.node.publicKey)
        let replay = try #require(reopened.journalReplay)
        #expect(replay.readings == 60 && replay.blocks == 2, "\(replay)")
        for r in sent { #expect(try reopened.reading(id: r.id)?.reading == r) }
        #expect(try reopened.tip() == second && first.height == 0 && second.height == 1)
        let counts = try reopened.counts()
        #expect(counts.readings == 60 && counts.pending == 10 && counts.blocks == 2)
        try reopened.verifyAll()
        // Applied once: opening again applies nothing.
        try reopened.close()
        #expect(try LedgerStore(path: copy.file("ledger.sqlite"), owner: Self.node.publicKey).journalReplay == nil)
    }

    /// The anchor chain asks for the segment tip at every win: the answer includes the block the
    /// open batch just sealed, and asking does not commit the batch (which cost about 1 KiB a
    /// reading at 1 reading/s).
    @Test func theTipIncludesTheOpenBatchAndAskingForItKeepsTheBatchOpen() async throws {
        let dir = TemporaryDirectory("journal-tip")
        let engine = try engine(dir)
        _ = try await submit(engine, device: "t", seqs: 1...3)
        let sealed = try #require(try await engine.cutBlock())
        #expect(engine.store.batchOpen)
        #expect(try engine.store.tip() == sealed, "the writer's view: the block sealed in the open batch")
        #expect(engine.store.batchOpen, "asking for the tip did not commit the batch")
        // Another connection does not see it until the batch is published (a query publishes).
        let other = try LedgerStore(path: dir.file("ledger.sqlite"), owner: nil, readOnly: true)
        #expect(try other.tip() == nil)
        #expect(try engine.store.counts().blocks == 1 && !engine.store.batchOpen)
        #expect(try other.tip() == sealed && engine.store.tip() == sealed)
    }

    @Test func anchorBlocksStoredThroughTheJournalSurviveACrash() async throws {
        let dir = TemporaryDirectory("journal-anchor")
        let engine = try engine(dir)
        let sent = try await submit(engine, device: "anchored", seqs: 1...2)
        let encoded: [UInt8] = Array("an anchor block's encoding".utf8)
        try engine.store.saveAnchorBlock(hash: SHA256.hash(encoded), height: 7, encoded: encoded)
        #expect(engine.store.batchOpen, "stored in the journaled batch, not a transaction of its own")
        let copy = try crashCopy(of: dir)
        let reopened = try LedgerStore(path: copy.file("ledger.sqlite"), owner: Self.node.publicKey)
        #expect(reopened.journalReplay?.records == 3 && reopened.journalReplay?.readings == 2)
        #expect(try reopened.anchorBlocks().map(\.encoded) == [encoded] && reopened.anchorBlocks().map(\.height) == [7])
        for r in sent { #expect(try reopened.reading(id: r.id) != nil) }
    }

    /// Another process that writes (`devices add --data-dir`) asks first; the busy node's commits
    /// then release the write lock, so it gets its turn at once instead of after the next settle.
    @Test func anotherWriterGetsItsTurnSoonAfterAsking() async throws {
        let dir = TemporaryDirectory("journal-writer")
        let engine = try engine(dir)   // settling held off: without the request, the lock stays held
        let feeding = Task {
            var seq: UInt64 = 1
            while !Task.isCancelled, seq <= 3000 {
                _ = try? await engine.submit(Fixtures.reading(Self.device, device: "busy", seq: seq))
                seq += 1
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        defer { feeding.cancel() }
        _ = try await eventually(timeout: .seconds(120), every: .milliseconds(50)) { engine.store.batchOpen }
        try #require(engine.store.batchOpen, "the busy node holds its batch (and the write lock)")
        let path = dir.file("ledger.sqlite")
        let started = ContinuousClock.now
        let record = try await offPool {
            LedgerStore.requestPublish(path: path)
            let other = try LedgerStore(path: path, owner: nil, tailCheck: 0)
            defer { try? other.close() }
            return try other.register(device: "late", key: Fixtures.key(43).publicKey, now: 0)
        }
        let waited = ContinuousClock.now - started
        #expect(record.signer == Fixtures.key(43).publicKey)
        // Without the request it would wait for the next settle, an hour away; with it, the next
        // upkeep (five times a second) lets it in: a generous bound for a loaded machine.
        #expect(waited < .seconds(60), "the writer waited \(waited)")
    }

    @Test func aTornLastRecordIsIgnoredAndTheRecordsBeforeItApply() async throws {
        let dir = TemporaryDirectory("journal-torn")
        let engine = try engine(dir)
        let kept = try await submit(engine, device: "t", seqs: 1...5)
        let torn = try await submit(engine, device: "t", seqs: 6...6)[0]
        let copy = try crashCopy(of: dir)
        // Power failed while the last record was written: one byte of it never arrived.
        var log = try Data(contentsOf: URL(fileURLWithPath: copy.file("ledger.sqlite.acklog")))
        let at = try #require(log.range(of: Data(torn.encoded)))
        log[at.lowerBound + 10] ^= 0xFF
        try log.write(to: URL(fileURLWithPath: copy.file("ledger.sqlite.acklog")))
        let reopened = try LedgerStore(path: copy.file("ledger.sqlite"), owner: Self.node.publicKey)
        #expect(reopened.journalReplay?.readings == 5)
        for r in kept { #expect(try reopened.reading(id: r.id) != nil) }
        #expect(try reopened.reading(id: torn.id) == nil)
        try reopened.verifyAll()
    }

    @Test func aRecordThatDoesNotApplyStopsTheOpenAndNothingOfTheJournalIsApplied() async throws {
        let dir = TemporaryDirectory("journal-bad")
        let engine = try engine(dir)
        _ = try await submit(engine, device: "x", seqs: 1...3)
        let copy = try crashCopy(of: dir)
        // A record whose checksum is right but whose reading claims a rowid it cannot have.
        let journal = AckJournal(path: copy.file("ledger.sqlite.acklog"), unsafeNoSync: false)
        let records = try journal.records()
        let stranger = try Fixtures.reading(Self.device, device: "x", seq: 4)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: copy.file("ledger.sqlite.acklog")))
        let used = records.reduce(0) { $0 + AckJournal.overhead + $1.entry.encoded().count }
        let body = AckJournal.Entry(readings: [(rowid: 99, encoded: stranger.encoded)]).encoded()
        let lsn = try #require(records.last?.lsn) + 1
        var frame = AckJournal.magic
        withUnsafeBytes(of: UInt32(body.count).bigEndian) { frame.append(contentsOf: $0) }
        withUnsafeBytes(of: lsn.bigEndian) { frame.append(contentsOf: $0) }
        frame += body + AckJournal.checksum(lsn: lsn, body: body)
        bytes.replaceSubrange(used..<used + frame.count, with: frame)
        try bytes.write(to: URL(fileURLWithPath: copy.file("ledger.sqlite.acklog")))
        let journalBefore = try Data(contentsOf: URL(fileURLWithPath: copy.file("ledger.sqlite.acklog")))
        #expect {
            _ = try LedgerStore(path: copy.file("ledger.sqlite"), owner: Self.node.publicKey)
        } throws: { error in
            "\(error)".contains("acknowledgement journal record \(lsn) does not apply") && "\(error)".contains("rowid 99")
        }
        // Nothing was applied (the replay is one transaction), and the journal is kept as it was.
        let after = try LedgerStore(path: copy.file("ledger.sqlite"), owner: nil, readOnly: true)
        #expect(try after.counts().readings == 0 && after.lastSeq(device: "x") == nil)
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy.file("ledger.sqlite.acklog"))) == journalBefore)
    }

    @Test func anIdleNodeSettlesItsJournalAndAnotherProcessSeesEveryAcknowledgedReading() async throws {
        let dir = TemporaryDirectory("journal-idle")
        let engine = try engine(dir, settle: .init(interval: .seconds(3600), whenIdle: .seconds(3)))
        let sent = try await submit(engine, device: "idle", seqs: 1...3)
        // Another process (a read-only store) asks the running engine to publish: it sees all three.
        let other = try LedgerStore(path: dir.file("ledger.sqlite"), owner: nil, readOnly: true)
        #expect(try await other.offload { try $0.catchUpWithJournal(timeout: .seconds(30)) } == 0)
        for r in sent { #expect(try other.reading(id: r.id)?.reading == r) }
        #expect(!FileManager.default.fileExists(atPath: engine.store.publishRequestPath), "the request was taken")
        // Idle for `whenIdle` (3 s here): the batch is made durable in SQLite and the journal restarts.
        _ = try await eventually(timeout: .seconds(15), every: .milliseconds(100)) { engine.store.journal?.used == 0 }
        #expect(engine.store.journal?.used == 0)
        #expect(try engine.store.writerSynchronousMode() == 2, "outside a batch every commit is fsynced by SQLite")
        let copy = try crashCopy(of: dir)
        #expect(try LedgerStore(path: copy.file("ledger.sqlite"), owner: Self.node.publicKey).journalReplay == nil, "nothing left to apply")
    }
}
