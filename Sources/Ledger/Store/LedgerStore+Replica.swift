import FlowchainCrypto
import Foundation
import GRDB

extension LedgerStore {
    /// How far a replica of another node's segment chain has got: its newest arrival position
    /// (0: none) and its newest block (nil: none).
    public struct ReplicaPosition: Sendable, Equatable {
        public let position: Int64
        public let height: UInt64?
        /// Blocks below this height hold no payloads in the copy (it follows the owner's retention).
        public let prunedBelow: UInt64
        public init(position: Int64, height: UInt64?, prunedBelow: UInt64 = 0) {
            self.position = position
            self.height = height
            self.prunedBelow = prunedBelow
        }
    }

    public func replicaPosition() throws -> ReplicaPosition {
        try read("replica position") { db in
            try Self.replicaPosition(db)
        }
    }

    static func replicaPosition(_ db: Database) throws -> ReplicaPosition {
        ReplicaPosition(position: try replicaNext(db) - 1, height: try tipHeader(db)?.height, prunedBelow: try prunedBelow(db))
    }

    /// The next arrival position a replica takes: after its newest reading, or after the readings
    /// of its newest block when the owner had pruned those before they were copied.
    static func replicaNext(_ db: Database) throws -> Int64 {
        let newest = try Int64.fetchOne(db, sql: "SELECT MAX(rowid) FROM reading") ?? 0
        return max(newest + 1, try firstPendingRowid(db))
    }

