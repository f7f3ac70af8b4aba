/// Stabilize, notify, fix_fingers, check_predecessor and leave handling: the periodic repairs
/// that keep successor and predecessor pointers right as nodes come and go.
extension ChordNode {
    /// Asks the successor for its predecessor and successor list (locally when alone).
    func stabilize() {
        guard isActive else { return }
        if isIsolated, !acquaintances.isEmpty || !seeds.isEmpty { return checkConsistency() }
        guard let s = successor, s.id != me.id else {
            // Alone, or the successor list ran dry: a known predecessor becomes the successor.
            if let p = predecessor, p.id != me.id {
                successors = [p]
                send(.notify, to: p, purpose: .notify)
            } else if successors.isEmpty {
                successors = [me]
            }
            return
        }
        if pending.values.contains(where: { if case .stabilize = $0.purpose { true } else { false } }) { return }
        send(.neighbours, to: s, purpose: .stabilize)
    }

    func stabilized(successor s: NodeRef, predecessor x: NodeRef?, successors theirs: [NodeRef]) {
        guard isActive, successors.first?.id == s.id else { return }
        var list = [s]
        if let x, x.id != me.id, x.id.isBetween(me.id, s.id) { list.insert(x, at: 0) }
        list += theirs
        let ordered = ringOrdered(list)
        successors = ordered.isEmpty ? fallbackSuccessor() : ordered
        if let first = successor, first.id != me.id { send(.notify, to: first, purpose: .notify) }
    }

    /// Deduplicates a successor list, cuts it where it wraps back to this node and caps its length.
    func ringOrdered(_ list: [NodeRef]) -> [NodeRef] {
        var out: [NodeRef] = []
        var seen = Set<ChordID>()
        var last = me.id
        for n in list {
            if n.id == me.id { break }
            if hasDeparted(n.id) { continue }
            // Entries must go round the ring in order; a peer's list that goes backwards is cut.
            if !out.isEmpty, !n.id.isBetween(last, me.id) { break }
            guard seen.insert(n.id).inserted else { continue }
            out.append(n)
            last = n.id
            if out.count == configuration.successorListLength { break }
        }
        return out
    }

    /// Any authenticated node may say it is our predecessor; it becomes one (and the keys
    /// between it and us its keys) only after it answers a ping of ours, so a node that notifies
    /// and falls silent, or a notice replayed from a node long gone, moves no keys.
    func notified(by peer: NodeRef) {
        guard peer.id != me.id, !hasDeparted(peer.id) else { return }
        // A lone node learns its first successor this way.
        if successor?.id == me.id { successors = [peer] }
        guard predecessor.map({ peer.id.isBetween($0.id, me.id) }) ?? true else { return }
        if pending.values.contains(where: { if case .confirmPredecessor = $0.purpose { $0.peer.id == peer.id } else { false } }) { return }
        send(.ping, to: peer, purpose: .confirmPredecessor)
    }

    func predecessorConfirmed(_ peer: NodeRef) {
        guard isActive, !hasDeparted(peer.id), predecessor.map({ peer.id.isBetween($0.id, me.id) }) ?? true else { return }
        setPredecessor(peer)
    }

    func checkPredecessor() {
        guard let p = predecessor, p.id != me.id else { return }
        if pending.values.contains(where: { if case .checkPredecessor = $0.purpose { true } else { false } }) { return }
        send(.ping, to: p, purpose: .checkPredecessor)
    }

    /// Refreshes the next finger by a lookup of its start.
    func fixNextFinger() {
        guard isActive else { return }
        if lookups.values.contains(where: { if case .finger = $0.purpose { true } else { false } }) { return }
        startLookup(key: me.id.fingerStart(nextFinger), purpose: .finger(nextFinger), start: [])
    }

    /// Finger i is `s`; so is every later finger whose start lies in (me, s]. Moves on to the first
    /// finger not covered, so a refresh round costs one lookup per distinct finger.
    func fingerFound(_ i: Int, _ s: NodeRef) {
        var j = i
        fingers[j] = s
        j += 1
        while j < ChordID.bits, me.id.fingerStart(j).isBetween(me.id, upTo: s.id) {
            fingers[j] = s
            j += 1
        }
        nextFinger = j == ChordID.bits ? 0 : j
    }

