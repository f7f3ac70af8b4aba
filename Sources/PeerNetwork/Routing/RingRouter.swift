import Chord
import FlowchainCrypto
import Foundation
import Ledger
import Logging
import Synchronization

/// The ingest entry point of a node in a ring: readings of devices this node owns go to its
/// engine; the rest are forwarded to the device's owner, `successor(SHA-1(device))`, and
/// acknowledged only with the owner's acknowledgement. A reading whose owner cannot be reached
/// is refused with `owner_unreachable` (nothing is acknowledged that is not stored).
public final class RingRouter: ReadingIngest {
    let engine: IngestEngine
    let ring: Mutex<(driver: ChordDriver?, transport: PeerTransport?)> = Mutex((nil, nil))
    /// device key → owner, as last looked up.
    private let owners = Mutex<[ChordID: (owner: NodeRef, until: ContinuousClock.Instant)]>([:])
    let forwardTimeout: Duration
    /// Set when acknowledgements wait for a replica too.
    let replicator: Replicator?
    /// Set when the node keeps a forward queue.
    let queue: ForwardQueue?
    let logger: Logger
    public let counters: RoutingCounters
    /// The copies of other nodes' chains this node keeps (readings of devices whose keys moved
    /// here were stored in them before).
    let copies: @Sendable () -> [LedgerStore]
    /// Forward tokens: this node's random prefix and a counter; and the tokens it stored as owner.
    private let tokenPrefix = UInt64.random(in: 1...UInt64.max)
    private let tokenCounter = Atomic<UInt64>(0)
    let recent = RecentForwards()

    init(engine: IngestEngine, forwardTimeout: Duration = .seconds(10), replicator: Replicator? = nil, queue: ForwardQueue? = nil,
         counters: RoutingCounters = .init(), copies: @escaping @Sendable () -> [LedgerStore] = { [] }, logger: Logger) {
        self.engine = engine
        self.copies = copies
        self.replicator = replicator
        self.queue = queue
        self.forwardTimeout = forwardTimeout
        self.counters = counters
        self.logger = logger
    }

    func attach(_ driver: ChordDriver, _ transport: PeerTransport) {
        ring.withLock { $0 = (driver, transport) }
    }

    public static func key(ofDevice device: String) -> ChordID { ChordID.hashing(Array(device.utf8)) }

    /// Stores readings this node owns: after its durable commit, and (with acknowledgements at
    /// the replica level) once a replica holds them too.
    func storeOwned(_ submissions: [Submission], after turn: IngestTurn?) async -> [Result<Ack, IngestError>] {
        let outcomes = await screenedIngest(submissions, after: turn)
        guard let replicator, outcomes.contains(where: { (try? $0.get()) != nil }) else { return outcomes }
        // Every acknowledged reading's position is at most the newest one now.
        // No successor to copy to (a ring of one): the owner's commit is all there is.
        guard let view = ring.withLock({ $0.driver })?.view, !replicator.targets(view).isEmpty,
              let newest = (try? engine.store.pendingBounds())?.newest else { return outcomes }
        if await replicator.waitReplicated(newest, timeout: forwardTimeout) { return outcomes }
        return outcomes.map { o in
            guard case let .success(ack) = o else { return o }
            return .failure(.ownerUnreachable("reading \(ack.id.hex.prefix(16)) of device \(ack.device) is stored at its owner but no replica confirmed it within \(forwardTimeout); re-send it (it is stored once)"))
        }
    }

