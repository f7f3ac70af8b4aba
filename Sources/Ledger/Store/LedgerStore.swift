import FlowchainCrypto
import Foundation
import GRDB
import Synchronization

/// The node's durable ledger: readings and segment blocks in one SQLite database (WAL,
/// `synchronous=FULL`). A write returns only after it is on disk: the ingest engine's commits
/// through the acknowledgement journal (`AckJournal`), everything else as an fsynced transaction.
public final class LedgerStore: Sendable {
    public let path: String
    public let owner: PublicKey?
    let pool: DatabasePool
    /// nil for a read-only store, a store opened with `journaled: false` (the copies of other
    /// nodes' chains, written only by replication), or when `FLOWCHAIN_ACK_JOURNAL=0` (the
    /// bytes-written reference).
    let journal: AckJournal?
    /// The SQLite side of the journal: whether the writer connection holds a transaction open
    /// (journaled commits not yet visible to readers), the next record's lsn, and when the oldest
    /// record not yet durable in SQLite, and the newest commit, were made.
    struct Batch {
        var open = false
        var nextLSN: UInt64 = 1
        var since: ContinuousClock.Instant?
        var lastCommit: ContinuousClock.Instant?
        /// Until then commits are plain SQLite transactions, each releasing the write lock: another
        /// process asked to publish, and may be waiting to write.
        var plainUntil: ContinuousClock.Instant?
    }
    let batch = Mutex(Batch())
    /// What opening the store applied again from the journal (nil: it had nothing to apply).
    public let journalReplay: JournalReplay?
    /// Write transactions committed through this store (each one fsync of the WAL, at least).
    let writeCount = Atomic<Int>(0)
    public var transactions: Int { writeCount.load(ordering: .relaxed) }
    /// Where `offload` runs this store's blocking work.
    let lanes = OffloadLanes(label: "flowchain.store")

    /// The page size of new ledgers (bytes): 1024, or `FLOWCHAIN_PAGE_SIZE` (a power of two,
    /// 512…65536) — larger pages trade more bytes written per commit for faster bulk ingest.
    public static let pageSize: Int = {
        guard let text = ProcessInfo.processInfo.environment["FLOWCHAIN_PAGE_SIZE"], let n = Int(text),
              (512...65536).contains(n), n & (n - 1) == 0 else { return 1024 }
        return n
    }()

    /// Whether a new ledger is created with `auto_vacuum = INCREMENTAL` (`FLOWCHAIN_AUTO_VACUUM=1`),
    /// so that retention gives pruned pages back without first rewriting the file (`VACUUM`, once).
    /// Off by default: its pointer-map pages, updated wherever the B-trees move pages, cost ingest
    /// 41 % more bytes per durable commit on a ledger of 1 M readings (`flowchain bench disk`,
    /// docs/ledger.md, Retention), every day, to save a rewrite once.
    public static let autoVacuumDefault = ProcessInfo.processInfo.environment["FLOWCHAIN_AUTO_VACUUM"] == "1"

    /// WAL pages between automatic checkpoints (`FLOWCHAIN_WAL_CHECKPOINT_PAGES`, default 8,192:
    /// 8 MiB of 1 KiB pages; SQLite's own default is 1,000).
    public static let walCheckpointPages: Int = {
        guard let text = ProcessInfo.processInfo.environment["FLOWCHAIN_WAL_CHECKPOINT_PAGES"], let n = Int(text), n >= 100 else { return 8192 }
        return n
    }()

