import FlowchainCrypto
import Foundation
import GRDB

extension LedgerStore {
    /// How far a replica of another node's segment chain has got: its newest arrival position
    /// (0: none) and its newest block (nil: none).
    public struct ReplicaPosition: Sendable, Equatable {
        public let position: Int64
        public let height: UInt64?
        public init(position: Int64, height: UInt64?) {
            self.position = position
            self.height = height
        }
    }

    public func replicaPosition() throws -> ReplicaPosition {
        try read("replica position") { db in
            ReplicaPosition(position: try Int64.fetchOne(db, sql: "SELECT MAX(rowid) FROM reading") ?? 0,
                            height: try Self.tipHeader(db)?.height)
        }
    }

    /// Appends what the owner of this (replica) store sent: readings at the owner's own arrival
    /// positions, which must continue this store's without a gap, then blocks that must extend
    /// its chain and seal exactly the next readings (owner signature, hash link, Merkle root all
    /// checked). Everything or nothing is stored, durably, before this returns.
    public func appendReplica(readings: [(position: Int64, reading: Reading)], blocks: [BlockHeader]) async throws -> ReplicaPosition {
        guard let owner else { throw StoreError.chainBroken(path: path, violation: "a replica store needs its owner's key") }
        for (_, r) in readings where !r.hasValidSignature {
            throw StoreError.chainBroken(path: path, violation: "replicated reading \(r.id.hex.prefix(16)) has a bad signature")
        }
        return try await write("append replica") { db in
            var next = (try Int64.fetchOne(db, sql: "SELECT MAX(rowid) FROM reading") ?? 0) + 1
            let insert = try db.cachedStatement(sql: "INSERT INTO reading(rowid, id, device, seq, time, encoded) VALUES (?, ?, ?, ?, ?, ?)")
            for (position, r) in readings {
                if position < next { continue }  // already here (a re-sent batch)
                guard position == next else {
                    throw StoreError.chainBroken(path: self.path, violation: "replicated reading at position \(position), but this replica's next position is \(next)")
                }
                try insert.execute(arguments: [position, Data(r.id.bytes), r.device, Int64(bitPattern: r.seq), r.time, Data(r.encoded)])
                next += 1
            }
            for header in blocks {
                var parent = try Self.tipHeader(db)
                if let parent, header.height <= parent.height { continue }  // already here
                let first = try Self.firstPendingRowid(db)
                let start = first == Int64.min ? (try Int64.fetchOne(db, sql: "SELECT MIN(rowid) FROM reading") ?? 1) : first
                let rows = try Row.fetchAll(db, sql: "SELECT encoded FROM reading WHERE rowid >= ? ORDER BY rowid LIMIT ?",
                                            arguments: [start, Int64(header.count)])
                let sealed = try rows.map { try Reading(encoded: Array($0["encoded"] as Data)) }
                do {
                    try ChainRules.check(header, parent: parent, owner: owner, readings: sealed)
                } catch {
                    throw StoreError.chainBroken(path: self.path, violation: "replicated \(error)")
                }
                let leaves = sealed.map { MerkleTree.leafHash($0.encoded) }
                var leafBytes = Data(capacity: leaves.count * 32)
                for leaf in leaves { leaf.withUnsafeBytes { leafBytes.append(contentsOf: $0) } }
                try db.execute(
                    sql: "INSERT INTO block(height, hash, time, count, first_rowid, header, leaves) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    arguments: [Int64(header.height), Data(header.hash.bytes), header.time, Int64(header.count), start, Data(header.encoded), leafBytes])
                parent = header
            }
            return ReplicaPosition(position: next - 1, height: try Self.tipHeader(db)?.height)
        }
    }

    /// What a replica needs after `position` and block `height`: up to `limit` readings with their
    /// positions, and the blocks after `height` whose readings it will then have.
    public func replicationBatch(after position: Int64, height: UInt64?, limit: Int) throws -> (readings: [(position: Int64, reading: Reading)], blocks: [BlockHeader]) {
        try read("replication batch") { db in
            let rows = try Row.fetchAll(db, sql: "SELECT rowid, encoded FROM reading WHERE rowid > ? ORDER BY rowid LIMIT ?", arguments: [position, limit])
            let readings = try rows.map { (position: $0["rowid"] as Int64, reading: try Reading(encoded: Array($0["encoded"] as Data))) }
            let reach = readings.last?.position ?? position
            let blockRows = try Row.fetchAll(db, sql: """
                SELECT header FROM block WHERE height > ? AND first_rowid + count - 1 <= ? ORDER BY height LIMIT 256
                """, arguments: [height.map { Int64($0) } ?? -1, reach])
            return (readings, try blockRows.map { try BlockHeader(encoded: Array($0["header"] as Data)) })
        }
    }
}
