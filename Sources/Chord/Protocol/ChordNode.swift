import FlowchainCrypto

/// One node's Chord protocol (Stoica et al., ToN 2003) as a state machine without I/O: feed it
/// received envelopes (`receive`) and fired timers (`timerFired`), call `create`, `join`,
/// `lookup` or `leave`, and carry out the effects it returns (`takeEffects`). The same code runs
/// in the simulator and over the WebSocket peer transport. Not thread-safe: one driver owns it.
public final class ChordNode {
    /// `joining` carries the bootstrap nodes and how many attempts were made.
    enum Phase { case idle, joining([NodeRef], attempt: Int), active, left }

    enum Purpose {
        case lookupStep(UInt64), lookupConfirm(UInt64)
        case stabilize, notify, checkPredecessor, leaving
        /// A node that notified us and would become our predecessor: adopted once it answers.
        case confirmPredecessor
    }

    struct Pending {
        let peer: NodeRef
        let purpose: Purpose
        let request: ChordRequest
        let attempt: Int
    }

    public let me: NodeRef
    public let configuration: ChordConfiguration
    public internal(set) var predecessor: NodeRef?
    /// The successor list, closest first; `successors[0]` is the successor. Never empty once
    /// in a ring (a lone node is its own successor).
    public internal(set) var successors: [NodeRef] = []
    /// fingers[i] = successor(me + 2^i) as last learned; nil when unknown or found dead.
    var fingers: [NodeRef?]
    var nextFinger = 0
    var phase = Phase.idle
    /// Keys this node owns, (predecessor, self], as last reported through `rangeChanged`.
    public internal(set) var owned: RingRange?
    var pending: [UInt64: Pending] = [:]
    /// Nodes that said they left, with the stabilization rounds they are still ignored for:
    /// messages they sent before leaving may still arrive, and other nodes may still list them.
    /// After that they may join again.
    var departed: [(id: ChordID, rounds: Int)] = []
    /// The last few peers that answered a request, most recent last.
    var acquaintances: [NodeRef] = []
    /// The bootstraps and the first peers ever met: long-lived places to check the ring from.
    var seeds: [NodeRef] = []
    var consistencyCursor = 0
    var roundsSinceConsistencyCheck = 0
    var lookups: [UInt64: Lookup] = [:]
    var nextID: UInt64 = 1
    var effects: [ChordEffect] = []
    var random: SplitMix64
    public internal(set) var statistics = Statistics()

    public struct Statistics: Sendable {
        public var requestsSent = 0
        public var requestsAnswered = 0
        /// Requests sent again after their first attempt went unanswered.
        public var retries = 0
        /// Requests that went unanswered on every attempt (the peer counted as failed).
        public var timeouts = 0
        public var rejected = 0
    }

    public init(me: NodeRef, configuration: ChordConfiguration = .init(), seed: UInt64 = 0) {
        self.me = me
        self.configuration = configuration
        self.fingers = Array(repeating: nil, count: ChordID.bits)
        self.random = SplitMix64(seed: seed ^ me.id.w2)
    }

    public var successor: NodeRef? { successors.first }
    public var isActive: Bool { if case .active = phase { true } else { false } }


    /// The effects produced since the last call, in order.
    public func takeEffects() -> [ChordEffect] {
        defer { effects.removeAll(keepingCapacity: true) }
        return effects
    }

    // MARK: Life cycle

    /// Starts a new ring with this node alone in it: it owns every key.
    public func create() {
        guard case .idle = phase else { return }
        successors = [me]
        predecessor = nil
        phase = .active
        setOwned(RingRange(after: me.id, upTo: me.id))
        startTimers()
    }

    /// Joins the ring `bootstrap` belongs to: looks up this node's own id through it.
    public func join(via bootstrap: NodeRef) { join(via: [bootstrap]) }

    /// Joins through any of `bootstraps`: the first attempt asks the first one; each retry asks the
    /// next, then nodes that answered during earlier attempts.
    public func join(via bootstraps: [NodeRef]) {
        switch phase {
        case .idle, .joining: break
        case .active, .left: return
        }
        let usable = bootstraps.filter { $0.id != me.id }
        guard let first = usable.first else { return emit(.joinFailed(.noRoute(key: me.id, tried: 0))) }
        for b in usable.prefix(8) where !seeds.contains(where: { $0.id == b.id }) { seeds.append(b) }
        phase = .joining(usable, attempt: 0)
        startLookup(key: me.id, purpose: .join, start: [first])
    }

