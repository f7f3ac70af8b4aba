import FlowchainCrypto
import FlowchainTesting
import Foundation
import GRDB
@testable import Ledger
import Testing

/// Readings are found by id through an index keyed by (arrival bucket, id), filled a whole bucket
/// at a time (a random-keyed id index cost a 4 KiB write-back per reading at each WAL checkpoint
/// on a big ledger), and lookups by id and by id prefix still find every one.
@Suite("Reading ids, indexed by arrival")
struct IDIndexTests {
    static let key = Fixtures.key(61)

    /// Readings spread over ten buckets (rowids 1…40,000; a bucket is 4,096).
    func bigLedger(_ dir: TemporaryDirectory) throws -> (LedgerStore, [Reading]) {
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.key.publicKey)
        var all: [Reading] = []
        for chunk in 0..<10 {
            let readings = try (0..<4000).map { i in
                try Fixtures.reading(Self.key, device: "d\(i % 8)", seq: UInt64(chunk * 500 + i / 8 + 1), time: Int64(chunk * 4000 + i))
            }
            #expect(try store.commitSync(readings).allSatisfy { if case .stored = $0 { true } else { false } })
            all += readings
        }
        return (store, all)
    }

    @Test func everyReadingIsFoundByIdAndByPrefixAcrossBuckets() throws {
        let dir = TemporaryDirectory("id-index")
        let (store, all) = try bigLedger(dir)
        for r in [all[0], all[16_383], all[16_384], all[25_000], all[39_999]] {
            #expect(try store.reading(id: r.id)?.reading == r)
            #expect(try store.proof(for: r.id)?.reading == r)
            let byPrefix = try store.readings(idPrefix: Array(r.id.bytes.prefix(6)), limit: 2)
            #expect(byPrefix.map(\.reading) == [r], "a 6-byte prefix is unique among 40,000")
        }
        #expect(try store.reading(id: SHA256.hash(Array("nothing".utf8))) == nil)
        // A one-byte prefix matches about 156 readings in every bucket: the first two in id order.
        let first = all.map(\.id).filter { $0.bytes[0] == 0x42 }.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        #expect(try store.readings(idPrefix: [0x42], limit: 2).map(\.reading.id) == Array(first.prefix(2)))
        // The same reading again is a duplicate, another with a used seq is not.
        let stale = try Fixtures.reading(Self.key, device: "d0", seq: 1, time: 5, payload: #"{"other":1}"#)
        #expect(try store.commitSync([all[0], stale]) == [.duplicate, .seqNotIncreasing(last: 5000)])
        // Complete buckets (4,096 readings) are in the index, each added at once; the newest is not.
        let (indexedBelow, entries, buckets) = try store.pool.read { db in
            (try LedgerStore.idIndexedBelow(db), try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading_id") ?? -1,
             try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT bucket) FROM reading_id") ?? -1)
        }
        #expect(indexedBelow == 36_864 && entries == 36_863 && buckets == 9, "\(indexedBelow) \(entries) \(buckets)")
        // Lookups seek each bucket by (bucket, id): no scan of the index or the table.
        let plan = try store.pool.read { db in
            try Row.fetchAll(db, sql: """
                EXPLAIN QUERY PLAN WITH RECURSIVE b(x) AS (SELECT 8 UNION ALL SELECT x - 1 FROM b WHERE x > 0)
                SELECT r.rowid, r.encoded FROM b JOIN reading_id i ON i.bucket = b.x AND i.id = ? JOIN reading r ON r.rowid = i.row LIMIT 1
                """, arguments: [Data(all[0].id.bytes)]).map { $0["detail"] as String }.joined(separator: " | ")
        }
        #expect(plan.contains("SEARCH i USING PRIMARY KEY (bucket=? AND id=?)") && plan.contains("SEARCH r USING INTEGER PRIMARY KEY"), "\(plan)")
    }

    /// The index only ever takes whole buckets, sorted: what a day of readings at 1 reading/s
    /// writes to it is appends, not a random leaf per reading.
    @Test func aBucketIsIndexedWhenTheNextOneStartsAndNotBefore() throws {
        let dir = TemporaryDirectory("id-index-bucket")
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.key.publicKey)
        func indexed() throws -> (Int64, Int) {
            try store.pool.read { db in (try LedgerStore.idIndexedBelow(db), try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading_id") ?? -1) }
        }
        let first = try (1...4095).map { try Fixtures.reading(Self.key, device: "b", seq: UInt64($0), time: Int64($0)) }
        _ = try store.commitSync(first)
        #expect(try indexed() == (0, 0), "rowids 1…4,095 are the first bucket, still incomplete")
        let next = try Fixtures.reading(Self.key, device: "b", seq: 4096, time: 4096)
        _ = try store.commitSync([next])
        #expect(try indexed() == (4096, 4095), "rowid 4,096 starts the second bucket: the first is indexed")
        for r in [first[0], first[4094], next] { #expect(try store.reading(id: r.id)?.reading == r) }
    }

    @Test func aLedgerFromBeforeTheChangeKeepsItsReadingsAndFindsThemById() throws {
        let dir = TemporaryDirectory("id-index-upgrade")
        let path = dir.file("ledger.sqlite")
        // Schema v8: the reading table with UNIQUE(id).
        let readings = try (1...50).map { try Fixtures.reading(Self.key, device: "old", seq: UInt64($0), time: Int64($0)) }
        let old = try DatabaseQueue(path: path)
        try Schema.migrator.migrate(old, upTo: "v8-block-hash-not-indexed")
        try old.write { db in
            for r in readings {
                try db.execute(sql: "INSERT INTO reading(id, device, seq, time, encoded) VALUES (?, ?, ?, ?, ?)",
                               arguments: [Data(r.id.bytes), r.device, Int64(r.seq), r.time, Data(r.encoded)])
            }
        }
        try old.close()
        // What a node says before it opens the file (the upgrade copies the reading table).
        let upgrade = try #require(LedgerStore.pendingUpgrades(path: path))
        #expect(upgrade.migrations == ["v9-id-index-by-arrival", "v10-id-index-by-complete-bucket"] && upgrade.readings == 50, "\(upgrade)")
        let store = try LedgerStore(path: path, owner: Self.key.publicKey)
        #expect(LedgerStore.pendingUpgrades(path: path) == nil, "nothing left to upgrade")
        #expect(try store.counts().readings == 50)
        for r in readings { #expect(try store.reading(id: r.id)?.reading == r) }
        #expect(try store.readings(device: "old", limit: 100).items.map(\.reading.seq) == Array(1...50))
        let sql = try store.pool.read { db in try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'reading'") } ?? ""
        #expect(!sql.contains("id BLOB NOT NULL UNIQUE"), "the random-keyed id index is gone: \(sql)")
        #expect(try store.commitSync([readings[3]]) == [.duplicate])
        _ = try store.cutBlockSync(signedBy: Self.key, now: 100, maxReadings: 100)
        try store.verifyAll()
    }
}
