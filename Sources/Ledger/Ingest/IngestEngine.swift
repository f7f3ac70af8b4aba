import FlowchainCrypto
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Takes readings, validates them, and acknowledges each only after it is durably committed.
///
/// A `Service`: its `run()` (under the node's service group, or a test's task) commits what is
/// queued and seals a block every `blockInterval` while readings are pending; on graceful shutdown
/// it refuses new readings, commits and seals what is left, and returns. Nothing is committed
/// while it is not running.
///
/// `ingest` is the one way in for every source. Validation (including the signature check) and the
/// node's own signatures (for readings it numbers) run outside the actor, spread over all cores;
/// storing goes through one queue that commits everything waiting in one transaction (group
/// commit), so throughput grows with load while every acknowledgement stays durable. Submissions
/// that share an `IngestOrder` enter the queue in the order they were received.
public actor IngestEngine {
    public struct Configuration: Sendable {
        public var maxPayloadBytes = 16 * 1024
        /// A block is cut at once when this many readings are pending.
        public var maxBlockReadings = 4096
        /// Upper bound on readings per transaction, to bound acknowledgement latency.
        public var maxBatch = 4096
        /// A block is cut this often while readings are pending.
        public var blockInterval: Duration = .seconds(1)
        /// How long a commit waits after the first reading arrives for others to join its
        /// transaction (Postgres' commit_delay, Kafka's linger.ms): fewer fsyncs and bytes
        /// written per reading at a cost of at most this much acknowledgement latency. Zero:
        /// commit at once (readings arriving while a commit is under way still share the next).
        public var commitWindow: Duration = .zero
        /// Whether the time stamps the node takes itself are synchronised (`timeSynced`).
        public var clock = ClockSync()
        /// The monotonic clock that schedules block cuts (injected so a test can move it instead
        /// of waiting, and a loaded machine's late wake-ups do not change what it sees).
        public var monotonic: @Sendable () -> ContinuousClock.Instant = { .now }

        public init() {}
    }

    public nonisolated let store: LedgerStore
    public nonisolated let key: PrivateKey
    public nonisolated let validator: ReadingValidator
    nonisolated let configuration: Configuration
    public nonisolated let now: @Sendable () -> Int64
    /// Where every committed reading and sealed block is published: the one way out.
    public nonisolated let feed: CommitFeed
    /// The quality of a time stamp the node takes from its clock now (`timeSynced`).
    public nonisolated var clockQuality: TimeQuality { configuration.clock.quality }
    /// In a ring: the highest seq of a device held elsewhere (copies of other nodes' chains), so
    /// a node that takes a device's keys over numbers its readings on from there.
    public nonisolated let seqFloor = SeqFloor()

    private var queue: [(reading: Reading, promise: AckPromise)] = []
    /// Wakes `run()`'s commit loop when readings are queued (at most one wake-up pending).
    private nonisolated let wakes: AsyncStream<Void>
    private nonisolated let wake: AsyncStream<Void>.Continuation
    nonisolated let logger: Logger
    /// Readings with rowid ≥ `sealedEnd` are stored but not in a block; `newest` is the highest rowid.
    private var sealedEnd: Int64
    private var newest: Int64?
    /// A cut is in progress (one at a time, whoever asks: the block cutter or a full queue);
    /// later callers wait in line here.
    private var cutting = false
    private var cutWaiters: [CheckedContinuation<Void, Never>] = []
    /// When the oldest reading still pending was stored (nil: none pending).
    private var pendingSince: ContinuousClock.Instant? = nil
    /// The newest sealed block, kept so `/health` and `info` never query the store.
    private var tip: BlockHeader?
    private var closed = false
    /// Store transactions that committed readings: with concurrent submitters, far fewer than readings.
    public private(set) var transactions = 0
    /// Newest seq per device among stored and queued readings, for readings the node numbers.
    private var lastSeq: [String: UInt64] = [:]
    /// Queue order: each `ingest` call takes the next ticket when it numbers its readings, and
    /// its readings join the queue only after every earlier ticket's.
    private var nextTicket: UInt64 = 0
    private var nextToQueue: UInt64 = 0
    private var parked: [UInt64: (readings: [Result<Reading, IngestError>], promises: [AckPromise])] = [:]

    /// - Parameters:
    ///   - now: the clock, in ms since the epoch (injected so tests can control block times).
    ///   - feed: where commits are published (a new one by default).
    public init(
        store: LedgerStore, key: PrivateKey, configuration: Configuration = .init(),
        now: @escaping @Sendable () -> Int64 = WallClock.system.milliseconds,
        feed: CommitFeed = CommitFeed(),
        logger: Logger = Logger(label: "flowchain")
    ) throws {
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.logger = logger
        self.store = store
        self.key = key
        self.configuration = configuration
        validator = ReadingValidator(maxPayloadBytes: configuration.maxPayloadBytes)
        self.now = now
        self.feed = feed
        let bounds = try store.pendingBounds()
        sealedEnd = max(bounds.firstPending, 1)
        newest = bounds.newest
        tip = try store.tip()
        // Readings left pending by the last run are sealed on the usual schedule.
        if let n = bounds.newest, n >= sealedEnd { pendingSince = configuration.monotonic() }
    }

    /// The ledger's counters, kept in memory as readings and blocks are committed.
    public struct Snapshot: Sendable, Equatable {
        /// Readings stored (rows are never deleted, so this is the newest arrival position).
        public let readings: Int
        public let pending: Int
        public let blocks: Int
        public let tip: BlockHeader?
    }

    public func snapshot() -> Snapshot {
        Snapshot(readings: Int(newest ?? 0), pending: pendingCount, blocks: tip.map { Int($0.height) + 1 } ?? 0, tip: tip)
    }

    // MARK: The way in

    /// Validates and durably stores one submission; returns its acknowledgement. A re-sent reading
    /// (same id) returns the same acknowledgement and is stored once.
    public nonisolated func ingest(_ submission: Submission, after turn: IngestTurn? = nil) async throws(IngestError) -> Ack {
        try await ingest([submission], after: turn)[0].get()
    }

    /// Validates `submissions` in parallel, then enqueues them in the given order (after `turn`'s
    /// predecessors), and returns each one's outcome, in order, once durable or refused.
    public nonisolated func ingest(_ submissions: [Submission], after turn: IngestTurn? = nil) async -> [Result<Ack, IngestError>] {
        let checked = await Self.parallelMap(submissions) { self.validate($0) }
        await turn?.waitForPrevious()
        let lastSeqs = await lookUpLastSeqs(for: checked)
        // Numbering fixes the queue order (the ticket); the signatures are then made in parallel,
        // and `enqueue` puts tickets on the queue strictly in turn.
        let (ticket, numbered) = await number(checked, lastSeqs: lastSeqs)
        turn?.finish()
        let readings = await Self.parallelMap(numbered) { self.sign($0) }
        let promises = await enqueue(ticket, readings)
        var out: [Result<Ack, IngestError>] = []
        out.reserveCapacity(promises.count)
        for p in promises { out.append(await p.value) }
        return out
    }

    /// Shorthand for `ingest(.signed(reading))`.
    public nonisolated func submit(_ reading: Reading) async throws(IngestError) -> Ack {
        try await ingest(.signed(reading))
    }

    /// `transform` of each item, in order, spread over the cores in contiguous chunks (one task per
    /// chunk, not per item: a task costs more than checking an unsigned payload).
    static func parallelMap<T: Sendable, U: Sendable>(_ items: [T], _ transform: @escaping @Sendable (T) -> U) async -> [U] {
        let chunks = min(ProcessInfo.processInfo.activeProcessorCount, items.count / 2)
        if chunks <= 1 { return items.map(transform) }
        let size = (items.count + chunks - 1) / chunks
        return await withTaskGroup(of: (Int, [U]).self) { group in
            for start in stride(from: 0, to: items.count, by: size) {
                let slice = items[start..<min(start + size, items.count)]
                group.addTask { (start, slice.map(transform)) }
            }
            var parts: [(Int, [U])] = []
            for await part in group { parts.append(part) }
            return parts.sorted { $0.0 < $1.0 }.flatMap(\.1)
        }
    }

    private nonisolated func validate(_ submission: Submission) -> Result<Submission, IngestError> {
        do throws(IngestError) {
            switch submission {
            case let .signed(reading):
                try validator.validate(reading)
            case let .unsigned(device, payload, _, _, _):
                if let why = DeviceID.problem(with: device) { throw .badDevice(why) }
                guard payload.count <= validator.maxPayloadBytes else {
                    throw .payloadTooLarge(size: payload.count, limit: validator.maxPayloadBytes)
                }
                try ReadingValidator.checkPayload(payload)
            }
            return .success(submission)
        } catch {
            return .failure(error)
        }
    }

    /// The stored last seq of each device among `items` that the node must number and whose seq it
    /// has not cached yet, read on the store's I/O threads (never inside the actor).
    private nonisolated func lookUpLastSeqs(for items: [Result<Submission, IngestError>]) async -> [String: Result<UInt64, IngestError>] {
        var devices = Set<String>()
        for case let .success(.unsigned(device, _, _, _, _)) in items { devices.insert(device) }
        guard !devices.isEmpty else { return [:] }
        let unknown = await uncached(devices)
        var out: [String: Result<UInt64, IngestError>] = [:]
        for device in unknown {
            do {
                let floor = seqFloor.value(device) ?? 0
                out[device] = .success(max(floor, try await store.offload { try $0.lastSeq(device: device) ?? 0 }))
            } catch {
                out[device] = .failure(.storeFailed(String(describing: error)))
            }
        }
        return out
    }

    private func uncached(_ devices: Set<String>) -> [String] { devices.filter { lastSeq[$0] == nil } }

    /// Raises the cached last seq of each device to at least the given seq: readings of these
    /// devices were numbered elsewhere (copies of another node's chain just arrived).
    public func raiseSeqs(_ seqs: [String: UInt64]) {
        for (device, seq) in seqs {
            if let last = lastSeq[device], last < seq { lastSeq[device] = seq }
        }
    }

    /// Raises the cached last seqs to the seq floors: this node's key range grew, and devices it
    /// numbered before may have been numbered elsewhere since. (The cache is never cleared: it
    /// also counts readings numbered and queued but not yet committed.)
    public func raiseSeqsToFloors() {
        for (device, last) in lastSeq {
            if let floor = seqFloor.value(device), floor > last { lastSeq[device] = floor }
        }
    }

    /// A validated submission with its place fixed: refused, ready to store, or numbered and
    /// stamped by the node but not signed yet.
    enum Numbered: Sendable {
        case refused(IngestError)
        case ready(Reading)
        case toSign(device: String, seq: UInt64, time: Int64, timeQuality: TimeQuality, source: ReadingSource, payload: [UInt8])
    }

    /// Numbers and stamps the unsigned submissions (each device's next seq) and takes the next
    /// ticket: the place of these items on the queue.
    private func number(_ items: [Result<Submission, IngestError>], lastSeqs: [String: Result<UInt64, IngestError>]) -> (UInt64, [Numbered]) {
        for (device, found) in lastSeqs where lastSeq[device] == nil {
            if case let .success(last) = found { lastSeq[device] = last }
        }
        let ticket = nextTicket
        nextTicket += 1
        // A reading the node time-stamps is as synchronised as the system clock is now.
        let stampQuality = items.contains { if case .success(.unsigned(_, _, nil, _, _)) = $0 { true } else { false } } ? configuration.clock.quality : .synced
        let out = items.map { item -> Numbered in
            guard !closed else { return .refused(.shuttingDown) }
            switch item {
            case let .failure(error):
                return .refused(error)
            case let .success(.signed(r)):
                if let known = lastSeq[r.device], r.seq > known { lastSeq[r.device] = r.seq }
                return .ready(r)
            case let .success(.unsigned(device, payload, time, timeQuality, source)):
                do throws(IngestError) {
                    return .toSign(device: device, seq: try nextSeq(device), time: time ?? now(), timeQuality: time == nil ? stampQuality : timeQuality,
                                   source: source, payload: payload)
                } catch {
                    return .refused(error)
                }
            }
        }
        return (ticket, out)
    }

    /// Signs what the node numbered (outside the actor). A failure here would leave a gap in the
    /// device's seq, which the ledger allows.
    private nonisolated func sign(_ item: Numbered) -> Result<Reading, IngestError> {
        switch item {
        case let .refused(error): return .failure(error)
        case let .ready(reading): return .success(reading)
        case let .toSign(device, seq, time, timeQuality, source, payload):
            do {
                return .success(try Reading(device: device, seq: seq, time: time, timeQuality: timeQuality, source: source,
                                            payload: payload, signedBy: key))
            } catch {
                return .failure(.malformed(String(describing: error)))
            }
        }
    }

    /// Puts a ticket's readings on the queue once every earlier ticket is there (parking them
    /// until then), so the queue holds readings in numbering order whatever order signing ends in.
    private func enqueue(_ ticket: UInt64, _ readings: [Result<Reading, IngestError>]) -> [AckPromise] {
        let promises = readings.map { _ in AckPromise() }
        parked[ticket] = (readings, promises)
        while let (readings, promises) = parked.removeValue(forKey: nextToQueue) {
            nextToQueue += 1
            for (reading, promise) in zip(readings, promises) {
                switch reading {
                case let .failure(error): promise.resolve(.failure(error))
                case let .success(r):
                    // After drain has begun nothing more would be committed: refuse rather than strand.
                    if closed { promise.resolve(.failure(.shuttingDown)) } else { queue.append((r, promise)) }
                }
            }
        }
        if !queue.isEmpty { wake.yield() }
        return promises
    }

    private func nextSeq(_ device: String) throws(IngestError) -> UInt64 {
        // Looked up before `enqueue` (off the actor); missing only when that lookup failed.
        guard let last = lastSeq[device] else { throw .storeFailed("could not read the last seq of device \(device)") }
        lastSeq[device] = last + 1
        return last + 1
    }

    // MARK: Committing and sealing

    private func flush() async {
        while !queue.isEmpty {
            let take = min(queue.count, configuration.maxBatch)
            let batch = Array(queue.prefix(take))
            queue.removeFirst(take)
            var stored: [StoredReading] = []
            do {
                // Pending readings ⅞ of a block interval old are sealed in this commit's own
                // transaction: a block then costs no fsync of its own, and blocks stay about an
                // interval apart (at half an interval, a steady stream made two blocks a second,
                // and each block's header outlives retention: docs/ledger.md, Retention).
                let sealDue = !cutting && pendingCount > 0 && pendingSince.map { configuration.monotonic() - $0 >= configuration.blockInterval * 7 / 8 } ?? false
                let outcomes: [CommitOutcome]
                if sealDue {
                    cutting = true
                    defer {
                        cutting = false
                        if !cutWaiters.isEmpty { cutWaiters.removeFirst().resume() }
                    }
                    let (o, sealed) = try await store.commit(batch.map(\.reading), sealingPendingWith: key, now: now(), maxReadings: configuration.maxBlockReadings)
                    outcomes = o
                    if let sealed { sealedBlock(sealed) }
                } else {
                    outcomes = try await store.commit(batch.map(\.reading))
                }
                transactions += 1
                for (item, outcome) in zip(batch, outcomes) {
                    let r = item.reading
                    let ack = Ack(id: r.id, device: r.device, seq: r.seq)
                    switch outcome {
                    case let .stored(rowid):
                        newest = max(newest ?? rowid, rowid)
                        stored.append(StoredReading(reading: r, rowid: rowid, block: nil, leaf: nil))
                        item.promise.resolve(.success(ack))
                    case .duplicate:
                        item.promise.resolve(.success(ack))
                    case let .seqNotIncreasing(last):
                        item.promise.resolve(.failure(.seqNotIncreasing(device: r.device, seq: r.seq, last: last)))
                    case let .seqTooFar(last):
                        item.promise.resolve(.failure(.seqTooFar(device: r.device, seq: r.seq, last: last)))
                    case let .wrongSigner(bound):
                        item.promise.resolve(.failure(.wrongSigner(device: r.device, signer: r.signer.hex, bound: bound.hex)))
                    }
                }
            } catch {
                // Nothing of this batch is stored; forget cached seqs so numbering restarts from the store.
                lastSeq.removeAll()
                for item in batch { item.promise.resolve(.failure(.storeFailed(String(describing: error)))) }
            }
            if !stored.isEmpty {
                if pendingSince == nil { pendingSince = configuration.monotonic() }
                feed.publish(stored)
            }
            while pendingCount >= configuration.maxBlockReadings {
                do {
                    guard try await cutBlock() != nil else { break }
                } catch {
                    logger.error("sealing a full block failed; the readings stay pending and are retried", metadata: ["error": "\(error)"])
                    break
                }
            }
        }
    }

    /// Seals the pending readings into the next block; nil when none are pending. Only one cut
    /// runs at a time: a second caller waits for the first, then cuts what is still pending.
    @discardableResult
    public func cutBlock() async throws -> BlockHeader? {
        while cutting { await withCheckedContinuation { cutWaiters.append($0) } }
        cutting = true
        defer {
            cutting = false
            if !cutWaiters.isEmpty { cutWaiters.removeFirst().resume() }
        }
        guard pendingCount > 0 else { return nil }
        guard let sealed = try await store.cutBlock(signedBy: key, now: now(), maxReadings: configuration.maxBlockReadings) else {
            // Nothing unsealed in the store: re-read where the unsealed readings start.
            if let bounds = try? store.pendingBounds() { sealedEnd = max(bounds.firstPending, 1); newest = bounds.newest }
            return nil
        }
        sealedBlock(sealed)
        return sealed.header
    }

    private func sealedBlock(_ sealed: LedgerStore.SealedBlock) {
        sealedEnd = max(sealedEnd, sealed.rowids.upperBound)
        tip = sealed.header
        pendingSince = pendingCount > 0 ? configuration.monotonic() : nil
        feed.publish(sealed.header)
    }

    /// Seals what is pending once the oldest of it waited `blockInterval` and a quarter (a
    /// commit after ⅞ of an interval usually sealed it already, in its own transaction).
    private func cutIfDue() async {
        guard let since = pendingSince, configuration.monotonic() - since >= configuration.blockInterval * 5 / 4 else { return }
        await cutOnSchedule()
    }

    /// Readings stored but not yet in a block.
    public var pendingCount: Int {
        guard let newest, newest >= sealedEnd else { return 0 }
        return Int(newest - sealedEnd + 1)
    }

    /// Refuses new readings, commits what is queued and seals everything pending into blocks.
    /// `run()` does this on graceful shutdown.
    public func drain() async throws {
        closed = true
        await flush()
        while try await cutBlock() != nil {}
    }

    private func cutOnSchedule() async {
        do {
            try await cutBlock()
        } catch {
            logger.error("cutting a block failed; the readings stay pending and are retried next interval", metadata: ["error": "\(error)"])
        }
    }
}

