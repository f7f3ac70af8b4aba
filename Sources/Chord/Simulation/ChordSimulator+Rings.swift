extension ChordNode {
    /// Takes pointers from an oracle, as if the ring had fully stabilised. Simulations use it to
    /// build a large ring in one step; `maintain` starts the periodic repairs.
    func adopt(predecessor p: NodeRef?, successors s: [NodeRef], fingers f: [NodeRef?], maintain: Bool) {
        predecessor = p
        successors = s.isEmpty ? [me] : s
        fingers = f
        phase = .active
        owned = RingRange(after: p?.id ?? me.id, upTo: me.id)
        if maintain { startTimers() }
    }

    /// Starts stabilize / fix_fingers / check_predecessor on a node built with maintenance off.
    func startMaintenance() { if isActive { startTimers() } }
}

extension ChordSimulator {
    /// Adds `count` honest nodes and wires them as a fully stabilised ring: correct predecessor,
    /// successor list and every finger (the paper's starting point for its static experiments).
    @discardableResult
    public func buildStableRing(count: Int, maintain: Bool) -> [NodeRef] {
        for _ in 0..<count { addNode() }
        let ring = liveNodes
        let r = min(configuration.chord.successorListLength, max(1, ring.count - 1))
        func successorIndex(of key: ChordID) -> Int {
            var lo = 0, hi = ring.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if ring[mid].id < key { lo = mid + 1 } else { hi = mid }
            }
            return lo == ring.count ? 0 : lo
        }
        for (k, ref) in ring.enumerated() {
            let succ = ring.count == 1 ? [ref] : (1...r).map { ring[(k + $0) % ring.count] }
            let pred = ring.count == 1 ? nil : ring[(k - 1 + ring.count) % ring.count]
            var fingers = [NodeRef?](repeating: nil, count: ChordID.bits)
            var i = 0
            while i < ChordID.bits {
                let s = ring[successorIndex(of: ref.id.fingerStart(i))]
                fingers[i] = s
                i += 1
                while i < ChordID.bits, ref.id.fingerStart(i).isBetween(ref.id, upTo: s.id) {
                    fingers[i] = s
                    i += 1
                }
            }
            perform(ref.id) { $0.adopt(predecessor: pred, successors: succ, fingers: fingers, maintain: maintain) }
        }
        return ring
    }

    /// Starts the periodic repairs on every live node (after a ring was built without them).
    public func startMaintenance() {
        for p in peers where p.alive { perform(p.node.me.id) { $0.startMaintenance() } }
    }

    /// Live nodes whose successor or predecessor pointer is not the true one.
    public func wrongPointers() -> (successors: Int, predecessors: Int) {
        let live = liveNodes
        guard live.count > 1 else { return (0, 0) }
        var s = 0, p = 0
        for (k, ref) in live.enumerated() {
            guard let n = node(ref.id) else { continue }
            if n.successor?.id != live[(k + 1) % live.count].id { s += 1 }
            if n.predecessor?.id != live[(k - 1 + live.count) % live.count].id { p += 1 }
        }
        return (s, p)
    }
}
