import Chord
import Foundation
import Logging
import Synchronization

/// Runs this node's `ChordNode` in real time: feeds it the envelopes its peers send and the
/// timers it asked for (on an injected clock), and carries out what it emits over the peer
/// transport. The protocol code is the one the simulator runs; only the driver differs.
public actor ChordDriver {
    public let node: ChordNode
    let transport: PeerTransport
    let clock: any Clock<Duration>
    let logger: Logger
    /// The ring as the rest of the node reads it without waiting on this actor.
    public nonisolated let view: RingView
    private var lookups: [LookupToken: CheckedContinuation<Result<LookupAnswer, LookupError>, Never>] = [:]
    private var joinWaiters: [CheckedContinuation<Void, Never>] = []
    private var timers: [Task<Void, Never>] = []
    public private(set) var events = Statistics()

    public struct Statistics: Sendable {
        public var lookups = 0
        public var lookupHops = 0
        public var rejected = 0
    }

    /// Called when this node's key range changes (true: it grew).
    let onRangeChanged: @Sendable (Bool) async -> Void

    public init(transport: PeerTransport, configuration: ChordConfiguration = .init(), clock: any Clock<Duration> = ContinuousClock(),
                logger: Logger, onRangeChanged: @escaping @Sendable (Bool) async -> Void = { _ in }) {
        self.onRangeChanged = onRangeChanged
        node = ChordNode(me: transport.me, configuration: configuration, seed: UInt64.random(in: 0 ... .max))
        self.transport = transport
        self.clock = clock
        self.logger = logger
        view = RingView(me: transport.me)
    }

    /// Starts a ring of one.
    public func create() {
        node.create()
        pump()
    }

    /// Joins through `bootstraps` (retrying on its own until it succeeds); returns once joined.
    public func join(via bootstraps: [NodeRef]) async {
        node.join(via: bootstraps)
        pump()
        if node.isActive { return }
        await withCheckedContinuation { joinWaiters.append($0) }
    }

    /// Looks up the live node owning `key`.
    public func lookup(_ key: ChordID) async -> Result<LookupAnswer, LookupError> {
        let token = node.lookup(key)
        return await withCheckedContinuation { k in
            lookups[token] = k
            pump()
        }
    }

    /// An envelope from the peer the transport authenticated.
    public func received(_ envelope: ChordEnvelope, from peer: ChordID) {
        node.receive(envelope, from: peer)
        pump()
    }

    /// Leaves gracefully (successor and predecessor hear it), then stops the timers.
    public func leave() async {
        node.leave()
        pump()
        // Give the leave notices a moment to go out before connections close.
        try? await clock.sleep(for: .milliseconds(200))
        for t in timers { t.cancel() }
        timers.removeAll()
    }

    func fire(_ timer: ChordTimer) {
        node.timerFired(timer)
        pump()
    }

    private func pump() {
        for effect in node.takeEffects() {
            switch effect {
            case let .send(envelope, peer):
                let transport = self.transport
                Task {
                    guard let c = try? await transport.connection(to: peer) else { return }  // the request's timeout covers it
                    c.enqueue(.chord(ChordWire.encode(envelope)))
                }
            case let .schedule(timer, ms):
                let clock = self.clock
                timers.removeAll { $0.isCancelled }
                let task = Task { [weak self] in
                    do { try await clock.sleep(for: .milliseconds(ms)) } catch { return }
                    await self?.fire(timer)
                }
                if case .requestTimeout = timer {} else { timers.append(task) }
            case let .event(event):
                handle(event)
            }
        }
        view.update(node)
    }

    private func handle(_ event: ChordEvent) {
        switch event {
        case let .joined(successor):
            logger.info("joined the ring: successor \(successor)")
            for w in joinWaiters { w.resume() }
            joinWaiters.removeAll()
        case let .joinFailed(error):
            logger.warning("joining the ring failed (\(error)); retrying in \(node.configuration.joinRetryDelay) ms")
        case let .lookupFinished(token, result):
            events.lookups += 1
            if case let .success(a) = result { events.lookupHops += a.hops }
            lookups.removeValue(forKey: token)?.resume(returning: result)
        case let .rangeChanged(change):
            let hook = onRangeChanged
            let grew = if case .grew = change { true } else { false }
            // Keys gained while others are around are held back until the take-over copied
            // what was committed for them elsewhere (`RingView.release`).
            if case let .grew(gained) = change, node.successors.contains(where: { $0.id != node.me.id }) { view.hold(gained) }
            Task { await hook(grew) }
            switch change {
            case let .grew(gained): logger.info("key range grew by \(gained)")
            case let .shrank(lost, to): logger.info("key range shrank: \(lost) now belongs to \(to)")
            }
        case let .handOff(range, to):
            logger.info("leaving: keys \(range) go to \(to)")
        case let .rejected(error):
            events.rejected += 1
            // A late answer to a request that already timed out is normal after a pause; the rest is not.
            if case .unsolicitedResponse = error { logger.debug("refused a Chord message: \(error)") } else { logger.warning("refused a Chord message: \(error)") }
        }
    }

    /// A snapshot of this node's tables.
    public func status() -> RingStatus {
        RingStatus(me: node.me, predecessor: node.predecessor, successors: node.successors, fingers: node.fingerTable,
                   owned: node.owned, active: node.isActive, statistics: node.statistics)
    }
}

