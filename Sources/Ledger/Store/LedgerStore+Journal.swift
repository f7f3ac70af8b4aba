import FlowchainCrypto
import Foundation
import GRDB
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What opening a ledger applied again from its acknowledgement journal: commits that were
/// acknowledged (durable in the journal) but not yet durable in SQLite when the last run ended.
public struct JournalReplay: Sendable, Equatable {
    public let records: Int
    public let readings: Int
    public let blocks: Int

    public init(records: Int, readings: Int, blocks: Int) {
        self.records = records
        self.readings = readings
        self.blocks = blocks
    }
}

/// Why a journal record does not apply.
struct ReplayMismatch: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension LedgerStore {
    /// Runs `body` (which returns what it stored, as a journal entry) as a journaled commit: in
    /// the writer's open transaction, durable once its journal record is fsynced. Without a
    /// journal, or for a commit larger than `AckJournal.largestRecord`, an fsynced transaction of
    /// its own.
    func journaled<T: Sendable>(_ operation: String, bound: Int, _ body: @escaping @Sendable (Database) throws -> (T, AckJournal.Entry)) async throws -> T {
        guard let journal else { return try await write(operation) { try body($0).0 } }
        defer { writeCount.add(1, ordering: .relaxed) }
        do {
            return try await pool.writeWithoutTransaction { db in try self.journaledCommit(db, journal: journal, bound: bound, body) }
        } catch let e as DatabaseError {
            throw Self.translate(e, path: path, operation: operation)
        }
    }

    /// `journaled`, for synchronous callers (the anchor chain's storage).
    func journaledSync<T>(_ operation: String, bound: Int, _ body: (Database) throws -> (T, AckJournal.Entry)) throws -> T {
        guard let journal else { return try writeSync(operation) { try body($0).0 } }
        defer { writeCount.add(1, ordering: .relaxed) }
        do {
            return try pool.writeWithoutTransaction { db in try self.journaledCommit(db, journal: journal, bound: bound, body) }
        } catch let e as DatabaseError {
            throw Self.translate(e, path: path, operation: operation)
        }
    }