    /// Appends what the owner of this (replica) store sent: readings at the owner's own arrival
    /// positions, which must continue this store's without a gap, then blocks that must extend
    /// its chain and seal exactly the next readings (owner signature, hash link, Merkle root all
    /// checked). A copy follows the owner's retention: the payloads of blocks below the owner's
    /// pruned height are dropped here too (their ids kept), and blocks the owner had pruned before
    /// they were copied arrive as headers with the ids of their readings (owner signature and
    /// hash link checked). Everything or nothing is stored, durably, before this returns.
    public func appendReplica(_ batch: ReplicationBatch) async throws -> ReplicaPosition {
        guard let owner else { throw StoreError.chainBroken(path: path, violation: "a replica store needs its owner's key") }
        for (_, r) in batch.readings where !r.hasValidSignature {
            throw StoreError.chainBroken(path: path, violation: "replicated reading \(r.id.hex.prefix(16)) has a bad signature")
        }
        return try await write("append replica") { db in
            // Held blocks below the owner's pruned height lose their payloads, a bounded number
            // of readings per batch (the next batch says the same again and goes on).
            var prunedHere = try Self.prunedBelow(db)
            let held = (try Self.tipHeader(db)?.height).map { $0 + 1 } ?? 0
            if batch.prunedBelow > prunedHere, held > prunedHere {
                prunedHere = try Self.pruneBlocks(db, from: prunedHere, to: min(batch.prunedBelow, held), budget: 20_000, path: self.path).below
            }
            // Blocks the owner pruned before this copy had them: taken once everything held below
            // them is pruned here too, so the pruned blocks are always the lowest ones.
            if !batch.prunedBlocks.isEmpty, prunedHere == held {
                try self.appendPrunedBlocks(batch.prunedBlocks, below: batch.prunedBelow, owner: owner, db: db)
            }
            var next = try Self.replicaNext(db)
            let insert = try db.cachedStatement(sql: "INSERT INTO reading(rowid, id, device, seq, time, encoded) VALUES (?, ?, ?, ?, ?, ?)")
            for (position, r) in batch.readings {
                if position < next { continue }  // already here (a re-sent batch)
                guard position == next else {
                    throw StoreError.chainBroken(path: self.path, violation: "replicated reading at position \(position), but this replica's next position is \(next)")
                }
                try insert.execute(arguments: [position, Data(r.id.bytes), r.device, Int64(bitPattern: r.seq), r.time, Data(r.encoded)])
                next += 1
            }
            if !batch.readings.isEmpty { try Self.indexCompleteBuckets(db) }
            for header in batch.blocks {
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
            return try Self.replicaPosition(db)
        }
    }

    /// On the writer, for a replica whose every held block is pruned: appends headers of blocks
    /// the owner pruned (each extending the tip, signed by the owner, with one id per reading and
    /// its reading range following on), keeps their ids, drops any copy of their readings held as
    /// pending here, and moves the pruned height past them.
    private func appendPrunedBlocks(_ blocks: [PrunedBlock], below ownerPruned: UInt64, owner: PublicKey, db: Database) throws {
        // Ids of pruned readings stay in `reading_id` at their reading's position (see `pruneBlocks`).
        let keep = try db.cachedStatement(sql: "INSERT OR IGNORE INTO reading_id(bucket, id, row) VALUES (?, ?, ?)")
        for b in blocks {
            let parent = try Self.tipHeader(db)
            if let parent, b.header.height <= parent.height { continue }  // already here
            guard b.header.height < ownerPruned else {
                throw StoreError.chainBroken(path: path, violation: "replicated block \(b.header.height) came without its readings, but the owner has pruned only below \(ownerPruned)")
            }
            do {
                try ChainRules.check(b.header, parent: parent, owner: owner, readings: nil)
            } catch {
                throw StoreError.chainBroken(path: path, violation: "replicated pruned \(error)")
            }
            guard b.ids.count == Int(b.header.count) else {
                throw StoreError.chainBroken(path: path, violation: "replicated pruned block \(b.header.height) seals \(b.header.count) readings but came with \(b.ids.count) ids")
            }
            let expected = try Self.firstPendingRowid(db)
            guard expected == Int64.min || b.firstRowid == expected, b.firstRowid > 0 else {
                throw StoreError.chainBroken(path: path, violation: "replicated pruned block \(b.header.height) starts at position \(b.firstRowid), not \(expected)")
            }
            try db.execute(sql: "INSERT INTO block(height, hash, time, count, first_rowid, header, leaves) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                           arguments: [Int64(b.header.height), Data(b.header.hash.bytes), b.header.time, Int64(b.header.count), b.firstRowid, Data(b.header.encoded)])
            try db.execute(sql: "DELETE FROM reading WHERE rowid >= ? AND rowid < ?", arguments: [b.firstRowid, b.firstRowid + Int64(b.header.count)])
            for (leaf, id) in b.ids.enumerated() {
                let row = b.firstRowid + Int64(leaf)
                try keep.execute(arguments: [row >> Self.idBucketShift, Data(id.bytes), row])
            }
            try Self.setPrunedBelow(b.header.height + 1, db)
        }
    }

    /// What a replica needs after `position` and block `height`: up to `limit` readings with their
    /// positions, and the blocks after `height` whose readings it will then have. When the replica
    /// lacks blocks this store has pruned, those come first and alone, as headers with the ids of
    /// their readings (about `prunedIDs` ids, at least one block). The ids are found by one scan
    /// of the pruned-id table per batch: an index by block would cost every pruned reading about
    /// 43 more bytes for good, to speed up a copy that is made once.
    public func replicationBatch(after position: Int64, height: UInt64?, limit: Int, prunedIDs: Int = 50_000) throws -> ReplicationBatch {
        try read("replication batch") { db in
            let pruned = try Self.prunedBelow(db)
            let lacking = height.map { $0 + 1 } ?? 0
            if lacking < pruned {
                var blocks: [(height: Int64, first: Int64, count: Int, header: BlockHeader)] = [], ids = 0
                let rows = try Row.fetchAll(db, sql: "SELECT height, first_rowid, count, header FROM block WHERE height >= ? AND height < ? ORDER BY height LIMIT 1024",
                                            arguments: [Int64(lacking), Int64(pruned)])
                for row in rows {
                    let count = Int(row["count"] as Int64)
                    if !blocks.isEmpty, ids + count > prunedIDs { break }
                    blocks.append((row["height"], row["first_rowid"], count, try BlockHeader(encoded: Array(row["header"] as Data))))
                    ids += count
                }
                guard let low = blocks.first?.height, let high = blocks.last?.height else { return ReplicationBatch(prunedBelow: pruned) }
                var byBlock: [Int64: [Digest32?]] = [:]
                for b in blocks { byBlock[b.height] = Array(repeating: nil, count: b.count) }
                // Ids pruned by earlier versions are in `pruned` (keyed by id: scanned), later ones in
                // `reading_id` at their reading's position.
                let idRows = try Row.fetchCursor(db, sql: "SELECT id, height, leaf FROM pruned WHERE height BETWEEN ? AND ?", arguments: [low, high])
                while let row = try idRows.next() {
                    let h: Int64 = row["height"], leaf = Int(row["leaf"] as Int64)
                    guard leaf >= 0, leaf < byBlock[h]?.count ?? 0 else { continue }
                    byBlock[h]?[leaf] = try Digest32(bytes: Array(row["id"] as Data))
                }
                let start = blocks[0].first, end = blocks[blocks.count - 1].first + Int64(blocks[blocks.count - 1].count)
                let positioned = try Row.fetchCursor(db, sql: "SELECT id, row FROM reading_id WHERE bucket BETWEEN ? AND ? AND row >= ? AND row < ? ORDER BY row",
                                                     arguments: [start >> Self.idBucketShift, (end - 1) >> Self.idBucketShift, start, end])
                var index = 0
                while let row = try positioned.next() {
                    let at: Int64 = row["row"]
                    while index < blocks.count, at >= blocks[index].first + Int64(blocks[index].count) { index += 1 }
                    guard index < blocks.count, at >= blocks[index].first else { continue }
                    byBlock[blocks[index].height]?[Int(at - blocks[index].first)] = try Digest32(bytes: Array(row["id"] as Data))
                }
                return ReplicationBatch(prunedBelow: pruned, prunedBlocks: try blocks.map { b in
                    let found = byBlock[b.height]?.compactMap { $0 } ?? []
                    guard found.count == b.count else {
                        throw StoreError.chainBroken(path: self.path, violation: "pruned block \(b.height) sealed \(b.count) readings but \(found.count) of their ids are kept")
                    }
                    return PrunedBlock(firstRowid: b.first, header: b.header, ids: found)
                })
            }
            let rows = try Row.fetchAll(db, sql: "SELECT rowid, encoded FROM reading WHERE rowid > ? ORDER BY rowid LIMIT ?", arguments: [position, limit])
            let readings = try rows.map { (position: $0["rowid"] as Int64, reading: try Reading(encoded: Array($0["encoded"] as Data))) }
            let reach = readings.last?.position ?? position
            let blockRows = try Row.fetchAll(db, sql: """
                SELECT header FROM block WHERE height > ? AND first_rowid + count - 1 <= ? ORDER BY height LIMIT 256
                """, arguments: [height.map { Int64($0) } ?? -1, reach])
            return ReplicationBatch(readings: readings, blocks: try blockRows.map { try BlockHeader(encoded: Array($0["header"] as Data)) }, prunedBelow: pruned)
        }
    }
}

/// A block whose readings the owner pruned, as a copy receives it: its header, the arrival
/// position its readings started at, and their ids in leaf order.
public struct PrunedBlock: Sendable, Equatable {
    public let firstRowid: Int64
    public let header: BlockHeader
    public let ids: [Digest32]
    public init(firstRowid: Int64, header: BlockHeader, ids: [Digest32]) {
        self.firstRowid = firstRowid
        self.header = header
        self.ids = ids
    }
}

/// One step of copying an owner's chain to a replica.
public struct ReplicationBatch: Sendable {
    public var readings: [(position: Int64, reading: Reading)]
    public var blocks: [BlockHeader]
    /// The owner's pruned height (0: it has pruned nothing); the copy prunes below it too.
    public var prunedBelow: UInt64
    /// Blocks the owner pruned that the replica lacks (sent alone, before any reading after them).
    public var prunedBlocks: [PrunedBlock]

    public init(readings: [(position: Int64, reading: Reading)] = [], blocks: [BlockHeader] = [], prunedBelow: UInt64 = 0, prunedBlocks: [PrunedBlock] = []) {
        self.readings = readings
        self.blocks = blocks
        self.prunedBelow = prunedBelow
        self.prunedBlocks = prunedBlocks
    }

    public var isEmpty: Bool { readings.isEmpty && blocks.isEmpty && prunedBlocks.isEmpty }
}