extension IngestEngine: Service {
    public nonisolated func run() async throws {
        let interval = configuration.blockInterval
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                // Commits: group commit of whatever is queued each time readings arrive.
                let window = self.configuration.commitWindow
                group.addTask {
                    for await _ in self.wakes {
                        if window > .zero { try? await Task.sleep(for: window) }
                        await self.flush()
                    }
                }
                // Sealing: pending readings are sealed within 1¼ block intervals (usually by a
                // commit after ⅞ of an interval; else here, checked every quarter interval).
                group.addTask {
                    while !Task.isCancelled {
                        do { try await Task.sleep(for: interval / 4) } catch { return }
                        await self.cutIfDue()
                    }
                }
                // The acknowledgement journal: its SQLite side is made durable on its own schedule
                // (`LedgerStore.SettlePolicy`), and published at once when another process on
                // this machine asks to read the ledger. Checked five times a second, off the actor.
                group.addTask {
                    var failing = false
                    while !Task.isCancelled {
                        do { try await Task.sleep(for: .milliseconds(200)) } catch { return }
                        do {
                            try await self.store.offload { try $0.journalUpkeep() }
                            failing = false
                        } catch {
                            if !failing { self.logger.error("settling the acknowledgement journal failed; it is retried", metadata: ["error": "\(error)"]) }
                            failing = true
                        }
                    }
                }
                await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.wake.finish()
        }
        logger.info("sealing pending readings before shutdown")
        try await drain()
    }
}

/// A hook the engine asks for a device's seq floor (set once the ring exists).
public final class SeqFloor: Sendable {
    private let hook = Mutex<(@Sendable (String) -> UInt64?)?>(nil)
    public init() {}
    public func set(_ body: @escaping @Sendable (String) -> UInt64?) { hook.withLock { $0 = body } }
    func value(_ device: String) -> UInt64? { hook.withLock { $0 }?(device) }
}