    /// `engine.ingest`, after checking device-signed readings against the copies of other nodes'
    /// chains: once a device's keys moved here, a reading its previous owner stored is
    /// acknowledged as stored (it is, once), and another reading with a seq the device already
    /// used there is refused, as the previous owner would have.
    func screenedIngest(_ submissions: [Submission], after turn: IngestTurn?) async -> [Result<Ack, IngestError>] {
        let signed = submissions.compactMap { if case let .signed(r) = $0 { r } else { nil } }
        let stores = signed.isEmpty ? [] : copies()
        guard !stores.isEmpty else { return await engine.ingest(submissions, after: turn) }
        let decided: [Int: Result<Ack, IngestError>] = (try? await engine.store.offload { _ in
            var floors: [String: UInt64?] = [:]
            var out: [Int: Result<Ack, IngestError>] = [:]
            for (i, s) in submissions.enumerated() {
                guard case let .signed(r) = s else { continue }
                if floors[r.device] == nil { floors[r.device] = try stores.compactMap { try $0.lastSeq(device: r.device) }.max() }
                guard let floor = floors[r.device] ?? nil, r.seq <= floor else { continue }
                let held = try stores.contains { try $0.reading(id: r.id) != nil }
                out[i] = held ? .success(Ack(id: r.id, device: r.device, seq: r.seq)) : .failure(.seqNotIncreasing(device: r.device, seq: r.seq, last: floor))
            }
            return out
        }) ?? [:]
        guard !decided.isEmpty else { return await engine.ingest(submissions, after: turn) }
        let rest = submissions.indices.filter { decided[$0] == nil }
        var results = decided
        if rest.isEmpty { turn?.finish() } else {
            for (i, o) in zip(rest, await engine.ingest(rest.map { submissions[$0] }, after: turn)) { results[i] = o }
        }
        return submissions.indices.map { results[$0]! }
    }

    /// A token for each unsigned submission (signed ones are stored once by their id anyway).
    func tokens(for submissions: [Submission]) -> [ForwardToken?] {
        submissions.map { s in
            guard case .unsigned = s else { return nil }
            return ForwardToken(high: tokenPrefix, low: tokenCounter.add(1, ordering: .relaxed).newValue)
        }
    }

    public func ingest(_ submissions: [Submission], after turn: IngestTurn?) async -> [Result<Ack, IngestError>] {
        // Readings the node time-stamps are stamped where they enter, when they enter (not when
        // the owner, or the forward queue, gets to them).
        var stamped: [Submission]? = nil
        for (i, s) in submissions.enumerated() {
            guard case let .unsigned(device, payload, nil, _, source) = s else { continue }
            if stamped == nil { stamped = submissions }
            stamped![i] = .unsigned(device: device, payload: payload, time: engine.now(), timeQuality: engine.clockQuality, source: source)
        }
        let submissions = stamped ?? submissions
        guard let queue, ring.withLock({ $0.driver.map { !$0.view.alone } ?? false }) else { return await route(submissions, after: turn) }
        let tokens = tokens(for: submissions)
        // Readings of a device that already has readings waiting queue behind them.
        let held = submissions.indices.filter { ForwardQueue.canQueue(submissions[$0]) && queue.isWaiting(submissions[$0].device) }
        var results = [Result<Ack, IngestError>?](repeating: nil, count: submissions.count)
        var rest = Array(submissions.indices)
        if !held.isEmpty {
            await turn?.waitForPrevious()
            let ok = await queue.enqueue(held.map { submissions[$0] }, tokens: held.map { tokens[$0] }, now: engine.now())
            for i in held { results[i] = ok ? .failure(.queued(Self.queuedText(submissions[i].device, queue))) : .failure(.ownerUnreachable("the forward queue is full (\(queue.limit) readings)")) }
            rest.removeAll { held.contains($0) }
        }
        let routed = rest.isEmpty ? [] : await route(rest.map { submissions[$0] }, tokens: rest.map { tokens[$0] }, after: turn)
        if rest.isEmpty { turn?.finish() }
        var toQueue: [Int] = []
        for (i, outcome) in zip(rest, routed) {
            results[i] = outcome
            if case .failure(.ownerUnreachable) = outcome, ForwardQueue.canQueue(submissions[i]) { toQueue.append(i) }
        }
        if !toQueue.isEmpty {
            if await queue.enqueue(toQueue.map { submissions[$0] }, tokens: toQueue.map { tokens[$0] }, now: engine.now()) {
                for i in toQueue { results[i] = .failure(.queued(Self.queuedText(submissions[i].device, queue))) }
            } else {
                counters.forwardFailed(toQueue.count)
            }
        }
        return results.map { $0 ?? .failure(.ownerUnreachable("no outcome")) }
    }

    static func queuedText(_ device: String, _ queue: ForwardQueue) -> String {
        "the owner of device \(device) cannot be reached; held in this node's forward queue (\(queue.count) waiting) and delivered when it can be"
    }

