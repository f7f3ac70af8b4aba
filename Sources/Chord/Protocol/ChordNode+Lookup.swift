/// Iterative lookups (ToN 2003 §IV-E, with the successor-list fallback of §V). The asker keeps
/// the routing state: it asks the known node closest before the key, learns that node's fingers
/// and successor list, and repeats; a peer that does not answer is skipped for the next-best
/// one. Every candidate must lie strictly between the node that named it and the key, and no
/// node is asked twice, so a lookup always ends: with the key's live successor or an error.
extension ChordNode {
    enum LookupPurpose { case user, join, rejoin, finger(Int) }

    /// One lookup in progress. A class so the steps update it in place. Its lists stay short
    /// (tens of entries), so they are arrays searched linearly.
    final class Lookup {
        let key: ChordID
        let purpose: LookupPurpose
        /// Candidates before the key, not yet asked.
        var candidates: [NodeRef] = []
        /// The responder closest before the key so far.
        var best: NodeRef?
        var asked: [ChordID] = []
        var dead: [ChordID] = []
        /// Nodes that said the key is not theirs, with the predecessor they named instead.
        var denied: [(node: ChordID, named: ChordID)] = []
        /// Possible owners: nodes some responder listed after the key (from its successor list)
        /// and predecessors named by nodes that denied owning it.
        var owners: [NodeRef] = []
        var steps = 0, hops = 0, timeouts = 0, messages = 0

        init(key: ChordID, purpose: LookupPurpose) {
            self.key = key
            self.purpose = purpose
        }
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
        let l = Lookup(key: key, purpose: purpose)
        l.candidates = start.filter { $0.id != me.id }
        // A node restarting with its id may still be named by others (as the predecessor of its
        // successor, in successor lists): that earlier self is gone, and it cannot be its own
        // successor while it joins.
        if case .join = purpose { l.dead.append(me.id) }
        lookups[token] = l
        switch purpose {
        case .join, .rejoin: advance(token)  // this node's own tables are what is in doubt
        case .user, .finger: answerLocally(token)
        }
    }

    /// This node is a responder too: its own tables are the first step, at no cost.
    private func answerLocally(_ token: UInt64) {
        guard let l = lookups[token] else { return }
        l.asked.append(me.id)
        absorb(token, responder: me, successors: successors, closer: closestPreceding(l.key, limit: configuration.closerCandidates))
        advance(token)
    }

    func lookupStepAnswered(_ token: UInt64, by peer: NodeRef, successors theirs: [NodeRef], closer: [NodeRef]) {
        guard let l = lookups[token] else { return }
        l.hops += 1
        absorb(token, responder: peer, successors: theirs, closer: closer)
        advance(token)
    }

    /// A possible owner told us its predecessor: it owns the key if the key lies in
    /// (predecessor, owner], or if the predecessor it names is known to have failed (it has
    /// not noticed yet). Otherwise the named predecessor is the next place to look.
    func lookupConfirmed(_ token: UInt64, _ owner: NodeRef, predecessor: NodeRef?) {
        guard let l = lookups[token] else { return }
        guard let p = predecessor, !owns(l, owner, predecessor: p) else { return finishLookup(token, .success(answer(l, owner))) }
        denied(l, owner, predecessor: p)
        advance(token)
    }

    private func owns(_ l: Lookup, _ o: NodeRef, predecessor p: NodeRef?) -> Bool {
        guard let p, p.id != o.id else { return true }
        return l.key.isBetween(p.id, upTo: o.id) || l.dead.contains(p.id)
    }

    private func denied(_ l: Lookup, _ o: NodeRef, predecessor p: NodeRef) {
        l.denied.append((o.id, p.id))
        guard let best = l.best, !l.asked.contains(p.id), !l.dead.contains(p.id) else { return }
        if p.id.isBetween(best.id, l.key) {
            if !l.candidates.contains(where: { $0.id == p.id }) { l.candidates.append(p) }
        } else if l.key.isBetween(best.id, upTo: p.id), !l.owners.contains(where: { $0.id == p.id }) {
            l.owners.append(p)
        }
    }

    func lookupPeerFailed(_ token: UInt64, _ peer: NodeRef, timedOut: Bool) {
        guard let l = lookups[token] else { return }
        l.dead.append(peer.id)
        if timedOut { l.timeouts += 1 }
        advance(token)
    }

