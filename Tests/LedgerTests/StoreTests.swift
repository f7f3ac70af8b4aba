import FlowchainCrypto
import FlowchainTesting
import Foundation
@testable import Ledger
import Testing
import GRDB

@Suite("Durable store")
struct StoreTests {
    static let key = Fixtures.key(4)

    func makeStore(_ dir: TemporaryDirectory) throws -> LedgerStore {
        try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.key.publicKey)
    }

    @Test func commitsQueriesAndPagesWithoutGapsOrRepeats() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        var readings: [Reading] = []
        for i in 1...250 {
            // Several readings share a timestamp, so paging must order by (time, arrival).
            readings.append(try Fixtures.reading(Self.key, device: "a", seq: UInt64(i), time: 1000 + Int64(i / 3)))
            readings.append(try Fixtures.reading(Self.key, device: "b", seq: UInt64(i), time: 1000 + Int64(i)))
        }
        #expect(try store.commitSync(readings) == (1...500).map { .stored(rowid: Int64($0)) })

        var seen: [UInt64] = []
        var cursor: ReadingCursor? = nil
        repeat {
            let page = try store.readings(device: "a", limit: 7, after: cursor)
            seen += page.items.map(\.reading.seq)
            cursor = page.nextCursor.flatMap(ReadingCursor.init)
        } while cursor != nil
        #expect(seen == Array(1...250))

        let range = try store.readings(device: "b", from: 1010, to: 1019, limit: 100)
        #expect(range.items.map(\.reading.seq) == Array(10...19))
        #expect(range.nextCursor == nil)
        #expect(try store.readings(device: "nobody").items.isEmpty)
        #expect(try store.reading(id: readings[5].id)?.reading == readings[5])
        #expect(try store.reading(id: SHA256.hash([0])) == nil)
    }

    @Test func commitsAreFsyncedBeforeTheyReturn() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        #expect(try store.writerSynchronousMode() == 2, "synchronous must be FULL on the writer connection")
        let journal = try store.pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(journal == "wal")
        let page = try store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") }
        #expect(page == LedgerStore.pageSize && page == 1024, "a new ledger has 1 KiB pages (bench disk: half the bytes written per commit)")
    }

    @Test func aLedgerMadeWith4KiBPagesKeepsThemAndWorks() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("old.sqlite")
        // A ledger as earlier versions made it: SQLite's default 4 KiB pages.
        let old = try DatabaseQueue(path: path)
        try old.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t(x)") }
        try old.close()
        let store = try LedgerStore(path: path, owner: Self.key.publicKey)
        _ = try store.commitSync([try Fixtures.reading(Self.key, seq: 1)])
        #expect(try store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") } == 4096)
        #expect(try store.counts().readings == 1)
    }

    @Test func duplicatesAndStaleSeqsAreReportedNotStored() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        let r1 = try Fixtures.reading(Self.key, seq: 1)
        let r2 = try Fixtures.reading(Self.key, seq: 2)
        let stale = try Fixtures.reading(Self.key, seq: 2, payload: #"{"temperature":99}"#)
        #expect(try store.commitSync([r1, r2, r1]) == [.stored(rowid: 1), .stored(rowid: 2), .duplicate])
        #expect(try store.commitSync([r2, stale]) == [.duplicate, .seqNotIncreasing(last: 2)])
        #expect(try store.counts().readings == 2)
    }

    @Test func blocksSealPendingReadingsAndProve() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        let readings = try (1...10).map { try Fixtures.reading(Self.key, seq: UInt64($0)) }
        _ = try store.commitSync(readings)
        let b0 = try #require(try store.cutBlockSync(signedBy: Self.key, now: 5000, maxReadings: 4))
        let b1 = try #require(try store.cutBlockSync(signedBy: Self.key, now: 4000, maxReadings: 100))
        #expect(try store.cutBlockSync(signedBy: Self.key, now: 6000, maxReadings: 100) == nil)
        #expect(b0.height == 0 && b0.count == 4)
        #expect(b1.height == 1 && b1.count == 6 && b1.prev == b0.hash)
        #expect(b1.time == 5000, "time never goes backwards")
        #expect(try store.tip() == b1)
        #expect(try store.block(height: 0) == b0)
        #expect(try store.blocks(limit: 10).map(\.height) == [1, 0])
        #expect(try store.readings(inBlock: 1) == Array(readings[4...]))
        for r in readings {
            let proof = try #require(try store.proof(for: r.id))
            guard case .valid = proof.verify(owner: Self.key.publicKey) else { Issue.record("\(r.seq) does not prove"); continue }
        }
        try store.verifyAll()
    }

    @Test func dataSurvivesReopenAndBelongsToItsOwner() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("ledger.sqlite")
        do {
            let store = try makeStore(dir)
            _ = try store.commitSync([try Fixtures.reading(Self.key, seq: 1)])
            _ = try store.cutBlockSync(signedBy: Self.key, now: 1, maxReadings: 10)
            _ = try store.commitSync([try Fixtures.reading(Self.key, seq: 2)])
            try store.close()
        }
        let reopened = try makeStore(dir)
        #expect(try reopened.counts() == .init(readings: 2, pending: 1, blocks: 1, devices: 1))
        #expect(throws: StoreError.self) { try LedgerStore(path: path, owner: Fixtures.key(5).publicKey) }
    }

    @Test func readersWorkWhileTheWriterIsOpen() throws {
        let dir = TemporaryDirectory()
        let writer = try makeStore(dir)
        _ = try writer.commitSync([try Fixtures.reading(Self.key, seq: 1)])
        let reader = try LedgerStore(path: dir.file("ledger.sqlite"), owner: nil, readOnly: true)
        #expect(reader.owner == Self.key.publicKey)
        _ = try writer.commitSync([try Fixtures.reading(Self.key, seq: 2)])
        #expect(try reader.counts().readings == 2)
        #expect(throws: StoreError.self) { try LedgerStore(path: dir.file("missing.sqlite"), owner: nil, readOnly: true) }
    }

    @Test func theRangeQueryUsesTheDeviceTimeIndex() throws {
        let dir = TemporaryDirectory()
        let plan = try makeStore(dir).readingsQueryPlan().joined(separator: " | ")
        #expect(plan.contains("USING INDEX reading_device_time"), "\(plan)")
        #expect(!plan.contains("SCAN reading"), "a full scan: \(plan)")
        #expect(!plan.contains("TEMP B-TREE"), "a sort step: \(plan)")
    }
}