    /// Routes without queueing: the way `ingest` and the forward queue's deliveries take.
    /// `tokens` name the deliveries (the same ones each time a reading is sent again); made here when not given.
    func route(_ submissions: [Submission], tokens given: [ForwardToken?]? = nil, after turn: IngestTurn?) async -> [Result<Ack, IngestError>] {
        let (driver, transport) = ring.withLock { ($0.driver, $0.transport) }
        guard let driver, let transport, !driver.view.alone || driver.view.paused else { return await engine.ingest(submissions, after: turn) }
        let tokens = given ?? tokens(for: submissions)
        let view = driver.view
        let keys = submissions.map { Self.key(ofDevice: $0.device) }
        var results = [Result<Ack, IngestError>?](repeating: nil, count: submissions.count)
        var remaining = Array(submissions.indices)
        var turn = turn
        // A dead owner is noticed by the ring within seconds (a timed-out request, then
        // stabilization): the attempts wait 0.25, 0.5, 1, 2 and 2 s for it to heal.
        var failures: [Int: String] = [:]
        for attempt in 0..<6 where !remaining.isEmpty {
            if attempt > 0 { try? await Task.sleep(for: .milliseconds(min(2000, 250 << (attempt - 1)))) }
            var local: [Int] = []
            var retry: [Int] = []
            var byOwner: [ChordID: (owner: NodeRef, items: [Int])] = [:]
            var ownerOrder: [ChordID] = []
            for i in remaining {
                if view.owns(keys[i]) { local.append(i); continue }
                switch await owner(of: keys[i], driver: driver) {
                case let .success(o) where o.id == view.me.id:
                    // This node, but it is taking the keys (back) over: wait for that, then store.
                    if !view.owns(keys[i]) {
                        failures[i] = "this node is taking the keys of device \(submissions[i].device) over; re-send it"
                        retry.append(i)
                    } else {
                        local.append(i)
                    }
                case let .success(o):
                    if byOwner[o.id] == nil { ownerOrder.append(o.id); byOwner[o.id] = (o, []) }
                    byOwner[o.id]!.items.append(i)
                case let .failure(e):
                    results[i] = .failure(.ownerUnreachable("no route to the owner of device \(submissions[i].device): \(e)"))
                }
            }
            // Forwards go out in the order of this node's own submissions: once the turns before
            // this one are queued, the requests are queued on their connections before the turn ends.
            await turn?.waitForPrevious()
            var sent: [(owner: NodeRef, items: [Int], pending: PeerConnection.PendingRequest?, error: String?)] = []
            for id in ownerOrder {
                let (o, items) = byOwner[id]!
                do {
                    let c = try await transport.connection(to: o)
                    sent.append((o, items, c.send(.ingest, SubmissionCodec.encode(items.map { submissions[$0] }, tokens: items.map { tokens[$0] })), nil))
                } catch {
                    sent.append((o, items, nil, "\(error)"))
                }
            }
            if local.isEmpty {
                turn?.finish()
            } else {
                let outcomes = await storeOwned(local.map { submissions[$0] }, after: turn)
                for (i, o) in zip(local, outcomes) { results[i] = o }
            }
            turn = nil
            for s in sent {
                counters.forwarded(s.items.count)
                let reply: Result<[UInt8], PeerRequestError>
                if let pending = s.pending { reply = await pending.wait(timeout: forwardTimeout) } else { reply = .failure(.unreachable(s.error ?? "unreachable")) }
                switch reply {
                case let .success(body):
                    do {
                        let outcomes = try SubmissionCodec.decodeOutcomes(body, expected: s.items.count)
                        for (i, o) in zip(s.items, outcomes) {
                            if case .failure(.relayed(kind: RingRouter.notOwnerKind, _)) = o { retry.append(i) } else { results[i] = o }
                        }
                    } catch {
                        for i in s.items { results[i] = .failure(.ownerUnreachable("owner \(s.owner) answered with a malformed reply: \(error)")) }
                    }
                case let .failure(e):
                    forget(owner: s.owner.id)
                    counters.forwardFailed(s.items.count)
                    if case .timedOut = e {
                        // It may have stored them: the sender decides whether to re-send (a
                        // re-sent signed reading is stored once).
                        for i in s.items { results[i] = .failure(.ownerUnreachable("owner \(s.owner.address) of device \(submissions[i].device): \(e)")) }
                    } else {
                        for i in s.items { failures[i] = "owner \(s.owner.address) of device \(submissions[i].device): \(e)"; retry.append(i) }
                    }
                }
            }
            for i in retry { forget(key: keys[i]) }
            remaining = retry
        }
        turn?.finish()
        for i in remaining {
            results[i] = .failure(.ownerUnreachable(failures[i] ?? "the ring is changing: no node accepted device \(submissions[i].device) yet; re-send it"))
        }
        return results.map { $0 ?? .failure(.ownerUnreachable("no outcome")) }
    }

