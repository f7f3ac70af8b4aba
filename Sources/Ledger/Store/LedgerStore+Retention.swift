import FlowchainCrypto
import Foundation
import GRDB

/// A reading whose payload retention dropped: its id and where it was sealed remain.
public struct PrunedReading: Sendable, Equatable {
    public let id: Digest32
    public let block: UInt64
    public let leaf: UInt32
    /// The time of the block that sealed it (ms).
    public let blockTime: Int64
}

/// What one pruning pass did.
public struct PruneReport: Sendable, Equatable {
    /// Blocks and readings pruned in this pass.
    public var blocks = 0
    public var readings = 0
    /// Blocks below this height are pruned (after the pass).
    public var prunedBelow: UInt64 = 0
    /// The database file's size before and after (bytes; after pages were given back).
    public var bytesBefore: Int64 = 0
    public var bytesAfter: Int64 = 0
    /// The file was rewritten once so that freed pages can be given back (`auto_vacuum`).
    public var convertedToIncrementalVacuum = false
}

extension LedgerStore {
    /// How many of the newest blocks are never pruned: the tail a start re-verifies stays whole.
    public static let unprunableTail = LedgerStore.defaultTailCheck

    /// Blocks below this height have been pruned (0: none).
    public func prunedBelow() throws -> UInt64 {
        try read("pruned height") { db in try Self.prunedBelow(db) }
    }

    static func prunedBelow(_ db: Database) throws -> UInt64 {
        guard let data = try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'pruned_below'"),
              let text = String(data: data, encoding: .utf8), let h = UInt64(text) else { return 0 }
        return h
    }

    /// The pruned reading `id`, or nil when it is not one.
    public func prunedReading(id: Digest32) throws -> PrunedReading? {
        try read("pruned reading") { db in
            if let row = try Row.fetchOne(db, sql: """
                SELECT p.height, p.leaf, b.time FROM pruned p JOIN block b ON b.height = p.height WHERE p.id = ?
                """, arguments: [Data(id.bytes)]) {
                return PrunedReading(id: id, block: UInt64(row[0] as Int64), leaf: UInt32(row[1] as Int64), blockTime: row[2])
            }
            // Pruned by this version: the id is in `reading_id` below the first kept block's rows.
            let below = try Self.prunedBelow(db)
            guard below > 0,
                  let bound = try Int64.fetchOne(db, sql: "SELECT first_rowid + count FROM block WHERE height = ?", arguments: [Int64(below - 1)]),
                  let row = try Int64.fetchOne(db, sql: """
                    \(Self.bucketsDown) SELECT i.row FROM b JOIN reading_id i ON i.bucket = b.x AND i.id = ? LIMIT 1
                    """, arguments: [(bound - 1) >> Self.idBucketShift, 0, Data(id.bytes)]),
                  row < bound else { return nil }
            let first = try db.cachedStatement(sql: "SELECT first_rowid FROM block WHERE height = ?")
            // Blocks seal consecutive rowids in height order: the last block starting at or below `row`.
            let after = try Self.firstHeight(db, from: 0) { h in try Int64.fetchOne(first, arguments: [Int64(h)]).map { $0 > row } ?? true }
            guard after > 0, let block = try Row.fetchOne(db, sql: "SELECT height, first_rowid, count, time FROM block WHERE height = ?", arguments: [Int64(after - 1)]),
                  row < (block["first_rowid"] as Int64) + (block["count"] as Int64) else { return nil }
            return PrunedReading(id: id, block: UInt64(block["height"] as Int64), leaf: UInt32(row - (block["first_rowid"] as Int64)), blockTime: block["time"])
        }
    }

    /// The database's size in bytes (its pages; the WAL is not counted).
    public func fileBytes() throws -> Int64 {
        try read("file size") { db in
            (try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0) * (try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 0)
        }
    }