    /// The node a join retry asks: the bootstraps in turn, then recent acquaintances.
    func retryJoin() {
        guard case .joining(let bootstraps, let attempt) = phase else { return }
        var choices = bootstraps
        for a in acquaintances.reversed() where !choices.contains(where: { $0.id == a.id }) { choices.append(a) }
        phase = .joining(bootstraps, attempt: attempt + 1)
        startLookup(key: me.id, purpose: .join, start: [choices[(attempt + 1) % choices.count]])
    }

    /// Leaves gracefully: tells the successor (which takes over this node's keys) and the
    /// predecessor (which links past this node), and stops.
    public func leave() {
        guard isActive else { phase = .left; return }
        if let s = successor, s.id != me.id {
            if let owned { emit(.handOff(owned, to: s)) }
            send(.leaving(predecessor: predecessor, successors: successors), to: s, purpose: .leaving)
            if let p = predecessor, p.id != me.id, p.id != s.id {
                send(.leaving(predecessor: predecessor, successors: successors), to: p, purpose: .leaving)
            }
        }
        phase = .left
        for (token, _) in lookups.sorted(by: { $0.key < $1.key }) { finishLookup(token, .failure(.notInRing)) }
        pending.removeAll()
    }

    // MARK: Input

    /// Handles one envelope the transport received from the peer whose id it authenticated.
    public func receive(_ envelope: ChordEnvelope, from authenticated: ChordID) {
        guard envelope.sender.id == authenticated else {
            return reject(.impersonation(claimed: envelope.sender.id, actual: authenticated))
        }
        if case .left = phase { return }
        switch envelope.payload {
        case .request(let request): handle(request, from: envelope.sender, requestID: envelope.requestID)
        case .response(let response): handle(response, from: envelope.sender, requestID: envelope.requestID)
        }
    }

    public func timerFired(_ timer: ChordTimer) {
        switch (timer, phase) {
        case (.requestTimeout(let id), _):
            guard let p = pending.removeValue(forKey: id) else { return }
            if p.attempt < configuration.requestRetries {
                statistics.retries += 1
                send(p.request, to: p.peer, purpose: p.purpose, attempt: p.attempt + 1)
            } else {
                statistics.timeouts += 1
                failed(p, reason: .timedOut)
            }
        case (.joinRetry, .joining):
            retryJoin()
        case (.stabilize, .active):
            departed = departed.compactMap { $0.rounds > 1 ? ($0.id, $0.rounds - 1) : nil }
            stabilize()
            roundsSinceConsistencyCheck += 1
            if configuration.consistencyCheckRounds > 0, roundsSinceConsistencyCheck >= configuration.consistencyCheckRounds {
                roundsSinceConsistencyCheck = 0
                checkConsistency()
            }
            schedule(.stabilize, every: configuration.stabilizeInterval)
        case (.fixFingers, .active):
            fixNextFinger()
            schedule(.fixFingers, every: configuration.fixFingersInterval)
        case (.checkPredecessor, .active):
            checkPredecessor()
            schedule(.checkPredecessor, every: configuration.checkPredecessorInterval)
        default:
            break
        }
    }

    func handle(_ request: ChordRequest, from peer: NodeRef, requestID: UInt64) {
        let answer: ChordResponse
        switch request {
        case .ping:
            answer = .ack
        case .findSuccessor(let key):
            guard isActive else { return respond(.refused("not in a ring"), to: peer, requestID: requestID) }
            answer = .step(successors: successors, closer: closestPreceding(key, limit: configuration.closerCandidates))
        case .neighbours:
            guard isActive else { return respond(.refused("not in a ring"), to: peer, requestID: requestID) }
            answer = .neighbours(predecessor: predecessor, successors: successors)
        case .notify:
            guard isActive else { return respond(.refused("not in a ring"), to: peer, requestID: requestID) }
            notified(by: peer)
            answer = .ack
        case .leaving(let pred, let succs):
            guard succs.count <= ChordConfiguration.maxListLength else {
                return reject(.oversizedList(from: peer.id, count: succs.count))
            }
            guard predecessor?.id == peer.id || successors.contains(where: { $0.id == peer.id }) else {
                return reject(.unexpectedLeave(from: peer.id))
            }
            peerLeft(peer, predecessor: pred, successors: succs)
            answer = .ack
        }
        respond(answer, to: peer, requestID: requestID)
    }

