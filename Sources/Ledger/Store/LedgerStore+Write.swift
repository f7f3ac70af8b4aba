import FlowchainCrypto
import Foundation
import GRDB

extension LedgerStore {
    /// Stores `readings` in one transaction (group commit) and returns what happened to each, in
    /// order. Returns only after the transaction is durable. Signatures must already be checked.
    public func commit(_ readings: [Reading]) async throws -> [CommitOutcome] {
        try await journaled("commit readings", bound: AckJournal.Entry.bound(readings: readings)) { db in
            let outcomes = try Self.insert(readings, db: db)
            return (outcomes, Self.entry(stored: readings, outcomes, sealed: nil))
        }
    }

    /// What a commit stored, as its journal record.
    static func entry(stored readings: [Reading], _ outcomes: [CommitOutcome], sealed: SealedBlock?) -> AckJournal.Entry {
        var entry = AckJournal.Entry(block: sealed.map { ($0.header.encoded, $0.rowids.lowerBound) })
        for (r, outcome) in zip(readings, outcomes) {
            if case let .stored(rowid) = outcome { entry.readings.append((rowid, r.encoded)) }
        }
        return entry
    }

    /// Seals the readings pending so far into the next block, then stores `readings`, in one
    /// transaction: at low rates a block cut costs no transaction (no fsync) of its own.
    public func commit(_ readings: [Reading], sealingPendingWith key: PrivateKey, now: Int64, maxReadings: Int) async throws
        -> (outcomes: [CommitOutcome], sealed: SealedBlock?) {
        try await journaled("commit readings and seal", bound: AckJournal.Entry.bound(readings: readings)) { db in
            let sealed = try Self.cut(db: db, key: key, now: now, maxReadings: maxReadings)
            let outcomes = try Self.insert(readings, db: db)
            return ((outcomes, sealed), Self.entry(stored: readings, outcomes, sealed: sealed))
        }
    }

    /// Synchronous `commit`, for tools and benchmarks that run outside the node.
    public func commitSync(_ readings: [Reading]) throws -> [CommitOutcome] {
        try writeSync("commit readings") { db in try Self.insert(readings, db: db) }
    }

    static func insert(_ readings: [Reading], db: Database) throws -> [CommitOutcome] {
        // The same reading has the same device and seq (its id hashes both).
        let exists = try db.cachedStatement(sql: "SELECT 1 FROM reading WHERE device = ? AND seq = ? AND id = ?")
        let lastSeq = try db.cachedStatement(sql: LedgerStore.lastSeqSQL)
        let insert = try db.cachedStatement(sql: """
            INSERT INTO reading(id, device, seq, time, encoded) VALUES (?, ?, ?, ?, ?)
            """)
        let bind = try db.cachedStatement(sql: """
            INSERT INTO device(device, signer, token_hash, bound_by, bound_at) VALUES (?, ?, NULL, 'first-use', ?)
            ON CONFLICT(device) DO UPDATE SET signer = excluded.signer, bound_at = excluded.bound_at
            """)
        // Newest seq and bound signer per device, looked up once per transaction and kept current.
        var last: [String: Int64] = [:]
        var signers: [String: PublicKey] = [:]
        var outcomes: [CommitOutcome] = []
        outcomes.reserveCapacity(readings.count)
        for r in readings {
            let id = Data(r.id.bytes)
            // A reading already stored is a duplicate whatever else holds now (e.g. after a
            // re-key); a new one is never stored twice, so the id is looked up only off the hot path.
            func duplicate() throws -> Bool { try Bool.fetchOne(exists, arguments: [r.device, Int64(bitPattern: r.seq), id]) == true }
            // The device's key: bound here on first use, refused when another key is bound.
            if let bound = try signers[r.device] ?? deviceRecord(r.device, db)?.signer {
                signers[r.device] = bound
                guard bound == r.signer else {
                    outcomes.append(try duplicate() ? .duplicate : .wrongSigner(bound: bound))
                    continue
                }
            }
            let seq = Int64(bitPattern: r.seq)
            let newest: Int64?
            if let known = last[r.device] {
                newest = known
            } else {
                newest = try Int64.fetchOne(lastSeq, arguments: [r.device])
                last[r.device] = newest
            }
            if let newest, seq <= newest {
                outcomes.append(try duplicate() ? .duplicate : .seqNotIncreasing(last: UInt64(newest)))
                continue
            }
            let base = UInt64(newest ?? 0)
            guard r.seq - base <= maxSeqJump else {
                outcomes.append(.seqTooFar(last: base))
                continue
            }
            if signers[r.device] == nil {
                try bind.execute(arguments: [r.device, Data(r.signer.bytes), r.time])
                signers[r.device] = r.signer
            }
            // seq is above every stored seq of the device, so neither unique key can collide.
            try insert.execute(arguments: [id, r.device, seq, r.time, Data(r.encoded)])
            last[r.device] = seq
            outcomes.append(.stored(rowid: db.lastInsertedRowID))
        }
        if outcomes.contains(where: { if case .stored = $0 { true } else { false } }) { try indexCompleteBuckets(db) }
        return outcomes
    }