    /// The first block at or after the pruned height whose time is not before `cutoff` (the tip's
    /// height + 1 when all are older).
    public func firstBlock(notOlderThan cutoff: Int64) throws -> UInt64 {
        try read("blocks by age") { db in
            // Block times never decrease with height (a rule of the chain): a binary search over
            // heights, O(log n) lookups, instead of scanning every block row each pass.
            let time = try db.cachedStatement(sql: "SELECT time FROM block WHERE height = ?")
            return try Self.firstHeight(db, from: try Self.prunedBelow(db)) { h in
                try Int64.fetchOne(time, arguments: [Int64(h)]).map { $0 >= cutoff } ?? true
            }
        }
    }

    /// The lowest height in `from`…tip + 1 where `holds` (monotone: false, then true) is true.
    static func firstHeight(_ db: Database, from: UInt64, _ holds: (UInt64) throws -> Bool) throws -> UInt64 {
        var low = from, high = UInt64((try Int64.fetchOne(db, sql: "SELECT MAX(height) FROM block") ?? -1) + 1)
        while low < high {
            let mid = low + (high - low) / 2
            if try holds(mid) { high = mid } else { low = mid + 1 }
        }
        return low
    }

    /// The height below which pruning stops so that at least `readings` readings (sealed, not yet
    /// pruned) are pruned, oldest first; bounded by what may be pruned.
    public func pruneBound(readings wanted: Int) throws -> UInt64 {
        try read("blocks by count") { db in
            let below = try Self.prunedBelow(db)
            let limit = try Self.prunableBelow(db)
            guard below < limit, wanted > 0 else { return below }
            guard let first = try Int64.fetchOne(db, sql: "SELECT first_rowid FROM block WHERE height = ?", arguments: [Int64(below)]) else { return below }
            // Readings sealed from `below` through h grow with h: the first h reaching `wanted`.
            let end = try db.cachedStatement(sql: "SELECT first_rowid + count FROM block WHERE height = ?")
            let h = try Self.firstHeight(db, from: below) { h in
                try Int64.fetchOne(end, arguments: [Int64(h)]).map { $0 - first >= Int64(wanted) } ?? true
            }
            return min(limit, h + 1)
        }
    }

    /// Blocks below this height may be pruned: all but the newest `unprunableTail`.
    static func prunableBelow(_ db: Database) throws -> UInt64 {
        guard let tip = try Int64.fetchOne(db, sql: "SELECT MAX(height) FROM block") else { return 0 }
        return UInt64(max(0, tip + 1 - Int64(unprunableTail)))
    }

    /// Drops the payloads of the readings of every block below `height` (not below the newest
    /// `unprunableTail` blocks), keeping each one's id with its block and leaf, and the block
    /// headers; then gives the freed pages back to the file system. Works through the blocks in
    /// transactions of about `batch` readings, so ingest goes on in between.
    @discardableResult
    public func prune(below height: UInt64, batch: Int = 20_000, release: FreePageRelease = .all) async throws -> PruneReport {
        var report = PruneReport()
        report.bytesBefore = try fileBytes()
        while true {
            let step = try await write("prune") { db -> (blocks: Int, readings: Int, below: UInt64) in
                let from = try Self.prunedBelow(db)
                let to = min(height, try Self.prunableBelow(db))
                guard from < to else { return (0, 0, from) }
                let (h, pruned) = try Self.pruneBlocks(db, from: from, to: to, budget: batch, path: self.path)
                return (Int(h - from), pruned, h)
            }
            report.blocks += step.blocks
            report.readings += step.readings
            report.prunedBelow = step.below
            if step.blocks == 0 { break }
        }
        if report.blocks > 0 { report.convertedToIncrementalVacuum = try releaseFreePages(release) }
        report.bytesAfter = try fileBytes()
        return report
    }

