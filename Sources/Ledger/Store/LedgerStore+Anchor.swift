import FlowchainCrypto
import Foundation
import GRDB

extension LedgerStore {
    /// Stores an anchor block's encoding (idempotent). The Consensus module owns the format.
    public func saveAnchorBlock(hash: Digest32, height: UInt64, encoded: [UInt8]) throws {
        try writeSync("save anchor block") { db in
            try db.execute(sql: "INSERT OR IGNORE INTO anchor(hash, height, encoded) VALUES (?, ?, ?)",
                           arguments: [Data(hash.bytes), Int64(height), Data(encoded)])
        }
    }

    /// Every stored anchor block, by height, as (height, encoding).
    public func anchorBlocks() throws -> [(height: UInt64, encoded: [UInt8])] {
        try read("load anchor blocks") { db in
            try Row.fetchAll(db, sql: "SELECT height, encoded FROM anchor ORDER BY height, rowid")
                .map { (UInt64($0["height"] as Int64), Array($0["encoded"] as Data)) }
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