    /// When journaled commits are settled: their SQLite transaction made durable and the journal
    /// started again.
    ///
    /// Each settle writes every page its commits touched (the table's tail, each index's tail, the
    /// block table, the meta page, interior pages) once to the WAL and once more at the checkpoint,
    /// so at low rates the pages a settle shares among its readings decide the bytes per reading:
    /// at 1 reading/s, 300 readings a settle instead of 30 (`flowchain bench disk`, docs/ledger.md).
    /// A sensor that reports every 10 s is never idle for a minute, so its readings share settles
    /// too. What a crash leaves to apply again at the next start is at most this much journal.
    public struct SettlePolicy: Sendable {
        /// At most this long after the oldest commit not yet settled (sooner when half the journal
        /// is used, or when another write needs the database).
        public var interval: Duration = .seconds(300)
        /// Once ingest has been idle this long.
        public var whenIdle: Duration = .seconds(60)
        public init(interval: Duration = .seconds(300), whenIdle: Duration = .seconds(60)) {
            self.interval = interval
            self.whenIdle = whenIdle
        }
    }
    public let settlePolicy: SettlePolicy

    static let unsafeNoSync = ProcessInfo.processInfo.environment["FLOWCHAIN_UNSAFE_SYNCHRONOUS_OFF"] == "1"

    /// How many of the newest blocks are re-verified on open.
    public static let defaultTailCheck = 32

    /// Opens (and for a writer, creates and migrates) the database at `path`, then re-verifies its
    /// newest `tailCheck` blocks. A damaged file or broken chain throws; nothing is repaired.
    public init(path: String, owner: PublicKey?, readOnly: Bool = false, tailCheck: Int = LedgerStore.defaultTailCheck,
                settle: SettlePolicy = SettlePolicy(), journaled: Bool = true, autoVacuum: Bool = LedgerStore.autoVacuumDefault) throws {
        self.path = path
        settlePolicy = settle
        var config = Configuration()
        config.readonly = readOnly
        // Another process that writes waits for the node to let go of its open batch (it asks
        // first: `requestPublish`; at the latest at the next settle).
        config.busyMode = .timeout(45)
        config.label = "flowchain-ledger"
        // The journaled batch is a transaction left open between writer accesses (see `Batch`).
        config.allowsUnsafeTransactions = true
        // A new ledger gets 1 KiB pages (an existing one keeps its own): each commit rewrites a
        // leaf of the table and of each index in the WAL, and 1 KiB pages halve the bytes that
        // costs an SD card (`flowchain bench disk`). It only applies before the file has a header.
        // So does `auto_vacuum` (before the first table), which an existing ledger keeps too.
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA page_size = \(LedgerStore.pageSize)")
            if autoVacuum, !db.configuration.readonly { try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL") }
        }
        let exists = FileManager.default.fileExists(atPath: path)
        if readOnly, !exists { throw StoreError.notInitialised(path: path) }
        journal = readOnly || !journaled || ProcessInfo.processInfo.environment["FLOWCHAIN_ACK_JOURNAL"] == "0"
            ? nil : AckJournal(path: AckJournal.path(for: path), unsafeNoSync: Self.unsafeNoSync)
        var tailCheck = tailCheck
        if !readOnly, exists {
            // Verify through a read-only connection first: opening a writer touches the file, and
            // a damaged ledger must be left exactly as it was found.
            do {
                let probe = try LedgerStore(path: path, owner: owner, readOnly: true, tailCheck: tailCheck)
                try probe.close()
                tailCheck = 0
            } catch StoreError.notInitialised {
                // An empty or half-created file: the writer below migrates it, then checks it.
            }
        }
        do {
            pool = try DatabasePool(path: path, configuration: config)
            if readOnly {
                guard try pool.read({ try Schema.migrator.hasCompletedMigrations($0) }) else {
                    throw StoreError.notInitialised(path: path)
                }
            } else {
                // FULL: every WAL commit is fsynced before it returns, so an acknowledged reading
                // survives power loss. Set here, on the pool's one writer connection, because GRDB
                // sets NORMAL when it enables WAL, after any `prepareDatabase` hook has run.
                // FLOWCHAIN_UNSAFE_SYNCHRONOUS_OFF=1 exists only so the power-loss test can show
                // that it detects a missing fsync; it loses acknowledged readings on power loss.
                let unsafe = Self.unsafeNoSync
                try pool.writeWithoutTransaction { db in
                    try db.execute(sql: unsafe ? "PRAGMA synchronous = OFF" : "PRAGMA synchronous = FULL")
                    // 32 MiB of page cache for the writer: the id index takes random inserts.
                    try db.execute(sql: "PRAGMA cache_size = -32768")
                    // Checkpoint every `walCheckpointPages` WAL pages instead of SQLite's 1,000:
                    // a page that many commits touched (the table's tail, each device's index
                    // tail) is written to the file once per checkpoint (`flowchain bench disk`).
                    try db.execute(sql: "PRAGMA wal_autocheckpoint = \(LedgerStore.walCheckpointPages)")
                }
                try Schema.migrator.migrate(pool)
            }
            self.owner = try Self.bindOwner(pool: pool, path: path, owner: owner, readOnly: readOnly)
            if let journal {
                let (replay, next) = try Self.replay(journal, pool: pool, path: path, owner: self.owner)
                journalReplay = replay
                // Opened (created and allocated on first use) now, not at the first commit.
                try journal.prepare()
                batch.withLock { $0.nextLSN = next }
            } else {
                journalReplay = nil
            }
        } catch let error as DatabaseError {
            throw Self.translate(error, path: path, operation: "open")
        }
        try checkTail(blocks: tailCheck)
    }

