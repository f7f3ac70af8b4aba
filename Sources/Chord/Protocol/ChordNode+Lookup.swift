/// Iterative lookups (ToN 2003 §IV-E, with the successor-list fallback of §V). The asker keeps
/// the routing state: it asks the known node closest before the key, learns that node's fingers
/// and successor list, and repeats; a peer that does not answer is skipped for the next-best
/// one. Every candidate must lie strictly between the node that named it and the key, and no
/// node is asked twice, so a lookup always ends: with the key's live successor or an error.
extension ChordNode {
    enum LookupPurpose { case user, join, finger(Int) }

    struct Lookup {
        let key: ChordID
        let purpose: LookupPurpose
        /// Candidates before the key, not yet asked.
        var candidates: [NodeRef] = []
        /// The responder closest before the key so far, with its successor list.
        var best: (node: NodeRef, successors: [NodeRef])?
        var asked = Set<ChordID>()
        var dead = Set<ChordID>()
        var steps = 0, hops = 0, timeouts = 0, messages = 0
    }

    /// Starts a lookup of the live node that owns `key`; its result arrives as
    /// `.lookupFinished(token, …)`.
    @discardableResult
    public func lookup(_ key: ChordID) -> LookupToken {
        let token = nextID
        nextID &+= 1
        guard isActive else {
            emit(.lookupFinished(LookupToken(value: token), .failure(.notInRing)))
            return LookupToken(value: token)
        }
        begin(token, key: key, purpose: .user, start: [])
        return LookupToken(value: token)
    }

    func startLookup(key: ChordID, purpose: LookupPurpose, start: [NodeRef]) {
        let token = nextID
        nextID &+= 1
        begin(token, key: key, purpose: purpose, start: start)
    }

    private func begin(_ token: UInt64, key: ChordID, purpose: LookupPurpose, start: [NodeRef]) {
        var l = Lookup(key: key, purpose: purpose)
        l.candidates = start.filter { $0.id != me.id }
        lookups[token] = l
        if isActive { answerLocally(token) } else { advance(token) }
    }

    /// This node is a responder too: its own tables are the first step, at no cost.
    private func answerLocally(_ token: UInt64) {
        guard var l = lookups[token] else { return }
        l.asked.insert(me.id)
        lookups[token] = l
        absorb(token, responder: me, successors: successors, closer: closestPreceding(l.key, limit: configuration.closerCandidates))
        advance(token)
    }

    func lookupStepAnswered(_ token: UInt64, by peer: NodeRef, successors theirs: [NodeRef], closer: [NodeRef]) {
        guard var l = lookups[token] else { return }
        l.hops += 1
        lookups[token] = l
        absorb(token, responder: peer, successors: theirs, closer: closer)
        advance(token)
    }

    func lookupConfirmed(_ token: UInt64, _ peer: NodeRef) {
        guard let l = lookups[token] else { return }
        finishLookup(token, .success(answer(l, peer)))
    }

    func lookupPeerFailed(_ token: UInt64, _ peer: NodeRef, timedOut: Bool) {
        guard var l = lookups[token] else { return }
        l.dead.insert(peer.id)
        if timedOut { l.timeouts += 1 }
        lookups[token] = l
        advance(token)
    }

    /// Takes in one responder's view. Its candidates count only if they lie strictly between it
    /// and the key: anything else is no progress and would let a lookup go round in circles.
    private func absorb(_ token: UInt64, responder: NodeRef, successors theirs: [NodeRef], closer: [NodeRef]) {
        guard var l = lookups[token] else { return }
        defer { lookups[token] = l }
        let key = l.key
        let joining: Bool = if case .join = l.purpose { true } else { false }
        var list = theirs.filter { !(joining && $0.id == me.id) }
        if list.count > ChordConfiguration.maxListLength { list = Array(list.prefix(ChordConfiguration.maxListLength)) }
        if l.best == nil || responder.id.isBetween(l.best!.node.id, key) || responder.id == key {
            l.best = (responder, list)
        }
        for n in closer + list where n.id.isBetween(responder.id, key) {
            guard n.id != me.id, !l.asked.contains(n.id), !l.dead.contains(n.id),
                  !l.candidates.contains(where: { $0.id == n.id }) else { continue }
            l.candidates.append(n)
        }
    }

    /// Sends the next query, confirms the answer, or ends the lookup.
    func advance(_ token: UInt64) {
        guard var l = lookups[token] else { return }
        let key = l.key
        // 1. The unasked candidate closest before the key (and closer than the best responder).
        let usable = l.candidates.filter { c in
            !l.asked.contains(c.id) && !l.dead.contains(c.id) && (l.best.map { c.id.isBetween($0.node.id, key) } ?? true)
        }
        if let next = usable.min(by: { $0.id.distance(to: key) < $1.id.distance(to: key) }) {
            guard l.steps < configuration.maxLookupSteps else {
                return finishLookup(token, .failure(.tooManySteps(key: key, steps: l.steps)))
            }
            l.candidates.removeAll { $0.id == next.id }
            l.asked.insert(next.id)
            l.steps += 1
            l.messages += 1
            lookups[token] = l
            return send(.findSuccessor(key: key), to: next, purpose: .lookupStep(token))
        }
        // 2. Nothing closer: the key's successor is the first live entry after the key in the best
        //    responder's successor list.
        guard let best = l.best else {
            return finishLookup(token, .failure(.noRoute(key: key, tried: l.dead.count)))
        }
        let owners: [NodeRef]
        if best.node.id == key {
            owners = [best.node]
        } else {
            owners = best.successors.filter { key.isBetween(best.node.id, upTo: $0.id) }
        }
        for o in owners where !l.dead.contains(o.id) {
            if o.id == me.id || l.asked.contains(o.id) || !configuration.confirmLookups {
                return finishLookup(token, .success(answer(l, o)))
            }
            l.asked.insert(o.id)
            l.messages += 1
            lookups[token] = l
            return send(.ping, to: o, purpose: .lookupConfirm(token))
        }
        finishLookup(token, .failure(.noRoute(key: key, tried: l.dead.count)))
    }

    private func answer(_ l: Lookup, _ s: NodeRef) -> LookupAnswer {
        LookupAnswer(key: l.key, successor: s, hops: l.hops, timeouts: l.timeouts, messages: l.messages)
    }

    func finishLookup(_ token: UInt64, _ result: Result<LookupAnswer, LookupError>) {
        guard let l = lookups.removeValue(forKey: token) else { return }
        switch l.purpose {
        case .user:
            emit(.lookupFinished(LookupToken(value: token), result))
        case .finger(let i):
            switch result {
            case .success(let a): fingerFound(i, a.successor)
            case .failure: nextFinger = (i + 1) % ChordID.bits
            }
        case .join:
            guard case .joining = phase else { return }
            switch result {
            case .success(let a):
                successors = [a.successor]
                phase = .active
                emit(.joined(successor: a.successor))
                startTimers()
                stabilize()
            case .failure(let e):
                emit(.joinFailed(e))
                effects.append(.schedule(.joinRetry, afterMilliseconds: configuration.joinRetryDelay))
            }
        }
    }
}