    /// On the writer: one journaled commit (see `journaled`).
    private func journaledCommit<T>(_ db: Database, journal: AckJournal, bound: Int, _ body: (Database) throws -> (T, AckJournal.Entry)) throws -> T {
        // A large commit (a busy node's group commit) already shares its SQLite pages among many
        // readings; journaling it would write it twice. It gets a transaction of its own, as do
        // all commits for a while after another process asked to publish (see `journalUpkeep`).
        let plain = batch.withLock { b in b.plainUntil.map { ContinuousClock.now < $0 } ?? false }
        guard bound <= AckJournal.largestRecord, !plain else {
            try settle(db)
            return try Self.transaction(db) { try body($0).0 }
        }
        if !journal.fits(bound) || settleDue() { try settle(db) }
        if !db.isInsideTransaction {
            try db.execute(sql: Self.unsafeNoSync ? "PRAGMA synchronous = OFF" : "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "BEGIN IMMEDIATE")
            batch.withLock { $0.open = true }
        }
        try db.execute(sql: "SAVEPOINT journaled")
        do {
            let (result, entry) = try body(db)
            if !entry.isEmpty {
                let lsn = batch.withLock { $0.nextLSN }
                try Self.setJournalLSN(lsn, db)
                try journal.append(lsn: lsn, entry)
                let now = ContinuousClock.now
                batch.withLock {
                    $0.nextLSN = lsn + 1
                    $0.since = $0.since ?? now
                    $0.lastCommit = now
                }
            }
            try db.execute(sql: "RELEASE journaled")
            return result
        } catch {
            try? db.execute(sql: "ROLLBACK TO journaled")
            try? db.execute(sql: "RELEASE journaled")
            throw error
        }
    }

    /// Whether the writer holds journaled commits that readers do not see yet.
    var batchOpen: Bool { batch.withLock { $0.open } }

    /// Whether the journal holds records old enough (or the batch has been idle long enough) that
    /// its SQLite transaction should be made durable now.
    func settleDue(now: ContinuousClock.Instant = .now) -> Bool {
        batch.withLock { b in
            guard let since = b.since else { return false }
            return now - since >= settlePolicy.interval || b.lastCommit.map { now - $0 >= settlePolicy.whenIdle } ?? false
                || (journal?.used ?? 0) >= AckJournal.capacity / 2
        }
    }

    /// The journal's upkeep (the ingest engine runs it five times a second): settles it when due,
    /// so an idle node does not hold the write lock and a restart has little to apply again, and
    /// commits the open batch when another process asked to read (`publishRequestPath`).
    public func journalUpkeep() throws {
        guard journal != nil else { return }
        let requested = access(publishRequestPath, F_OK) == 0
        let due = settleDue() || batch.withLock { $0.open && $0.since == nil }
        guard requested || due else { return }
        do {
            try pool.writeWithoutTransaction { db in
                if due { try self.settle(db) } else { try self.commitOpenBatch(db) }
            }
        } catch let e as DatabaseError {
            throw Self.translate(e, path: path, operation: "settle the journal")
        }
        if requested {
            unlink(publishRequestPath)
            // The asking process may want to write (`devices add`, `prune`): for a while,
            // commits do not hold the write lock between them.
            let until = ContinuousClock.now + .seconds(3)
            batch.withLock { $0.plainUntil = until }
        }
    }

    /// A file another process creates to ask the node that writes this ledger to commit what it
    /// acknowledged, so that process sees it (the node checks five times a second).
    public var publishRequestPath: String { AckJournal.publishRequestPath(for: path) }

    /// Asks a node running on the ledger at `path` to commit its open batch (a command about to
    /// open the ledger for writing calls this first, so it waits less for the write lock).
    public static func requestPublish(path: String) {
        let fd = open(AckJournal.publishRequestPath(for: path), O_WRONLY | O_CREAT | O_CLOEXEC, 0o666)
        if fd >= 0 { Glibc.close(fd) }
    }

    /// For a process that opened a running node's ledger: how many acknowledged commits are in the
    /// journal but not yet visible in the ledger file; when some are, asks the node to publish them
    /// and waits up to `timeout` for it. Returns how many are still not visible (0: all are).
    public func catchUpWithJournal(timeout: Duration = .seconds(5)) throws -> Int {
        let journalPath = AckJournal.path(for: path)
        guard FileManager.default.fileExists(atPath: journalPath) else { return 0 }
        let last = try AckJournal(path: journalPath, unsafeNoSync: false).records().last?.lsn ?? 0
        func visible() throws -> UInt64 {
            try read("journal position") { try Self.journalLSN($0) }
        }
        guard try visible() < last else { return 0 }
        Self.requestPublish(path: path)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try visible() >= last { return 0 }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return Int(last - min(last, try visible()))
    }

    /// On the writer: commits the open transaction, makes it durable (fsync of the WAL), and
    /// starts the journal again from its first byte. Afterwards every commit is fsynced by SQLite
    /// (`synchronous=FULL`) until the next journaled one.
    func settle(_ db: Database) throws {
        guard let journal else { return }
        try commitOpenBatch(db)
        if journal.used > 0 {
            if !Self.unsafeNoSync { try syncWAL() }
            journal.reset()
        }
        batch.withLock {
            $0.since = nil
            $0.lastCommit = nil
        }
        try db.execute(sql: Self.unsafeNoSync ? "PRAGMA synchronous = OFF" : "PRAGMA synchronous = FULL")
    }

    /// On the writer: commits the open transaction without an fsync, so readers see it.
    func commitOpenBatch(_ db: Database) throws {
        if db.isInsideTransaction { try db.execute(sql: "COMMIT") }
        batch.withLock { $0.open = false }
    }

    /// fsyncs the WAL file (what the transactions committed with `synchronous=NORMAL` wrote). A
    /// checkpoint in that mode syncs the WAL and the database file itself.
    private func syncWAL() throws {
        let fd = open(path + "-wal", O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return }
            throw StoreError.sqlite(operation: "open \(path)-wal", detail: String(cString: strerror(errno)))
        }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw StoreError.sqlite(operation: "fsync \(path)-wal", detail: String(cString: strerror(errno))) }
    }

    /// Applies the journal's records that SQLite does not have durably (lsn above
    /// `meta.journal_lsn`), in one fsynced transaction, and returns what it applied and the next
    /// lsn. Both are read inside the write transaction: a running node's batch is committed by
    /// then, so another process opening its ledger finds nothing to apply. A record that does not
    /// apply exactly as it was first committed stops the open, and nothing is changed.
    static func replay(_ journal: AckJournal, pool: DatabasePool, path: String, owner: PublicKey?) throws -> (JournalReplay?, UInt64) {
        guard FileManager.default.fileExists(atPath: journal.path) else {
            return (nil, try pool.read { try journalLSN($0) } + 1)
        }
        return try pool.writeWithoutTransaction { db in
            try transaction(db) { db in
                let applied = try journalLSN(db)
                let records = try journal.records()
                let next = max(applied, records.last?.lsn ?? 0) + 1
                let todo = records.filter { $0.lsn > applied }
                guard let first = todo.first else { return (nil, next) }
                guard first.lsn == applied + 1 else {
                    throw StoreError.corrupted(path: path, detail: "the acknowledgement journal starts at record \(first.lsn) but the ledger holds records up to \(applied) only")
                }
                var readings = 0, blocks = 0
                for (lsn, entry) in todo {
                    do {
                        try apply(entry, db: db, owner: owner)
                    } catch {
                        throw StoreError.corrupted(path: path, detail: "acknowledgement journal record \(lsn) does not apply: \(error)")
                    }
                    readings += entry.readings.count
                    blocks += entry.block == nil ? 0 : 1
                    try setJournalLSN(lsn, db)
                }
                return (JournalReplay(records: todo.count, readings: readings, blocks: blocks), next)
            }
        }
    }

    /// The newest journal record SQLite holds (0: none).
    static func journalLSN(_ db: Database) throws -> UInt64 {
        UInt64(try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'journal_lsn'") ?? 0)
    }

    /// Sets it, in the same transaction as the record's commit.
    static func setJournalLSN(_ lsn: UInt64, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO meta(key, value) VALUES ('journal_lsn', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value
            """, arguments: [Int64(lsn)])
    }

    /// Stores one journal entry as the commit that wrote it did: the block it sealed (checked
    /// against the chain's tip and the pending readings), then its readings at the same rowids.
    private static func apply(_ entry: AckJournal.Entry, db: Database, owner: PublicKey?) throws {
        for a in entry.anchors { try insertAnchor(hash: a.hash, height: a.height, encoded: a.encoded, db: db) }
        if let block = entry.block {
            let header = try BlockHeader(encoded: block.header)
            guard header.hasValidSignature, owner.map({ $0 == header.owner }) ?? true else {
                throw ReplayMismatch("the block is not signed by the ledger's owner")
            }
            let parent = try tipHeader(db)
            guard header.height == parent.map({ $0.height + 1 }) ?? 0, header.prev == parent?.hash ?? .zero else {
                throw ReplayMismatch("the block does not follow the chain's tip")
            }
            let rows = try Row.fetchAll(db, sql: "SELECT rowid, encoded FROM reading WHERE rowid >= ? ORDER BY rowid LIMIT ?",
                                        arguments: [try firstPendingRowid(db), Int64(header.count)])
            let leaves = rows.map { MerkleTree.leafHash(($0["encoded"] as Data)) }
            guard rows.count == Int(header.count), rows.first?["rowid"] == block.firstRowid, MerkleTree.root(of: leaves) == header.merkleRoot else {
                throw ReplayMismatch("the block does not seal the pending readings")
            }
            try insertBlock(header, first: block.firstRowid, leaves: leaves, db: db)
        }
        for (rowid, encoded) in entry.readings {
            let reading = try Reading(encoded: encoded)
            guard reading.hasValidSignature else { throw ReplayMismatch("reading \(reading.id.hex) has a bad signature") }
            guard case let .stored(stored) = try insert([reading], db: db).first, stored == rowid else {
                throw ReplayMismatch("reading \(reading.id.hex) is not stored at rowid \(rowid) again")
            }
        }
    }
}