    /// The schema upgrades opening the ledger at `path` for writing will apply (none for a new
    /// file or a current one), and how many readings it holds: a node says so before it starts
    /// them, since one of them copies the reading table.
    public static func pendingUpgrades(path: String) -> (migrations: [String], readings: Int)? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var config = Configuration()
        config.readonly = true
        guard let queue = try? DatabaseQueue(path: path, configuration: config) else { return nil }
        defer { try? queue.close() }
        return try? queue.read { db in
            let applied = try Schema.migrator.appliedIdentifiers(db)
            guard !applied.isEmpty else { return nil }
            let pending = Schema.migrator.migrations.filter { !applied.contains($0) }
            guard !pending.isEmpty else { return nil }
            let readings = try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(rowid) - MIN(rowid) + 1, 0) FROM reading") ?? 0
            return (pending, readings)
        }
    }

    private static func bindOwner(pool: DatabasePool, path: String, owner: PublicKey?, readOnly: Bool) throws -> PublicKey? {
        let stored: PublicKey? = try pool.read { db in
            guard let data = try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'owner'") else { return nil }
            return try PublicKey(bytes: Array(data))
        }
        if let stored, let owner, stored != owner {
            throw StoreError.ownerMismatch(path: path, stored: stored.hex, key: owner.hex)
        }
        if stored == nil, let owner, !readOnly {
            try pool.write { db in
                try db.execute(sql: "INSERT INTO meta(key, value) VALUES ('owner', ?)", arguments: [Data(owner.bytes)])
            }
        }
        return stored ?? owner
    }

    static func translate(_ error: DatabaseError, path: String, operation: String) -> StoreError {
        switch error.resultCode {
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return .corrupted(path: path, detail: "SQLite: \(error.message ?? "\(error.resultCode)")")
        default:
            return .sqlite(operation: "\(operation) \(path)", detail: error.description)
        }
    }

    /// Runs `body` in a read transaction, turning SQLite corruption into `StoreError.corrupted`.
    /// Journaled commits still in the writer's open transaction are committed first (without an
    /// fsync: they are durable in the journal), so a read sees every acknowledged reading.
    func read<T: Sendable>(_ operation: String, publish: Bool = true, _ body: @Sendable (Database) throws -> T) throws -> T {
        do {
            if publish, batch.withLock({ $0.open }) {
                try pool.writeWithoutTransaction { db in try self.commitOpenBatch(db) }
            }
            return try pool.read(body)
        } catch let e as DatabaseError { throw Self.translate(e, path: path, operation: operation) }
    }

    /// A write of its own (not the engine's commits): the journal is settled first, then `body`
    /// runs in an fsynced transaction.
    func write<T: Sendable>(_ operation: String, _ body: @Sendable (Database) throws -> T) async throws -> T {
        defer { writeCount.add(1, ordering: .relaxed) }
        do {
            return try await pool.writeWithoutTransaction { db in
                try self.settle(db)
                return try Self.transaction(db, body)
            }
        } catch let e as DatabaseError { throw Self.translate(e, path: path, operation: operation) }
    }

    func writeSync<T>(_ operation: String, _ body: (Database) throws -> T) throws -> T {
        defer { writeCount.add(1, ordering: .relaxed) }
        do {
            return try pool.writeWithoutTransaction { db in
                try self.settle(db)
                return try Self.transaction(db, body)
            }
        } catch let e as DatabaseError { throw Self.translate(e, path: path, operation: operation) }
    }

    static func transaction<T>(_ db: Database, _ body: (Database) throws -> T) throws -> T {
        var result: T?
        try db.inTransaction(.immediate) {
            result = try body(db)
            return .commit
        }
        return result!
    }
}