    /// Takes in one responder's view. Its candidates count only if they lie strictly between it
    /// and the key: anything else is no progress and would let a lookup go round in circles.
    private func absorb(_ token: UInt64, responder: NodeRef, successors theirs: [NodeRef], closer: [NodeRef]) {
        guard let l = lookups[token] else { return }
        let key = l.key
        let joining: Bool = switch l.purpose { case .join, .rejoin: true; default: false }
        var list = theirs.filter { !(joining && $0.id == me.id) }
        if list.count > ChordConfiguration.maxListLength { list = Array(list.prefix(ChordConfiguration.maxListLength)) }
        if responder.id == key || (l.best.map { responder.id.isBetween($0.id, key) } ?? true) {
            l.best = responder
        }
        for n in list where key.isBetween(responder.id, upTo: n.id) && !l.owners.contains(where: { $0.id == n.id }) {
            l.owners.append(n)
        }
        // A joiner whose earlier self (same id) was all the responder knew after it: without that
        // self the responder's next node is the responder itself, which may own the key.
        if joining, list.isEmpty, theirs.contains(where: { $0.id == me.id }), !l.owners.contains(where: { $0.id == responder.id }) {
            l.owners.append(responder)
        }
        for n in closer + list where n.id.isBetween(responder.id, key) {
            guard n.id != me.id, !l.asked.contains(n.id), !l.dead.contains(n.id),
                  !l.candidates.contains(where: { $0.id == n.id }) else { continue }
            l.candidates.append(n)
        }
    }

    /// Sends the next query, confirms the answer, or ends the lookup.
    func advance(_ token: UInt64) {
        guard let l = lookups[token] else { return }
        let key = l.key
        // 1. The unasked candidate closest before the key (and closer than the best responder).
        let usable = l.candidates.filter { c in
            !l.asked.contains(c.id) && !l.dead.contains(c.id) && (l.best.map { c.id.isBetween($0.id, key) } ?? true)
        }
        if let next = usable.min(by: { $0.id.distance(to: key) < $1.id.distance(to: key) }) {
            guard l.steps < configuration.maxLookupSteps else {
                return finishLookup(token, .failure(.tooManySteps(key: key, steps: l.steps)))
            }
            l.candidates.removeAll { $0.id == next.id }
            l.asked.append(next.id)
            l.steps += 1
            l.messages += 1
            return send(.findSuccessor(key: key), to: next, purpose: .lookupStep(token))
        }
        // 2. Nothing closer: the key's owner is the first live node after the key that any
        //    responder listed, confirmed by asking it for its predecessor.
        guard let best = l.best else {
            return finishLookup(token, .failure(.noRoute(key: key, tried: l.dead.filter { $0 != me.id }.count)))
        }
        var owners = best.id == key ? [best] : []
        for o in l.owners where key.isBetween(best.id, upTo: o.id) && !owners.contains(where: { $0.id == o.id }) { owners.append(o) }
        owners.sort { best.id.distance(to: $0.id) < best.id.distance(to: $1.id) }
        for o in owners where !l.dead.contains(o.id) {
            if let d = l.denied.first(where: { $0.node == o.id }) {
                if l.dead.contains(d.named) { return finishLookup(token, .success(answer(l, o))) }
                continue
            }
            if o.id == me.id {
                guard let p = predecessor, !owns(l, me, predecessor: p) else { return finishLookup(token, .success(answer(l, me))) }
                denied(l, me, predecessor: p)
                return advance(token)
            }
            guard configuration.confirmLookups else { return finishLookup(token, .success(answer(l, o))) }
            guard l.steps < configuration.maxLookupSteps else {
                return finishLookup(token, .failure(.tooManySteps(key: key, steps: l.steps)))
            }
            l.asked.append(o.id)
            l.steps += 1
            l.messages += 1
            return send(.neighbours, to: o, purpose: .lookupConfirm(token))
        }
        finishLookup(token, .failure(.noRoute(key: key, tried: l.dead.filter { $0 != me.id }.count)))
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
        case .rejoin:
            if case .success(let a) = result { consistencyChecked(a.successor) }
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