    /// The known nodes strictly between this node and `key`, closest to the key first.
    func closestPreceding(_ key: ChordID, limit: Int) -> [NodeRef] {
        var out: [NodeRef] = []
        out.reserveCapacity(limit * 2 + successors.count)
        func consider(_ n: NodeRef) {
            guard n.id.isBetween(me.id, key), !out.contains(where: { $0.id == n.id }) else { return }
            out.append(n)
        }
        var previous: ChordID?
        for i in stride(from: ChordID.bits - 1, through: 0, by: -1) {
            guard let f = fingers[i], f.id != previous else { continue }
            previous = f.id
            consider(f)
            if out.count >= limit * 2 { break }
        }
        for s in successors { consider(s) }
        out.sort { key.distance(to: $0.id) > key.distance(to: $1.id) }
        if out.count > limit { out.removeLast(out.count - limit) }
        return out
    }

    /// Drops a peer that failed to answer from every table.
    func forget(_ peer: NodeRef) {
        guard peer.id != me.id else { return }
        for i in fingers.indices where fingers[i]?.id == peer.id { fingers[i] = nil }
        acquaintances.removeAll { $0.id == peer.id }
        if successors.contains(where: { $0.id == peer.id }) {
            successors.removeAll { $0.id == peer.id }
            if successors.isEmpty { successors = fallbackSuccessor() }
        }
    }

    /// When every successor failed: the closest live finger, else the predecessor, else itself
    /// (then `stabilize` tries to rejoin through a node it knew).
    func fallbackSuccessor() -> [NodeRef] {
        for case let f? in fingers where f.id != me.id && !hasDeparted(f.id) { return [f] }
        if let p = predecessor, p.id != me.id, !hasDeparted(p.id) { return [p] }
        return [me]
    }

    func hasDeparted(_ id: ChordID) -> Bool { departed.contains { $0.id == id } }

    /// Remembers a peer that just answered: recent ones, and the first few ever met (with the
    /// bootstraps, the seeds) are where a node checks that it is on the main ring.
    func met(_ peer: NodeRef) {
        guard peer.id != me.id else { return }
        if seeds.count < 8, !seeds.contains(where: { $0.id == peer.id }) { seeds.append(peer) }
        if let i = acquaintances.firstIndex(where: { $0.id == peer.id }) { acquaintances.remove(at: i) }
        acquaintances.append(peer)
        if acquaintances.count > 8 { acquaintances.removeFirst() }
    }

    var isIsolated: Bool { successor?.id == me.id && predecessor == nil }

    /// Looks this node's own id up through a node it met before, bypassing its own tables. If
    /// the answer lies between it and its successor, the ring has a node it does not know: a
    /// node left alone after its neighbours failed rejoins this way, and two rings that split
    /// apart (under loss and churn) find each other again. Runs every round while isolated,
    /// else every `consistencyCheckRounds` rounds; the peers asked rotate.
    func checkConsistency() {
        guard isActive else { return }
        if lookups.values.contains(where: { if case .rejoin = $0.purpose { true } else { false } }) { return }
        var choices: [NodeRef] = []
        for n in acquaintances.reversed() + seeds
        where n.id != me.id && !hasDeparted(n.id) && !successors.contains(where: { $0.id == n.id }) && !choices.contains(where: { $0.id == n.id }) {
            choices.append(n)
        }
        guard !choices.isEmpty else { return }
        let via = choices[consistencyCursor % choices.count]
        consistencyCursor &+= 1
        startLookup(key: me.id, purpose: .rejoin, start: [via])
    }

    /// The answer of a consistency check: adopt a successor this node did not know.
    func consistencyChecked(_ found: NodeRef) {
        guard isActive, found.id != me.id, let s = successor else { return }
        let isolated = isIsolated
        guard s.id == me.id || found.id.isBetween(me.id, s.id) else { return }
        let ordered = ringOrdered([found] + successors)
        successors = ordered.isEmpty ? [found] : ordered
        if isolated { emit(.joined(successor: found)) }
        stabilize()
    }

    /// A neighbour left gracefully: link past it.
    func peerLeft(_ peer: NodeRef, predecessor theirs: NodeRef?, successors theirList: [NodeRef]) {
        departed.append((peer.id, 3))
        if departed.count > 32 { departed.removeFirst() }
        for i in fingers.indices where fingers[i]?.id == peer.id { fingers[i] = nil }
        if predecessor?.id == peer.id {
            if let theirs, theirs.id != me.id {
                setPredecessor(theirs)
            } else {
                // It was our only other node: we own the whole ring again.
                predecessor = nil
                setOwned(RingRange(after: me.id, upTo: me.id))
            }
        }
        if let i = successors.firstIndex(where: { $0.id == peer.id }) {
            let ordered = ringOrdered(Array(successors[..<i]) + theirList + Array(successors[(i + 1)...]))
            successors = ordered.isEmpty ? fallbackSuccessor() : ordered
        }
    }
}
