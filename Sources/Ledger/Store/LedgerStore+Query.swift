import FlowchainCrypto
import Foundation
import GRDB

extension LedgerStore {
    /// The newest `limit` readings of `device`, newest first (or, with `newestFirst: false`, the
    /// same readings oldest first).
    public func readings(device: String, limit: Int, newestFirst: Bool) throws -> [StoredReading] {
        let newest = try read("latest readings") { db in
            try Row.fetchAll(db, sql: "SELECT rowid, encoded FROM reading WHERE device = ? ORDER BY time DESC, rowid DESC LIMIT ?",
                             arguments: [device, limit]).map { try Self.storedReading($0, db) }
        }
        return newestFirst ? newest : newest.reversed()
    }

    /// Readings of `device` with `from <= time <= to`, oldest first, at most `limit` per page.
    public func readings(device: String, from: Int64 = .min, to: Int64 = .max, limit: Int = 100, after cursor: ReadingCursor? = nil) throws -> Page<StoredReading> {
        let limit = max(1, min(limit, 10_000))
        let items = try read("query readings") { db in
            let after = cursor ?? ReadingCursor(time: from, rowid: Int64.min)
            let rows = try Row.fetchAll(db, sql: """
                SELECT rowid, encoded FROM reading
                WHERE device = ? AND time >= ? AND time <= ? AND (time, rowid) > (?, ?)
                ORDER BY time, rowid LIMIT ?
                """, arguments: [device, from, to, after.time, after.rowid, limit + 1])
            return try rows.map { try Self.storedReading($0, db) }
        }
        let page = Array(items.prefix(limit))
        let next = items.count > limit ? page.last.map { ReadingCursor(time: $0.reading.time, rowid: $0.rowid).text } : nil
        return Page(items: page, nextCursor: next)
    }

    /// One page of `device`'s readings across several stores (this node's chain and copies of
    /// other nodes' chains, after keys moved), merged in (time, store, position) order. Each
    /// store has a tag (0 for the node's own); a cursor's position carries the tag in its top
    /// bits, so a page can be continued whatever store it ended in. With one store of tag 0 this
    /// is exactly `readings(device:from:to:limit:after:)`.
    public static func readings(in stores: [(tag: Int64, store: LedgerStore)], device: String, from: Int64 = .min, to: Int64 = .max,
                                limit: Int = 100, after cursor: ReadingCursor? = nil) throws -> Page<StoredReading> {
        let shift: Int64 = 40, mask: Int64 = (1 << 40) - 1
        var merged: [(time: Int64, tag: Int64, reading: StoredReading)] = []
        var more = false
        for (tag, store) in stores {
            var after: ReadingCursor? = nil
            if let cursor {
                let ctag = cursor.rowid >> shift, crow = cursor.rowid & mask
                after = tag < ctag ? ReadingCursor(time: cursor.time, rowid: .max)
                    : tag == ctag ? ReadingCursor(time: cursor.time, rowid: crow)
                    : ReadingCursor(time: cursor.time, rowid: .min)
            }
            let page = try store.readings(device: device, from: from, to: to, limit: limit, after: after)
            more = more || page.nextCursor != nil
            merged += page.items.map { ($0.reading.time, tag, $0) }
        }
        merged.sort { ($0.time, $0.tag, $0.reading.rowid) < ($1.time, $1.tag, $1.reading.rowid) }
        let page = Array(merged.prefix(limit))
        let next = (more || merged.count > limit) ? page.last.map { ReadingCursor(time: $0.time, rowid: $0.tag << shift | $0.reading.rowid).text } : nil
        return Page(items: page.map(\.reading), nextCursor: next)
    }

    /// Readings of `device` with seq above `afterSeq` (−1: all), in seq order, at most `limit`:
    /// the device's own numbering, the same whichever node stored them, so a follower resumes
    /// here at any node of a ring. Uses the (device, seq) unique index.
    public func readings(device: String, afterSeq: Int64, limit: Int) throws -> [StoredReading] {
        try read("readings after seq") { db in
            try Row.fetchAll(db, sql: "SELECT rowid, encoded FROM reading WHERE device = ? AND seq > ? ORDER BY seq LIMIT ?",
                             arguments: [device, afterSeq, max(1, min(limit, 10_000))])
                .map { try Self.storedReading($0, db) }
        }
    }