/// What `flowchain ring` shows: this node's place in the ring.
public struct RingStatus: Sendable {
    public let me: NodeRef
    public let predecessor: NodeRef?
    public let successors: [NodeRef]
    public let fingers: [NodeRef]
    public let owned: RingRange?
    public let active: Bool
    public let statistics: ChordNode.Statistics

    /// Every node this one knows, in ring order from itself.
    public var known: [NodeRef] {
        var seen = Set<ChordID>([me.id])
        var out = [me]
        for n in [predecessor].compactMap({ $0 }) + successors + fingers where seen.insert(n.id).inserted { out.append(n) }
        return out.sorted { me.id.distance(to: $0.id) < me.id.distance(to: $1.id) }
    }
}

/// The parts of the ring the ingest path reads on every reading, without an actor hop.
public final class RingView: Sendable {
    public let me: NodeRef
    private let state = Mutex<(owned: RingRange?, alone: Bool, successors: [NodeRef], hadPeers: Bool)>((nil, true, [], false))
    /// Keys this node owns but does not accept readings for yet: it is taking them over.
    private let held = Mutex<[RingRange]>([])
    /// The node's heartbeat (`beat()`, every 200 ms). A node whose heartbeat is older than
    /// `pauseLimit` was paused (stopped, starved, its storage stalled): its successor may have
    /// taken its keys over meanwhile, so it stores nothing for them until it took them back.
    private let lastBeat = Mutex<(at: ContinuousClock.Instant, resuming: Bool)>((.now, false))
    public static let pauseLimit: Duration = .seconds(2)

    init(me: NodeRef) { self.me = me }

    func update(_ node: ChordNode) {
        let alone = node.successors.allSatisfy { $0.id == node.me.id } && (node.predecessor.map { $0.id == node.me.id } ?? true)
        update(owned: node.owned, alone: alone, successors: node.successors)
    }

    func update(owned: RingRange?, alone: Bool, successors: [NodeRef]) {
        state.withLock { $0 = (owned, alone, successors, $0.hadPeers || !alone) }
    }

    /// True while this node knows no other: it owns every key.
    public var alone: Bool { state.withLock { $0.alone } }

    /// Whether this node owns `key` now (a node that does not yet know its predecessor owns
    /// nothing it can vouch for, unless it is alone).
    public func owns(_ key: ChordID) -> Bool {
        if held.withLock({ $0.contains { $0.contains(key) } }) || paused { return false }
        return state.withLock { s in s.alone || (s.owned?.contains(key) ?? false) }
    }

    /// Paused a moment ago, or resuming after a pause: not storing readings for its keys (even
    /// when it believes itself alone: after a pause every peer looks dead for a moment). A node
    /// that never had a peer is never fenced: nobody can have taken its keys (a lone node on an
    /// SD card whose fsync stalled for seconds goes on at once).
    public var paused: Bool { isPaused(at: .now) }

    func isPaused(at now: ContinuousClock.Instant) -> Bool {
        guard state.withLock({ $0.hadPeers }) else { return false }
        let beat = lastBeat.withLock { $0 }
        return beat.resuming || now - beat.at > Self.pauseLimit
    }

    /// Records a heartbeat; returns the time since the previous one. After a pause the node is
    /// `resuming` until `release()` (its keys taken back).
    func beat(at now: ContinuousClock.Instant = .now) -> Duration {
        lastBeat.withLock { b in
            let gap = now - b.at
            b = (now, b.resuming || gap > Self.pauseLimit)
            return gap
        }
    }

    /// The keys this node owns by the ring's tables (nil while it does not know its predecessor).
    var owned: RingRange? { state.withLock { $0.owned } }

    func hold(_ range: RingRange) { held.withLock { $0.append(range) } }
    /// The take-over is done: every held range is this node's to number.
    func release() {
        held.withLock { $0.removeAll() }
        lastBeat.withLock { $0.resuming = false }
    }
    public var holding: Bool { held.withLock { !$0.isEmpty } }

    public var successors: [NodeRef] { state.withLock { $0.successors } }
}
