import FlowchainCrypto
import Foundation
import GRDB

extension LedgerStore {
    /// At most this many readings are re-read by a start's tail check (whole blocks, and always the
    /// newest block): 32 full blocks of 4,096 would be 131,072, over a second on a small machine.
    public static let tailCheckReadings = 8192

    /// Re-verifies the newest `blocks` blocks (hash links, owner signature, Merkle root against the
    /// stored readings) — fewer when they hold more than `tailCheckReadings` readings — and the
    /// pending readings' encodings. Throws on the first problem.
    public func checkTail(blocks: Int) throws {
        guard blocks > 0, let owner else { return }
        guard let tip = try tip() else {
            try checkPending()
            return
        }
        let sizes = try read("tail sizes") { db in
            try Row.fetchAll(db, sql: "SELECT height, count FROM block ORDER BY height DESC LIMIT ?", arguments: [blocks])
                .map { (height: UInt64($0[0] as Int64), count: Int($0[1] as Int64)) }
        }
        var first = tip.height, covered = 0
        for b in sizes {
            if covered > 0, covered + b.count > Self.tailCheckReadings { break }
            covered += b.count
            first = b.height
        }
        var parent = first > 0 ? try block(height: first - 1) : nil
        // A copy of another node's chain may still be catching up to its owner's pruned height:
        // its newest blocks can be pruned ones (headers only).
        let pruned = try prunedBelow()
        for h in first...tip.height {
            if h < pruned {
                try verifyPrunedBlock(height: h, parent: &parent, owner: owner)
            } else {
                try verifyBlock(height: h, parent: &parent, owner: owner, signatures: false)
            }
        }
        try checkContiguous(from: first)
        try checkPending()
    }

    /// Verifies the whole chain from block 0 and every reading's signature; `progress` is called
    /// with (blocks done, total).
    public func verifyAll(progress: ((UInt64, UInt64) -> Void)? = nil) throws {
        guard let owner else { return }
        try read("integrity check") { db in
            let problems = try String.fetchAll(db, sql: "PRAGMA quick_check")
            if problems != ["ok"] { throw StoreError.corrupted(path: path, detail: problems.prefix(3).joined(separator: "; ")) }
        }
        guard let tip = try tip() else { return }
        var parent: BlockHeader? = nil
        let pruned = try prunedBelow()
        for h in 0...tip.height {
            if h < pruned {
                try verifyPrunedBlock(height: h, parent: &parent, owner: owner)
            } else {
                try verifyBlock(height: h, parent: &parent, owner: owner, signatures: true)
            }
            progress?(h + 1, tip.height + 1)
        }
        try checkContiguous(from: 0)
        try checkPrunedIDs(below: pruned)
        try checkPending()
    }

    /// A block whose payloads retention dropped: its header still extends its parent and carries
    /// the owner's signature (its Merkle root can no longer be recomputed here: an archive can).
    private func verifyPrunedBlock(height h: UInt64, parent: inout BlockHeader?, owner: PublicKey) throws {
        let (headerData, storedHash, left) = try read("verify pruned block \(h)") { db -> (Data?, Data?, Int) in
            let row = try Row.fetchOne(db, sql: "SELECT header, hash, first_rowid, count FROM block WHERE height = ?", arguments: [Int64(h)])
            var left = 0
            if let first = row?["first_rowid"] as Int64?, let count = row?["count"] as Int64? {
                left = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading WHERE rowid >= ? AND rowid < ?", arguments: [first, first + count]) ?? 0
            }
            return (row?["header"], row?["hash"], left)
        }
        guard left == 0 else { throw StoreError.chainBroken(path: path, violation: "block \(h) is marked pruned but still holds \(left) readings") }
        let header = try storedHeader(height: h, headerData, storedHash)
        try checkRules(header, parent: &parent, owner: owner, readings: nil)
    }

    /// Block `h`'s stored header, decoded and matching its stored hash and height.
    private func storedHeader(height h: UInt64, _ headerData: Data?, _ storedHash: Data?) throws -> BlockHeader {
        guard let headerData, let storedHash else { throw StoreError.chainBroken(path: path, violation: "block \(h) is missing") }
        let header: BlockHeader
        do { header = try BlockHeader(encoded: Array(headerData)) } catch {
            throw StoreError.chainBroken(path: path, violation: "block \(h): header does not decode: \(error)")
        }
        guard header.height == h else { throw StoreError.chainBroken(path: path, violation: "block \(h): header says height \(header.height)") }
        guard Array(storedHash) == header.hash.bytes else {
            throw StoreError.chainBroken(path: path, violation: "block \(h): stored hash does not match its header")
        }
        return header
    }