    /// `readings(device:afterSeq:limit:)` across several stores (this node's chain and copies of
    /// other nodes' chains), merged by seq; a reading held by two of them is listed once.
    public static func readings(in stores: [LedgerStore], device: String, afterSeq: Int64, limit: Int) throws -> [StoredReading] {
        var merged: [StoredReading] = []
        for store in stores { merged += try store.readings(device: device, afterSeq: afterSeq, limit: limit) }
        if stores.count == 1 { return merged }
        merged.sort { ($0.reading.seq, $0.reading.id) < ($1.reading.seq, $1.reading.id) }
        var seen = Set<Digest32>()
        return Array(merged.filter { seen.insert($0.reading.id).inserted }.prefix(limit))
    }

    /// The SQLite query plan of the device/time-range query, to show it uses the index.
    public func readingsQueryPlan() throws -> [String] {
        try read("explain query plan") { db in
            try Row.fetchAll(db, sql: """
                EXPLAIN QUERY PLAN SELECT rowid, encoded FROM reading
                WHERE device = ? AND time >= ? AND time <= ? AND (time, rowid) > (?, ?)
                ORDER BY time, rowid LIMIT ?
                """, arguments: ["d", 0, 1, 0, 0, 10]).map { $0["detail"] as String }
        }
    }

    public func reading(id: Digest32) throws -> StoredReading? {
        try read("get reading") { db in
            try Self.rows(idFrom: Data(id.bytes), below: nil, limit: 1, db).first.map { try Self.storedReading($0, db) }
        }
    }

    /// Readings are found by id through `reading_id`, keyed by (arrival bucket, id) with
    /// `idBucketShift` bits of rowid a bucket. A bucket's ids go in at once, sorted, when the
    /// next bucket starts (`indexCompleteBuckets`): the index only ever takes appends, so a new
    /// reading costs it no random page write. Below `id_indexed_below` every reading is in it;
    /// from there up (the newest bucket, at most 4,096 readings) a lookup scans the rows.
    static let idBucketShift: Int64 = 12

    /// The first rowid whose id is not yet in `reading_id`.
    static func idIndexedBelow(_ db: Database) throws -> Int64 {
        try Data.fetchOne(db.cachedStatement(sql: "SELECT value FROM meta WHERE key = 'id_indexed_below'")).flatMap { Int64(String(decoding: $0, as: UTF8.self)) } ?? 0
    }