extension LedgerStore {
    /// Runs `body` (any of the store's synchronous calls) on one of the store's own I/O lanes and
    /// waits for it without blocking the calling task's thread: blocking SQLite work never holds
    /// one of Swift's cooperative threads (there are as many as cores).
    public func offload<T: Sendable>(_ body: @escaping @Sendable (LedgerStore) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            lanes.run { continuation.resume(with: Result { try body(self) }) }
        }
    }
}

/// A store's threads for blocking work: a few serial queues, each job on the least busy one.
///
/// Not one concurrent queue shared by every store: libdispatch runs a concurrent queue's jobs on
/// at most as many threads as there are cores while they compute, so on a two-core board two
/// long jobs (a pruning pass, a copy catching up, a long proof) held every store's reads for
/// as long as they ran, and a sensor's first reading waited behind them. A serial queue gets a
/// thread of its own whenever it has work, so one store's long job delays only what queues
/// behind it on its own lane.
final class OffloadLanes: Sendable {
    private let queues: [DispatchQueue]
    private let busy: Mutex<[Int]>

    /// `count` lanes (GRDB's pool holds five reader connections, and the writer one).
    init(label: String, count: Int = 4) {
        queues = (0..<count).map { DispatchQueue(label: "\(label).io.\($0)", qos: .userInitiated) }
        busy = Mutex(Array(repeating: 0, count: count))
    }

    func run(_ job: @escaping @Sendable () -> Void) {
        let lane = busy.withLock { busy in
            let lane = busy.indices.min { busy[$0] < busy[$1] }!
            busy[lane] += 1
            return lane
        }
        queues[lane].async {
            job()
            self.busy.withLock { $0[lane] -= 1 }
        }
    }
}

extension LedgerStore {
    /// Moves everything in the WAL into the main database file and truncates the WAL, so a stopped
    /// node leaves one self-contained file.
    public func checkpoint() throws {
        do {
            try pool.writeWithoutTransaction { db in
                try self.settle(db)
                try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            }
        } catch let e as DatabaseError {
            throw Self.translate(e, path: path, operation: "checkpoint")
        }
    }

    /// Checkpoints the WAL into the main file and closes every connection. The store is unusable after.
    public func close() throws {
        do {
            if !pool.configuration.readonly {
                try pool.writeWithoutTransaction { db in
                    try self.settle(db)
                    try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
                }
            }
            try pool.close()
        } catch let e as DatabaseError {
            throw Self.translate(e, path: path, operation: "close")
        }
    }
}

extension LedgerStore {
    /// The writer connection's `PRAGMA synchronous` (2 = FULL).
    func writerSynchronousMode() throws -> Int {
        try pool.writeWithoutTransaction { db in
            try self.settle(db)
            return try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1
        }
    }
}