    static let notOwnerKind = "not_owner"

    /// The owner of `key`: from the cache, else by a Chord lookup.
    func owner(of key: ChordID, driver: ChordDriver) async -> Result<NodeRef, LookupError> {
        let now = ContinuousClock.now
        if let hit = owners.withLock({ $0[key] }), hit.until > now { return .success(hit.owner) }
        let started = ContinuousClock.now
        let answer = await driver.lookup(key)
        let took = ContinuousClock.now - started
        if case let .success(a) = answer {
            counters.lookupTime(took)
            owners.withLock { cache in
                if cache.count > 100_000 { cache.removeAll() }
                cache[key] = (a.successor, now + .seconds(30))
            }
            counters.lookup(a.hops)
        }
        return answer.map(\.successor)
    }

    func forget(key: ChordID) { _ = owners.withLock { $0.removeValue(forKey: key) } }
    func forget(owner: ChordID) { owners.withLock { cache in cache = cache.filter { $0.value.owner.id != owner } } }

    /// Forgets every cached owner (the ring changed around this node).
    public func flushOwners() { owners.withLock { $0.removeAll() } }

    /// What the owner side does with a forwarded `ingest`: stores what it owns, refuses the rest
    /// as `not_owner` so the sender looks again.
    func serveIngest(_ body: [UInt8], view: RingView, turn: IngestTurn) async -> (PeerStatus, [UInt8]) {
        let forwards: [(submission: Submission, token: ForwardToken?)]
        do { forwards = try SubmissionCodec.decodeForwards(body) } catch {
            return (.error, Array("malformed ingest request: \(error)".utf8))
        }
        let submissions = forwards.map(\.submission)
        var outcomes = [Result<Ack, IngestError>?](repeating: nil, count: submissions.count)
        var mine: [Int] = []
        for (i, s) in submissions.enumerated() {
            if let token = forwards[i].token, let ack = recent.ack(for: token, device: s.device) {
                // Sent again after a forward that timed out, but stored then: the same acknowledgement.
                outcomes[i] = .success(ack)
            } else if view.owns(Self.key(ofDevice: s.device)) {
                mine.append(i)
            } else {
                outcomes[i] = .failure(.relayed(kind: Self.notOwnerKind, message: "node \(view.me) does not own device \(s.device)"))
            }
        }
        if mine.isEmpty { turn.finish() } else {
            let stored = await storeOwned(mine.map { submissions[$0] }, after: turn)
            for (i, o) in zip(mine, stored) {
                outcomes[i] = o
                if case let .success(ack) = o, let token = forwards[i].token { recent.remember(token, ack) }
            }
        }
        counters.served(mine.count)
        return (.ok, SubmissionCodec.encode(outcomes.map { $0! }))
    }
}

/// Counters the node's metrics read.
public struct RoutingCounters: Sendable {
    public var forwarded: @Sendable (Int) -> Void
    public var forwardFailed: @Sendable (Int) -> Void
    public var served: @Sendable (Int) -> Void
    public var lookup: @Sendable (Int) -> Void
    /// Readings in the forward queue now.
    public var queueDepth: @Sendable (Int) -> Void
    /// How long a successful lookup took.
    public var lookupTime: @Sendable (Duration) -> Void = { _ in }
    /// Readings of this node's chain not yet on every replica.
    public var replicationLag: @Sendable (Int) -> Void = { _ in }
    public init(forwarded: @escaping @Sendable (Int) -> Void = { _ in }, forwardFailed: @escaping @Sendable (Int) -> Void = { _ in },
                served: @escaping @Sendable (Int) -> Void = { _ in }, lookup: @escaping @Sendable (Int) -> Void = { _ in },
                queueDepth: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.forwarded = forwarded
        self.forwardFailed = forwardFailed
        self.served = served
        self.lookup = lookup
        self.queueDepth = queueDepth
    }
}