    /// Indexes the ids of every complete bucket not yet in `reading_id` (on the writer, in the
    /// transaction that stored the first reading of a new bucket).
    static func indexCompleteBuckets(_ db: Database) throws {
        guard let top = try Int64.fetchOne(db.cachedStatement(sql: "SELECT MAX(rowid) FROM reading")) else { return }
        let newest = (top >> idBucketShift) << idBucketShift
        let indexed = try idIndexedBelow(db)
        guard newest > indexed else { return }
        try indexIds(rowids: indexed..<newest, db)
        try db.execute(sql: "INSERT INTO meta(key, value) VALUES ('id_indexed_below', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       arguments: [Data(String(newest).utf8)])
    }

    /// Puts the ids of the stored readings with rowids in `rowids` into `reading_id`, sorted
    /// (idempotent).
    static func indexIds(rowids: Range<Int64>, _ db: Database) throws {
        guard !rowids.isEmpty else { return }
        try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO reading_id(bucket, id, row)
            SELECT rowid >> \(idBucketShift), id, rowid FROM reading WHERE rowid >= ? AND rowid < ? ORDER BY rowid >> \(idBucketShift), id
            """).execute(arguments: [rowids.lowerBound, rowids.upperBound])
    }

    /// The buckets from the first argument down to the second, one row each (`b.x`): joined with
    /// `reading_id`, a seek per bucket in one statement.
    static let bucketsDown = "WITH RECURSIVE b(x) AS (SELECT ? UNION ALL SELECT x - 1 FROM b WHERE x > ?)"

    /// Rows (rowid, encoded) whose id is `from` exactly (`below` nil) or in `from..<below` (with
    /// `below` empty: every id from `from` up), at most `limit`, in id order.
    static func rows(idFrom from: Data, below: Data?, limit: Int, _ db: Database) throws -> [Row] {
        let indexed = try idIndexedBelow(db)
        // The indexed buckets that hold readings, newest first.
        let bottom = (try Int64.fetchOne(db.cachedStatement(sql: "SELECT MIN(rowid) FROM reading")) ?? 0) >> idBucketShift
        let top = (indexed - 1) >> idBucketShift
        guard let below else {
            if let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT rowid, encoded FROM reading WHERE rowid >= ? AND id = ?"), arguments: [indexed, from]) {
                return [row]
            }
            guard indexed > 0, top >= bottom else { return [] }
            return try Row.fetchOne(db.cachedStatement(sql: """
                \(bucketsDown) SELECT r.rowid, r.encoded FROM b JOIN reading_id i ON i.bucket = b.x AND i.id = ? JOIN reading r ON r.rowid = i.row LIMIT 1
                """), arguments: [top, bottom, from]).map { [$0] } ?? []
        }
        let bounded = !below.isEmpty
        let upper: [any DatabaseValueConvertible] = bounded ? [below] : []
        var found = try Row.fetchAll(db.cachedStatement(sql: "SELECT rowid, encoded, id FROM reading WHERE rowid >= ? AND id >= ? \(bounded ? "AND id < ?" : "") ORDER BY id LIMIT ?"),
                                     arguments: StatementArguments([indexed, from] + upper + [limit]))
        if indexed > 0, top >= bottom {
            found += try Row.fetchAll(db.cachedStatement(sql: """
                \(bucketsDown) SELECT r.rowid, r.encoded, i.id FROM b JOIN reading_id i ON i.bucket = b.x AND i.id >= ? \(bounded ? "AND i.id < ?" : "")
                JOIN reading r ON r.rowid = i.row ORDER BY i.id LIMIT ?
                """), arguments: StatementArguments([top, bottom, from] + upper + [limit]))
        }
        return Array(found.sorted { ($0["id"] as Data).lexicographicallyPrecedes($1["id"] as Data) }.prefix(limit))
    }

    /// Readings whose id starts with the hex prefix `prefix` (at most `limit`), for short ids on the command line.
    public func readings(idPrefix prefix: [UInt8], limit: Int = 2) throws -> [StoredReading] {
        var upper = prefix
        // Smallest byte string greater than every string with this prefix.
        while let last = upper.last, last == 0xff { upper.removeLast() }
        let hasUpper = !upper.isEmpty
        if hasUpper { upper[upper.count - 1] += 1 }
        let bound = upper
        return try read("get reading by prefix") { db in
            try Self.rows(idFrom: Data(prefix), below: hasUpper ? Data(bound) : Data(), limit: limit, db).map { try Self.storedReading($0, db) }
        }
    }

    public func block(height: UInt64) throws -> BlockHeader? {
        try read("get block") { db in
            try Data.fetchOne(db, sql: "SELECT header FROM block WHERE height = ?", arguments: [Int64(height)])
                .map { try BlockHeader(encoded: Array($0)) }
        }
    }

    /// Blocks newest first, starting at `below` (exclusive) when given.
    public func blocks(below: UInt64? = nil, limit: Int = 20) throws -> [BlockHeader] {
        try read("list blocks") { db in
            try Data.fetchAll(db, sql: "SELECT header FROM block WHERE height < ? ORDER BY height DESC LIMIT ?",
                              arguments: [below.map { Int64($0) } ?? Int64.max, limit])
                .map { try BlockHeader(encoded: Array($0)) }
        }
    }

    /// The chain's newest block, including one sealed by a journaled commit that readers do not
    /// see yet: while the writer holds such commits the tip is read on its connection, so asking
    /// does not commit the batch (the anchor chain asks at every win, every few seconds, and a
    /// commit per question cost about 1 KiB per reading at 1 reading/s: `flowchain bench disk`).
    public func tip() throws -> BlockHeader? {
        if batchOpen {
            do {
                return try pool.writeWithoutTransaction { db in try Self.tipHeader(db) }
            } catch let e as DatabaseError { throw Self.translate(e, path: path, operation: "get tip") }
        }
        return try read("get tip", publish: false) { db in try Self.tipHeader(db) }
    }

    /// The readings of block `height` in leaf order.
    public func readings(inBlock height: UInt64) throws -> [Reading] {
        try read("get block readings") { db in
            try Self.encodings(inBlock: height, db).map { try Reading(encoded: Array($0)) }
        }
    }

    public struct Counts: Sendable, Equatable {
        public let readings: Int
        public let pending: Int
        public let blocks: Int
        public let devices: Int
    }

    /// Counts in O(log n), whatever the ledger's size (a start, /status and `info` ask for them):
    /// readings occupy one contiguous rowid range (arrival order; only retention deletes, and only
    /// the oldest), blocks are heights 0…tip, devices are the ones bound to a key.
    public func counts() throws -> Counts {
        try read("count") { db in
            // Two queries: SQLite answers a lone MIN or MAX from the B-tree's edge, but a query with
            // both scans a whole index (at 10 M readings, over a second of a start).
            let low = try Int64.fetchOne(db, sql: "SELECT MIN(rowid) FROM reading")
            let high = try Int64.fetchOne(db, sql: "SELECT MAX(rowid) FROM reading")
            let readings = low.flatMap { l in high.map { Int($0 - l + 1) } } ?? 0
            let firstPending = max(try Self.firstPendingRowid(db), low ?? 0)
            return Counts(
                readings: readings,
                pending: high.map { Int(max(0, $0 - firstPending + 1)) } ?? 0,
                blocks: (try Int.fetchOne(db, sql: "SELECT MAX(height) FROM block")).map { $0 + 1 } ?? 0,
                devices: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM device WHERE signer IS NOT NULL") ?? 0)
        }
    }

    /// Each device with its newest `seq`, for resuming per-device counters.
    public func lastSeqs() throws -> [String: UInt64] {
        try read("last seqs") { db in
            var out: [String: UInt64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT device, MAX(seq) AS seq FROM reading GROUP BY device") {
                out[row["device"]] = UInt64(bitPattern: row["seq"] as Int64)
            }
            // Devices whose newest readings retention pruned continue after the pruned seq.
            for row in try Row.fetchAll(db, sql: "SELECT device, pruned_seq FROM device WHERE pruned_seq IS NOT NULL") {
                let seq = UInt64(bitPattern: row["pruned_seq"] as Int64), device: String = row["device"]
                out[device] = max(out[device] ?? 0, seq)
            }
            return out
        }
    }

    /// A device's newest seq, stored or pruned (one argument: the device).
    static let lastSeqSQL = """
        SELECT MAX(s) FROM (SELECT MAX(seq) AS s FROM reading WHERE device = ?1
                            UNION ALL SELECT pruned_seq FROM device WHERE device = ?1)
        """

    /// The newest seq of `device`, nil when it has none.
    public func lastSeq(device: String) throws -> UInt64? {
        try read("last seq") { db in
            try Int64.fetchOne(db, sql: Self.lastSeqSQL, arguments: [device]).map { UInt64($0) }
        }
    }

    /// Readings that arrived after `cursor` (a rowid), optionally of one device, oldest first:
    /// how a subscriber catches up without gaps.
    public func readings(afterCursor cursor: Int64, device: String? = nil, limit: Int = 500) throws -> [StoredReading] {
        try read("replay readings") { db in
            let rows = device == nil
                ? try Row.fetchAll(db, sql: "SELECT rowid, encoded FROM reading WHERE rowid > ? ORDER BY rowid LIMIT ?", arguments: [cursor, limit])
                : try Row.fetchAll(db, sql: "SELECT rowid, encoded FROM reading WHERE rowid > ? AND device = ? ORDER BY rowid LIMIT ?", arguments: [cursor, device, limit])
            return try rows.map { try Self.storedReading($0, db) }
        }
    }

    /// The newest arrival position (0 when empty): a subscription starting "now" resumes after it.
    public func lastCursor() throws -> Int64 {
        try read("last cursor") { db in try Int64.fetchOne(db, sql: "SELECT MAX(rowid) FROM reading") ?? 0 }
    }

    /// Blocks from `height` upwards, oldest first.
    public func blocks(from height: UInt64, limit: Int = 100) throws -> [BlockHeader] {
        try read("list blocks") { db in
            try Data.fetchAll(db, sql: "SELECT header FROM block WHERE height >= ? ORDER BY height LIMIT ?", arguments: [Int64(height), limit])
                .map { try BlockHeader(encoded: Array($0)) }
        }
    }

    /// Known devices with their newest seq and time, for dashboards. Walks the (device, time)
    /// index one device at a time, so it costs O(devices · log n), not a scan of every reading.
    public func devices(limit: Int = 1000) throws -> [(device: String, lastSeq: UInt64, lastTime: Int64)] {
        try read("list devices") { db in
            let names = try String.fetchAll(db, sql: """
                WITH RECURSIVE d(device) AS (
                    SELECT MIN(device) FROM reading
                    UNION ALL
                    SELECT (SELECT MIN(device) FROM reading WHERE device > d.device) FROM d WHERE d.device IS NOT NULL
                )
                SELECT device FROM d WHERE device IS NOT NULL LIMIT ?
                """, arguments: [limit])
            return try names.map { name in
                let seq = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM reading WHERE device = ?", arguments: [name]) ?? 0
                let time = try Int64.fetchOne(db, sql: "SELECT MAX(time) FROM reading WHERE device = ?", arguments: [name]) ?? 0
                return (name, UInt64(seq), time)
            }
        }
    }

    /// Everything needed to prove `id` offline: the reading, its Merkle path and its signed block.
    public func proof(for id: Digest32) throws -> ReadingProof? {
        try read("build proof") { db in
            guard let row = try Self.rows(idFrom: Data(id.bytes), below: nil, limit: 1, db).first else {
                return nil
            }
            let stored = try Self.storedReading(row, db)
            guard let height = stored.block, let leaf = stored.leaf else {
                return ReadingProof(reading: stored.reading, block: nil, merkle: nil)
            }
            guard let headerData = try Data.fetchOne(db, sql: "SELECT header FROM block WHERE height = ?", arguments: [Int64(height)]) else {
                throw StoreError.chainBroken(path: path, violation: "reading \(id) points at missing block \(height)")
            }
            let leaves = try Self.leaves(ofBlock: height, db)
            guard Int(leaf) < leaves.count else {
                throw StoreError.chainBroken(path: path, violation: "reading \(id) has leaf \(leaf) but block \(height) holds \(leaves.count)")
            }
            return ReadingProof(
                reading: stored.reading,
                block: try BlockHeader(encoded: Array(headerData)),
                merkle: MerkleTree.proof(for: Int(leaf), in: leaves))
        }
    }

    static func storedReading(_ row: Row, _ db: Database) throws -> StoredReading {
        let encoded: Data = row["encoded"]
        let rowid: Int64 = row["rowid"]
        // The block whose range starts at or before this rowid; it holds the reading if the range reaches it.
        let block = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT height, first_rowid, count FROM block WHERE first_rowid <= ? ORDER BY first_rowid DESC LIMIT 1"),
            arguments: [rowid])
        var height: UInt64? = nil, leaf: UInt32? = nil
        if let block, rowid < (block["first_rowid"] as Int64) + (block["count"] as Int64) {
            height = UInt64(block["height"] as Int64)
            leaf = UInt32(rowid - (block["first_rowid"] as Int64))
        }
        return StoredReading(reading: try Reading(encoded: Array(encoded)), rowid: rowid, block: height, leaf: leaf)
    }

    /// Block `height`'s Merkle leaves: kept with the block since v4, rebuilt from its readings before.
    static func leaves(ofBlock height: UInt64, _ db: Database) throws -> [Digest32] {
        if let blob = try Data.fetchOne(db, sql: "SELECT leaves FROM block WHERE height = ?", arguments: [Int64(height)]), blob.count % 32 == 0 {
            return try stride(from: 0, to: blob.count, by: 32).map { try Digest32(bytes: blob[blob.startIndex + $0 ..< blob.startIndex + $0 + 32]) }
        }
        return try encodings(inBlock: height, db).map { MerkleTree.leafHash($0) }
    }

    /// The encodings of block `height`'s readings, in leaf order; empty for an unknown block.
    static func encodings(inBlock height: UInt64, _ db: Database) throws -> [Data] {
        guard let range = try Row.fetchOne(db, sql: "SELECT first_rowid, count FROM block WHERE height = ?", arguments: [Int64(height)]) else {
            return []
        }
        let first: Int64 = range["first_rowid"], count: Int64 = range["count"]
        return try Data.fetchAll(db, sql: "SELECT encoded FROM reading WHERE rowid >= ? AND rowid < ? ORDER BY rowid",
                                 arguments: [first, first + count])
    }
}
