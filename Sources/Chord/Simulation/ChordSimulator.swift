import FlowchainCrypto

/// A deterministic discrete-event simulator for Chord: many `ChordNode`s on one virtual clock,
/// joined by an in-memory transport with per-message latency, loss, crashes, joins and leaves.
/// The same seed and the same calls give the same run, event for event.
public final class ChordSimulator {
    public struct Configuration: Sendable {
        public var chord = ChordConfiguration()
        public var latency = LatencyModel.uniform(5, 50)
        /// Probability that any one message is lost.
        public var loss = 0.0
        public var seed: UInt64 = 1
        public init() {}
    }

    /// How a simulated peer behaves: honest peers run `ChordNode`; the others exist to test how
    /// honest nodes cope with them.
    public enum Behaviour {
        case honest
        /// Receives everything, answers nothing.
        case silent
        /// Answers each request with whatever the closure returns (nil: no answer).
        case scripted((ChordRequest) -> ChordResponse?)
    }

    enum Event {
        case deliver(ChordEnvelope, to: Int, from: ChordID)
        case timer(ChordTimer, node: Int)
        case action(Int)
    }

    final class Peer {
        let node: ChordNode
        let link: SimulatedLink
        var alive = true
        var behaviour: Behaviour = .honest
        init(node: ChordNode, link: SimulatedLink) {
            self.node = node
            self.link = link
        }
    }

    /// The in-memory `ChordTransport`: one per node, so the simulator knows (authenticates) who
    /// sent each envelope. Delivery takes a latency drawn from the model, or the message is lost.
    final class SimulatedLink: ChordTransport {
        unowned let simulator: ChordSimulator
        let owner: ChordID
        init(simulator: ChordSimulator, owner: ChordID) {
            self.simulator = simulator
            self.owner = owner
        }
        func send(_ envelope: ChordEnvelope, to peer: NodeRef) { simulator.transmit(envelope, from: owner, to: peer.id) }
    }

    public let configuration: Configuration
    /// Probability that a message is lost, from now on (starts as `configuration.loss`).
    public var loss: Double
    public private(set) var now: Int64 = 0
    var peers: [Peer] = []
    var index: [ChordID: Int] = [:]
    var queue = EventQueue<Event>()
    var actions: [Int: () -> Void] = [:]
    var nextAction = 0
    var lookupCallbacks: [LookupKey: (Result<LookupAnswer, LookupError>) -> Void] = [:]
    var random: SplitMix64
    var liveSorted: [NodeRef]?
    /// Every application event, with the node that raised it. Set before running.
    public var onEvent: ((NodeRef, ChordEvent) -> Void)?
    public private(set) var messagesSent = 0
    public private(set) var messagesLost = 0
    public private(set) var eventsProcessed = 0