    /// Seals up to `maxReadings` pending readings (arrival order) into the next segment block,
    /// signed by `key`. Returns nil when nothing is pending. `now` is clamped to the parent's time.
    public func cutBlock(signedBy key: PrivateKey, now: Int64, maxReadings: Int) async throws -> SealedBlock? {
        try await journaled("cut block", bound: AckJournal.Entry.bound(readings: [])) { db in
            let sealed = try Self.cut(db: db, key: key, now: now, maxReadings: maxReadings)
            return (sealed, Self.entry(stored: [], [], sealed: sealed))
        }
    }

    public func cutBlockSync(signedBy key: PrivateKey, now: Int64, maxReadings: Int) throws -> BlockHeader? {
        try writeSync("cut block") { db in try Self.cut(db: db, key: key, now: now, maxReadings: maxReadings)?.header }
    }

    /// A block just sealed, with the arrival positions (rowids) it covers.
    public struct SealedBlock: Sendable {
        public let header: BlockHeader
        public let rowids: Range<Int64>
    }

    /// Where the unsealed readings start and the newest arrival position (nil when empty).
    public func pendingBounds() throws -> (firstPending: Int64, newest: Int64?) {
        try read("pending bounds") { db in
            (try Self.firstPendingRowid(db), try Int64.fetchOne(db, sql: "SELECT MAX(rowid) FROM reading"))
        }
    }

    static func cut(db: Database, key: PrivateKey, now: Int64, maxReadings: Int) throws -> SealedBlock? {
        let rows = try Row.fetchAll(db, sql: """
            SELECT rowid, encoded FROM reading WHERE rowid >= ? ORDER BY rowid LIMIT ?
            """, arguments: [try firstPendingRowid(db), maxReadings])
        guard let first = rows.first?["rowid"] as Int64? else { return nil }
        let parent = try tipHeader(db)
        let leaves = rows.map { MerkleTree.leafHash(($0["encoded"] as Data)) }
        let header = try BlockHeader(
            height: parent.map { $0.height + 1 } ?? 0,
            prev: parent?.hash ?? .zero,
            time: max(now, parent?.time ?? now),
            merkleRoot: MerkleTree.root(of: leaves),
            count: UInt32(rows.count),
            signedBy: key)
        try insertBlock(header, first: first, leaves: leaves, db: db)
        return SealedBlock(header: header, rowids: first..<first + Int64(rows.count))
    }

    static func insertBlock(_ header: BlockHeader, first: Int64, leaves: [Digest32], db: Database) throws {
        var leafBytes = Data(capacity: leaves.count * 32)
        for leaf in leaves { leaf.withUnsafeBytes { leafBytes.append(contentsOf: $0) } }
        try db.execute(
            sql: "INSERT INTO block(height, hash, time, count, first_rowid, header, leaves) VALUES (?, ?, ?, ?, ?, ?, ?)",
            arguments: [Int64(header.height), Data(header.hash.bytes), header.time, Int64(header.count), first, Data(header.encoded), leafBytes])
    }

    /// The rowid of the oldest reading not yet sealed in a block.
    static func firstPendingRowid(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT first_rowid + count FROM block ORDER BY height DESC LIMIT 1") ?? Int64.min
    }

    static func tipHeader(_ db: Database) throws -> BlockHeader? {
        guard let data = try Data.fetchOne(db, sql: "SELECT header FROM block ORDER BY height DESC LIMIT 1") else { return nil }
        return try BlockHeader(encoded: Array(data))
    }
}
