import FlowchainCrypto
import Foundation
import GRDB
import LedgerModel

extension LedgerStore: AnchorStorage {
    /// Stores an anchor block's encoding (idempotent), durable through the acknowledgement
    /// journal like the ingest engine's commits. The Consensus module owns the format.
    public func saveAnchorBlock(hash: Digest32, height: UInt64, encoded: [UInt8]) throws {
        try journaledSync("save anchor block", bound: AckJournal.overhead + 64 + encoded.count) { db in
            try Self.insertAnchor(hash: hash, height: height, encoded: encoded, db: db)
            return ((), AckJournal.Entry(anchors: [(hash, height, encoded)]))
        }
    }

    static func insertAnchor(hash: Digest32, height: UInt64, encoded: [UInt8], db: Database) throws {
        try db.execute(sql: "INSERT OR IGNORE INTO anchor(hash, height, encoded) VALUES (?, ?, ?)",
                       arguments: [Data(hash.bytes), Int64(height), Data(encoded)])
    }

    /// Stores many anchor blocks in one transaction (bulk loads, e.g. benchmarks).
    public func saveAnchorBlocks(_ blocks: [(hash: Digest32, height: UInt64, encoded: [UInt8])]) throws {
        try writeSync("save anchor blocks") { db in
            let insert = try db.cachedStatement(sql: "INSERT OR IGNORE INTO anchor(hash, height, encoded) VALUES (?, ?, ?)")
            for b in blocks { try insert.execute(arguments: [Data(b.hash.bytes), Int64(b.height), Data(b.encoded)]) }
        }
    }

    /// Every stored anchor block, by height, as (height, encoding).
    public func anchorBlocks() throws -> [(height: UInt64, encoded: [UInt8])] {
        try anchorBlocks(above: nil)
    }

    /// Stored anchor blocks above `height` (all when nil), by height, as (height, encoding).
    public func anchorBlocks(above height: UInt64?) throws -> [(height: UInt64, encoded: [UInt8])] {
        try read("load anchor blocks") { db in
            try Row.fetchAll(db, sql: "SELECT height, encoded FROM anchor WHERE height > ? ORDER BY height, rowid",
                             arguments: [height.map { Int64($0) } ?? -1])
                .map { (UInt64($0["height"] as Int64), Array($0["encoded"] as Data)) }
        }
    }

    public func anchorBlocks(heights range: ClosedRange<UInt64>) throws -> [(height: UInt64, encoded: [UInt8])] {
        try read("load anchor blocks") { db in
            try Row.fetchAll(db, sql: "SELECT height, encoded FROM anchor WHERE height BETWEEN ? AND ? ORDER BY height, rowid",
                             arguments: [Int64(clamping: range.lowerBound), Int64(clamping: range.upperBound)])
                .map { (UInt64($0["height"] as Int64), Array($0["encoded"] as Data)) }
        }
    }

    public func highestAnchorHeight() throws -> UInt64? {
        try read("highest anchor block") { db in
            try Int64.fetchOne(db, sql: "SELECT MAX(height) FROM anchor").map { UInt64($0) }
        }
    }

    public typealias FinalAnchor = LedgerModel.FinalAnchor

    /// Records anchor blocks that became final and the checkpoint (an encoded state the Consensus
    /// module owns) of the newest of them, in one transaction.
    public func saveFinalAnchors(_ finals: [FinalAnchor], checkpoint: [UInt8]) throws {
        try writeSync("save final anchor blocks") { db in
            let final = try db.cachedStatement(sql: "INSERT OR REPLACE INTO anchor_final(height, hash) VALUES (?, ?)")
            let commit = try db.cachedStatement(sql: "INSERT OR IGNORE INTO anchor_commit(owner, segment_height, anchor_height) VALUES (?, ?, ?)")
            for f in finals {
                try final.execute(arguments: [Int64(f.height), Data(f.hash.bytes)])
                for c in f.commits { try commit.execute(arguments: [Data(c.owner.bytes), Int64(c.segmentHeight), Int64(f.height)]) }
            }
            try db.execute(sql: "INSERT OR REPLACE INTO meta(key, value) VALUES ('anchor_checkpoint', ?)", arguments: [Data(checkpoint)])
        }
    }

    /// The stored anchor checkpoint, if any.
    public func anchorCheckpoint() throws -> [UInt8]? {
        try read("load anchor checkpoint") { db in
            try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'anchor_checkpoint'").map { Array($0) }
        }
    }

    /// The hash of the final anchor block at `height`, if recorded.
    public func finalAnchorHash(height: UInt64) throws -> Digest32? {
        try read("final anchor hash") { db in
            try Data.fetchOne(db, sql: "SELECT hash FROM anchor_final WHERE height = ?", arguments: [Int64(height)])
                .flatMap { try? Digest32(bytes: Array($0)) }
        }
    }

    /// The encodings of the final anchor blocks with heights in `range`, in order.
    public func finalAnchorBlocks(heights range: ClosedRange<UInt64>) throws -> [[UInt8]] {
        try read("final anchor blocks") { db in
            try Data.fetchAll(db, sql: """
                SELECT a.encoded FROM anchor_final f JOIN anchor a ON a.hash = f.hash
                WHERE f.height BETWEEN ? AND ? ORDER BY f.height
                """, arguments: [Int64(range.lowerBound), Int64(range.upperBound)]).map { Array($0) }
        }
    }

    /// The first final anchor block committing `owner`'s segment at `segmentHeight` or above:
    /// its height, encoding, and the segment height it commits.
    public func finalAnchorCommitting(owner: PublicKey, segmentHeight: UInt64) throws -> (height: UInt64, encoded: [UInt8], committed: UInt64)? {
        try read("final anchor commitment") { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT c.anchor_height, c.segment_height, a.encoded FROM anchor_commit c
                JOIN anchor_final f ON f.height = c.anchor_height JOIN anchor a ON a.hash = f.hash
                WHERE c.owner = ? AND c.segment_height >= ? ORDER BY c.segment_height LIMIT 1
                """, arguments: [Data(owner.bytes), Int64(segmentHeight)]) else { return nil }
            return (UInt64(row["anchor_height"] as Int64), Array(row["encoded"] as Data), UInt64(row["segment_height"] as Int64))
        }
    }

    /// Segment headers of this store's chain with heights in `range`, in order.
    public func blocks(heights range: ClosedRange<UInt64>) throws -> [BlockHeader] {
        try read("segment headers") { db in
            try Data.fetchAll(db, sql: "SELECT header FROM block WHERE height BETWEEN ? AND ? ORDER BY height",
                              arguments: [Int64(range.lowerBound), Int64(range.upperBound)]).map { try BlockHeader(encoded: Array($0)) }
        }
    }
}

extension LedgerStore {
    public func offloadAnchorWork<T: Sendable>(_ body: @escaping @Sendable (any AnchorStorage) throws -> T) async throws -> T {
        try await offload { try body($0) }
    }
}