    struct LookupKey: Hashable {
        let node: Int
        let token: UInt64
    }

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        self.loss = configuration.loss
        self.random = SplitMix64(seed: configuration.seed)
    }

    // MARK: Membership

    /// A new node (not yet in any ring) with a fresh key pair's id: SHA-1 of 32 seeded bytes
    /// standing in for its public key.
    @discardableResult
    public func addNode(behaviour: Behaviour = .honest) -> NodeRef {
        var key = [UInt8](repeating: 0, count: 32)
        for i in stride(from: 0, to: 32, by: 8) {
            var w = random.next()
            for j in 0..<8 { key[i + j] = UInt8(truncatingIfNeeded: w); w >>= 8 }
        }
        let ref = NodeRef(publicKey: key)
        guard index[ref.id] == nil else { return addNode(behaviour: behaviour) }
        let peer = Peer(node: ChordNode(me: ref, configuration: configuration.chord, seed: random.next()),
                        link: SimulatedLink(simulator: self, owner: ref.id))
        peer.behaviour = behaviour
        index[ref.id] = peers.count
        peers.append(peer)
        liveSorted = nil
        return ref
    }

    /// Makes an existing node behave differently from now on (see `Behaviour`).
    public func setBehaviour(_ id: ChordID, _ behaviour: Behaviour) {
        guard let i = index[id] else { return }
        peers[i].behaviour = behaviour
    }

    public func node(_ id: ChordID) -> ChordNode? { index[id].map { peers[$0].node } }
    public func isAlive(_ id: ChordID) -> Bool { index[id].map { peers[$0].alive } ?? false }

    /// Every node that is alive and has not left, in ring order.
    public var liveNodes: [NodeRef] {
        if let liveSorted { return liveSorted }
        let s = peers.filter { $0.alive && !$0.node.hasLeft }.map(\.node.me).sorted { $0.id < $1.id }
        liveSorted = s
        return s
    }

    /// What a perfect oracle says owns `key`: the first live node at or after it.
    public func trueSuccessor(of key: ChordID) -> NodeRef? {
        let live = liveNodes
        guard !live.isEmpty else { return nil }
        var lo = 0, hi = live.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if live[mid].id < key { lo = mid + 1 } else { hi = mid }
        }
        return live[lo == live.count ? 0 : lo]
    }

    public func create(_ id: ChordID) { perform(id) { $0.create() } }
    public func join(_ id: ChordID, via bootstrap: ChordID) { join(id, via: [bootstrap]) }

    /// Joins `id` through any of `bootstraps` (tried in turn when one does not answer).
    public func join(_ id: ChordID, via bootstraps: [ChordID]) {
        let refs = bootstraps.compactMap { index[$0].map { peers[$0].node.me } }
        perform(id) { $0.join(via: refs) }
    }

    public func leave(_ id: ChordID) {
        perform(id) { $0.leave() }
        liveSorted = nil
    }

    /// Stops a node at once: it sends nothing more and everything sent to it is lost.
    public func crash(_ id: ChordID) {
        guard let i = index[id] else { return }
        peers[i].alive = false
        liveSorted = nil
    }

    /// A crashed node's process started again: the same id (its key), none of its state. Its old
    /// timers and the messages in flight to it are lost, as they are with a real restart.
    public func restart(_ id: ChordID) {
        guard let i = index[id] else { return }
        peers[i].alive = false
        let ref = peers[i].node.me
        let peer = Peer(node: ChordNode(me: ref, configuration: configuration.chord, seed: random.next()),
                        link: SimulatedLink(simulator: self, owner: ref.id))
        index[ref.id] = peers.count
        peers.append(peer)
        liveSorted = nil
    }

    /// Starts a lookup at node `from`; `completion` runs when it finishes.
    public func lookup(from: ChordID, key: ChordID, completion: @escaping (Result<LookupAnswer, LookupError>) -> Void) {
        guard let i = index[from], peers[i].alive else { return completion(.failure(.notInRing)) }
        var token: LookupToken?
        perform(from) { token = $0.lookup(key) }
        guard let token else { return }
        // A lookup can finish synchronously (its answer was local): the event is already drained.
        if let done = finishedSynchronously.removeValue(forKey: LookupKey(node: i, token: token.value)) {
            completion(done)
        } else {
            lookupCallbacks[LookupKey(node: i, token: token.value)] = completion
        }
    }

    var finishedSynchronously: [LookupKey: Result<LookupAnswer, LookupError>] = [:]

    /// Runs `body` at virtual time `at` (or now, if earlier).
    public func schedule(at time: Int64, _ body: @escaping () -> Void) {
        actions[nextAction] = body
        queue.push(.action(nextAction), at: max(time, now))
        nextAction += 1
    }

    /// Hands `envelope` to node `to` as if the transport had authenticated it as `authenticated`:
    /// how tests forge and mangle traffic.
    public func inject(_ envelope: ChordEnvelope, to: ChordID, authenticatedAs authenticated: ChordID) {
        perform(to) { $0.receive(envelope, from: authenticated) }
    }

    // MARK: Running

    /// Processes events up to and including virtual time `time`.
    public func run(until time: Int64) {
        while let t = queue.nextTime, t <= time { step() }
        now = max(now, time)
    }

    /// Runs until `condition` holds (checked after every event) or `deadline`; true if it held.
    @discardableResult
    public func run(until deadline: Int64, while keepGoing: () -> Bool) -> Bool {
        while keepGoing() {
            guard let t = queue.nextTime, t <= deadline else { now = max(now, deadline); return false }
            step()
        }
        return true
    }

    func step() {
        guard let e = queue.pop() else { return }
        now = e.time
        eventsProcessed += 1
        switch e.payload {
        case .action(let a):
            actions.removeValue(forKey: a)?()
        case .timer(let t, let i):
            guard peers[i].alive else { return }
            let n = peers[i].node
            perform(n.me.id) { $0.timerFired(t) }
        case .deliver(let env, let i, let from):
            let peer = peers[i]
            guard peer.alive else { return }
            switch peer.behaviour {
            case .honest:
                perform(peer.node.me.id) { $0.receive(env, from: from) }
            case .silent:
                break
            case .scripted(let script):
                guard case .request(let r) = env.payload, let answer = script(r) else { return }
                peer.link.send(ChordEnvelope(sender: peer.node.me, requestID: env.requestID, payload: .response(answer)),
                               to: NodeRef(id: from))
            }
        }
    }

    /// Applies `body` to a node and carries out the effects it produced.
    func perform(_ id: ChordID, _ body: (ChordNode) -> Void) {
        guard let i = index[id], peers[i].alive else { return }
        let node = peers[i].node
        body(node)
        for effect in node.takeEffects() {
            switch effect {
            case .send(let env, let to):
                peers[i].link.send(env, to: to)
            case .schedule(let timer, let ms):
                queue.push(.timer(timer, node: i), at: now + ms)
            case .event(let event):
                if case .lookupFinished(let token, let result) = event {
                    let key = LookupKey(node: i, token: token.value)
                    if let cb = lookupCallbacks.removeValue(forKey: key) { cb(result) } else { finishedSynchronously[key] = result }
                }
                if case .handOff = event { liveSorted = nil }
                onEvent?(node.me, event)
            }
        }
    }

    func transmit(_ env: ChordEnvelope, from: ChordID, to id: ChordID) {
        messagesSent += 1
        // A node that does not exist: the message goes nowhere (the sender's timeout covers it).
        guard let to = index[id] else { messagesLost += 1; return }
        if loss > 0, Double.random(in: 0..<1, using: &random) < loss {
            messagesLost += 1
            return
        }
        queue.push(.deliver(env, to: to, from: from), at: now + configuration.latency.sample(&random))
    }
}

extension ChordNode {
    var hasLeft: Bool { if case .left = phase { true } else { false } }
}