    /// The chain's rules for `header` after `parent` (which becomes `header`).
    private func checkRules(_ header: BlockHeader, parent: inout BlockHeader?, owner: PublicKey, readings: [Reading]?) throws {
        do {
            try ChainRules.check(header, parent: parent, owner: owner, readings: readings)
        } catch let v as ChainViolation {
            throw StoreError.chainBroken(path: path, violation: v.description)
        }
        parent = header
    }

    /// Every reading of a pruned block kept its id: as many ids as the pruned blocks held.
    private func checkPrunedIDs(below height: UInt64) throws {
        guard height > 0 else { return }
        let (ids, sealed) = try read("check pruned ids") { db -> (Int64, Int64) in
            // Pruned by earlier versions: in `pruned`; now: in `reading_id` below the first kept reading.
            let bound = try Int64.fetchOne(db, sql: "SELECT first_rowid + count FROM block WHERE height = ?", arguments: [Int64(height - 1)]) ?? 0
            let positioned = bound > 0 ? try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM reading_id WHERE bucket <= ? AND row < ?",
                                                            arguments: [(bound - 1) >> Self.idBucketShift, bound]) ?? 0 : 0
            return ((try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM pruned") ?? 0) + positioned,
                    try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(count), 0) FROM block WHERE height < ?", arguments: [Int64(height)]) ?? 0)
        }
        guard ids == sealed else {
            throw StoreError.chainBroken(path: path, violation: "blocks below \(height) sealed \(sealed) readings, but \(ids) pruned ids are kept")
        }
    }

    private func verifyBlock(height h: UInt64, parent: inout BlockHeader?, owner: PublicKey, signatures: Bool) throws {
        let (headerData, storedHash, rows, storedLeaves) = try read("verify block \(h)") { db -> (Data?, Data?, [(Data, Data)], Data?) in
            let row = try Row.fetchOne(db, sql: "SELECT header, hash, first_rowid, count, leaves FROM block WHERE height = ?", arguments: [Int64(h)])
            var readings: [(Data, Data)] = []
            if let first = row?["first_rowid"] as Int64?, let count = row?["count"] as Int64? {
                readings = try Row.fetchAll(db, sql: "SELECT id, encoded FROM reading WHERE rowid >= ? AND rowid < ? ORDER BY rowid",
                                            arguments: [first, first + count])
                    .map { ($0["id"] as Data, $0["encoded"] as Data) }
            }
            return (row?["header"], row?["hash"], readings, row?["leaves"])
        }
        let header = try storedHeader(height: h, headerData, storedHash)
        var readings: [Reading] = []
        readings.reserveCapacity(rows.count)
        for row in rows {
            let reading = try decodeStored(row, context: "block \(h)")
            if signatures, !reading.hasValidSignature {
                throw StoreError.chainBroken(path: path, violation: "block \(h): reading \(reading.id) has an invalid signature")
            }
            readings.append(reading)
        }
        if let storedLeaves {
            // The leaves kept for proofs must be the readings' own.
            var computed = Data(capacity: readings.count * 32)
            for r in readings { MerkleTree.leafHash(r.encoded).withUnsafeBytes { computed.append(contentsOf: $0) } }
            guard computed == storedLeaves else {
                throw StoreError.chainBroken(path: path, violation: "block \(h): its stored Merkle leaves do not match its readings")
            }
        }
        try checkRules(header, parent: &parent, owner: owner, readings: readings)
    }

    /// Each block's reading range starts where its parent's ended: no reading is skipped.
    private func checkContiguous(from height: UInt64) throws {
        let gap = try read("check block ranges") { db in
            try Int64.fetchOne(db, sql: """
                SELECT b.height FROM block b JOIN block p ON p.height = b.height - 1
                WHERE b.height >= ? AND b.first_rowid != p.first_rowid + p.count ORDER BY b.height LIMIT 1
                """, arguments: [Int64(height)])
        }
        if let gap { throw StoreError.chainBroken(path: path, violation: "block \(gap): its readings do not follow on from block \(gap - 1)'s") }
    }

    private func checkPending() throws {
        let rows = try read("check pending readings") { db in
            try Row.fetchAll(db, sql: "SELECT id, encoded FROM reading WHERE rowid >= ? ORDER BY rowid", arguments: [Self.firstPendingRowid(db)])
                .map { ($0["id"] as Data, $0["encoded"] as Data) }
        }
        for row in rows { _ = try decodeStored(row, context: "pending readings") }
    }

    private func decodeStored(_ row: (id: Data, encoded: Data), context: String) throws -> Reading {
        let (id, encoded) = row
        let reading: Reading
        do { reading = try Reading(encoded: Array(encoded)) } catch {
            throw StoreError.chainBroken(path: path, violation: "\(context): reading \(Hex.encode(id)) does not decode: \(error)")
        }
        guard reading.id.bytes == Array(id) else {
            throw StoreError.chainBroken(path: path, violation: "\(context): reading \(Hex.encode(id)) does not hash to its id")
        }
        return reading
    }
}