    func handle(_ response: ChordResponse, from peer: NodeRef, requestID: UInt64) {
        guard let p = pending[requestID], p.peer.id == peer.id else {
            return reject(.unsolicitedResponse(from: peer.id, requestID: requestID))
        }
        pending[requestID] = nil
        statistics.requestsAnswered += 1
        met(peer)
        if case .refused = response { return failed(p, reason: .refused) }
        switch response {
        case .step(let s, let c):
            if s.count > ChordConfiguration.maxListLength || c.count > ChordConfiguration.maxListLength {
                reject(.oversizedList(from: peer.id, count: max(s.count, c.count)))
                return failed(p, reason: .refused)
            }
        case .neighbours(_, let s):
            if s.count > ChordConfiguration.maxListLength {
                reject(.oversizedList(from: peer.id, count: s.count))
                return failed(p, reason: .refused)
            }
        default: break
        }
        switch (p.purpose, response) {
        case (.lookupStep(let token), .step(let succs, let closer)):
            lookupStepAnswered(token, by: peer, successors: succs, closer: closer)
        case (.lookupConfirm(let token), .neighbours(let pred, _)):
            lookupConfirmed(token, peer, predecessor: pred)
        case (.stabilize, .neighbours(let pred, let succs)):
            stabilized(successor: peer, predecessor: pred, successors: succs)
        case (.confirmPredecessor, .ack):
            predecessorConfirmed(peer)
        case (.notify, .ack), (.checkPredecessor, .ack), (.leaving, .ack):
            break
        default:
            reject(.unexpectedResponse(from: peer.id, requestID: requestID))
            failed(p, reason: .refused)
        }
    }

    enum FailureReason { case timedOut, refused }

    /// A request got no usable answer: a timeout means the peer is treated as failed.
    func failed(_ p: Pending, reason: FailureReason) {
        if reason == .timedOut { forget(p.peer) }
        switch p.purpose {
        case .lookupStep(let token), .lookupConfirm(let token):
            lookupPeerFailed(token, p.peer, timedOut: reason == .timedOut)
        case .stabilize:
            if reason == .timedOut { stabilize() }
        case .checkPredecessor:
            if reason == .timedOut, predecessor?.id == p.peer.id { predecessor = nil }
        case .notify, .leaving, .confirmPredecessor:
            break
        }
    }

    // MARK: Output

    func send(_ request: ChordRequest, to peer: NodeRef, purpose: Purpose, attempt: Int = 0) {
        let id = nextID
        nextID &+= 1
        pending[id] = Pending(peer: peer, purpose: purpose, request: request, attempt: attempt)
        statistics.requestsSent += 1
        effects.append(.send(ChordEnvelope(sender: me, requestID: id, payload: .request(request)), to: peer))
        effects.append(.schedule(.requestTimeout(id), afterMilliseconds: configuration.requestTimeout))
    }

    func respond(_ response: ChordResponse, to peer: NodeRef, requestID: UInt64) {
        effects.append(.send(ChordEnvelope(sender: me, requestID: requestID, payload: .response(response)), to: peer))
    }

    func emit(_ event: ChordEvent) { effects.append(.event(event)) }

    func reject(_ error: ChordInputError) {
        statistics.rejected += 1
        emit(.rejected(error))
    }

    func schedule(_ timer: ChordTimer, every period: Int64) {
        let j = configuration.jitter
        let factor = j > 0 ? Double.random(in: (1 - j)...(1 + j), using: &random) : 1
        effects.append(.schedule(timer, afterMilliseconds: max(1, Int64((Double(period) * factor).rounded()))))
    }

    func startTimers() {
        schedule(.stabilize, every: configuration.stabilizeInterval)
        schedule(.fixFingers, every: configuration.fixFingersInterval)
        schedule(.checkPredecessor, every: configuration.checkPredecessorInterval)
    }

    /// Records a new predecessor and reports how this node's key range changed.
    func setPredecessor(_ p: NodeRef?) {
        predecessor = p
        guard let p, p.id != me.id else { return }
        setOwned(RingRange(after: p.id, upTo: me.id))
    }

    func setOwned(_ new: RingRange) {
        defer { owned = new }
        guard let old = owned else { return emit(.rangeChanged(.grew(gained: new))) }
        guard old.lower != new.lower else { return }
        if new.lower.isBetween(old.lower, me.id) || old.lower == me.id {
            emit(.rangeChanged(.shrank(lost: RingRange(after: old.lower, upTo: new.lower), to: NodeRef(id: new.lower, address: predecessor?.address ?? ""))))
        } else {
            emit(.rangeChanged(.grew(gained: RingRange(after: new.lower, upTo: old.lower))))
        }
    }
}

extension ChordNode {
    /// The distinct fingers, in finger order (closest first).
    public var fingerTable: [NodeRef] {
        var out: [NodeRef] = []
        for case let f? in fingers where f.id != me.id && !out.contains(where: { $0.id == f.id }) { out.append(f) }
        return out
    }
}