    /// Drops the readings of blocks `from..<to` (stopping after the block that reaches `budget`
    /// readings), keeping each one's id with its block and leaf and each device's newest pruned
    /// seq; the blocks' leaves go, their headers stay. Records the new pruned height and returns it
    /// with how many readings were dropped.
    static func pruneBlocks(_ db: Database, from: UInt64, to: UInt64, budget: Int, path: String) throws -> (below: UInt64, readings: Int) {
        var h = from, pruned = 0
        let seqs = try db.cachedStatement(sql: """
            UPDATE device SET pruned_seq = MAX(COALESCE(pruned_seq, 0), s.seq)
            FROM (SELECT device AS d, MAX(seq) AS seq FROM reading WHERE rowid >= ? AND rowid < ? GROUP BY device) AS s
            WHERE device.device = s.d
            """)
        let drop = try db.cachedStatement(sql: "DELETE FROM reading WHERE rowid >= ? AND rowid < ?")
        let indexed = try idIndexedBelow(db)
        while h < to, pruned < budget {
            guard let row = try Row.fetchOne(db, sql: "SELECT first_rowid, count FROM block WHERE height = ?", arguments: [Int64(h)]) else {
                throw StoreError.chainBroken(path: path, violation: "block \(h) is missing")
            }
            let first: Int64 = row[0], count: Int64 = row[1]
            // A pruned reading's id stays in `reading_id` (bucket, id) → rowid, where it was written
            // in arrival order; its block and leaf follow from the rowid. (Ledgers pruned by earlier
            // versions also keep ids in `pruned`, keyed by id: an insert there landed on a random
            // leaf per pruned reading.) Readings of the newest, not yet indexed bucket go in first.
            let end = first + count
            try indexIds(rowids: min(max(first, indexed), end)..<end, db)
            try seqs.execute(arguments: [first, end])
            try drop.execute(arguments: [first, end])
            pruned += db.changesCount
            h += 1
        }
        guard h > from else { return (from, 0) }
        // The leaves served proofs of readings that are gone; the header keeps the root.
        try db.execute(sql: "UPDATE block SET leaves = NULL WHERE height >= ? AND height < ?", arguments: [Int64(from), Int64(h)])
        try setPrunedBelow(h, db)
        return (h, pruned)
    }

    static func setPrunedBelow(_ height: UInt64, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO meta(key, value) VALUES ('pruned_below', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       arguments: [Data(String(height).utf8)])
    }

    /// How many of the free pages pruning left to give back to the file system. Giving a page
    /// back moves a page from the end of the file (the newest readings) into it, written to the
    /// WAL and again at the checkpoint; a free page kept is reused by the next readings instead,
    /// for nothing.
    public enum FreePageRelease: Sendable, Equatable {
        /// Every free page.
        case all
        /// Every free page, once they are more than a tenth of the file (a large prune, such as
        /// the first after retention is switched on); otherwise none (`maxAge` passes).
        case whenOverTenth
        /// As many as bring the file down to this many bytes, no more (`maxSize` passes).
        case downTo(Int64)
    }

    /// Gives free pages back to the file system (incremental vacuum, then a checkpoint so the
    /// main file is really truncated), as `how` says. A ledger created without `auto_vacuum` is
    /// rewritten once (VACUUM, which gives back every free page) to get it, when pages are to be
    /// given back; returns whether that happened.
    @discardableResult
    public func releaseFreePages(_ how: FreePageRelease = .all) throws -> Bool {
        do {
            var converted = false
            try pool.writeWithoutTransaction { db in
                let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
                let pageSize = max(1, try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 1)
                let release: Int64? = switch how {
                case .all: free
                case .whenOverTenth: free * 10 > pages ? free : 0
                case let .downTo(bytes): min(free, max(0, pages - bytes / pageSize))
                }
                guard let release, release > 0 else { return }
                try self.settle(db)
                if try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") != 2 {
                    try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
                    try db.execute(sql: "VACUUM")
                    converted = true
                } else {
                    try db.execute(sql: "PRAGMA incremental_vacuum(\(release))")
                }
                try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            }
            return converted
        } catch let e as DatabaseError {
            throw Self.translate(e, path: path, operation: "release free pages")
        }
    }
}
