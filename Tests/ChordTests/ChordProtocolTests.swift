import FlowchainCrypto
import Testing
@testable import Chord

/// The protocol on small rings in the simulator: joins, stabilization, lookups, leaves, crashes
/// and the key-range callbacks the network layer moves data by.
@Suite struct ChordProtocolTests {
    static func simulator(seed: UInt64 = 7, successors: Int = 4) -> ChordSimulator {
        var c = ChordSimulator.Configuration()
        c.seed = seed
        c.chord.successorListLength = successors
        return ChordSimulator(c)
    }

    /// Joins `count` nodes one after another through random members; returns them in join order.
    static func grow(_ sim: ChordSimulator, to count: Int) -> [NodeRef] {
        var rng = SplitMix64(seed: 99)
        let first = sim.addNode()
        sim.create(first.id)
        var members = [first]
        for _ in 1..<count {
            let n = sim.addNode()
            sim.join(n.id, via: members[Int.random(in: 0..<members.count, using: &rng)].id)
            members.append(n)
            sim.run(until: sim.now + 300)
        }
        return members
    }

    /// Runs lookups of `count` random keys from random live nodes; returns how many were right.
    static func correctLookups(_ sim: ChordSimulator, count: Int, seed: UInt64 = 5) -> (correct: Int, finished: Int) {
        var rng = SplitMix64(seed: seed)
        let live = sim.liveNodes
        var correct = 0, finished = 0
        for _ in 0..<count {
            let key = ChordSimulator.randomKey(&rng)
            let from = live[Int.random(in: 0..<live.count, using: &rng)]
            sim.lookup(from: from.id, key: key) { r in
                finished += 1
                if case .success(let a) = r, a.successor.id == sim.trueSuccessor(of: key)?.id { correct += 1 }
            }
        }
        sim.run(until: sim.now + 60_000) { finished < count }
        return (correct, finished)
    }

    @Test func aLoneNodeOwnsEveryKeyAndAnswersLocally() throws {
        let sim = Self.simulator()
        let a = sim.addNode()
        sim.create(a.id)
        var answer: LookupAnswer?
        sim.lookup(from: a.id, key: ChordID(12345)) { answer = try? $0.get() }
        #expect(answer?.successor == a)
        #expect(answer?.hops == 0)
        #expect(sim.node(a.id)?.owned?.contains(ChordID(0)) == true)
    }

    @Test func sequentialJoinsConvergeAndLookupsFindTheOwner() throws {
        let sim = Self.simulator()
        _ = Self.grow(sim, to: 24)
        sim.run(until: sim.now + 20_000)
        let wrong = sim.wrongPointers()
        #expect(wrong.successors == 0 && wrong.predecessors == 0, "\(wrong)")
        let r = Self.correctLookups(sim, count: 300)
        #expect(r.finished == 300)
        #expect(r.correct == 300)
        // Successor lists are full and in ring order.
        let live = sim.liveNodes
        for (k, ref) in live.enumerated() {
            let expected = (1...4).map { live[(k + $0) % live.count].id }
            #expect(sim.node(ref.id)?.successors.map(\.id) == expected)
        }
    }

    @Test func keyRangesTileTheRingAndMoveWithJoins() throws {
        let sim = Self.simulator()
        var changes: [(NodeRef, RangeChange)] = []
        sim.onEvent = { n, e in if case .rangeChanged(let c) = e { changes.append((n, c)) } }
        let members = Self.grow(sim, to: 12)
        sim.run(until: sim.now + 20_000)
        // Every key is owned by exactly its true successor.
        var rng = SplitMix64(seed: 3)
        for _ in 0..<500 {
            let key = ChordSimulator.randomKey(&rng)
            let owners = members.filter { sim.node($0.id)?.owned?.contains(key) == true }
            #expect(owners.map(\.id) == [sim.trueSuccessor(of: key)!.id])
        }
        // The events are a consistent stream: replaying each node's changes from nothing gives the
        // range it owns now, and every change is adjacent to the range before it.
        var model: [ChordID: RingRange] = [:]
        for (n, c) in changes {
            switch c {
            case .grew(let g):
                if let m = model[n.id] {
                    #expect(g.upper == m.lower, "\(n) grew by \(g), not adjacent to \(m)")
                    model[n.id] = RingRange(after: g.lower, upTo: n.id)
                } else {
                    #expect(g.upper == n.id)
                    model[n.id] = g
                }
            case .shrank(let lost, let to):
                let m = try #require(model[n.id])
                #expect(lost.lower == m.lower, "\(n) lost \(lost) but owned \(m)")
                #expect(lost.upper == to.id)
                model[n.id] = RingRange(after: lost.upper, upTo: n.id)
            }
        }
        for m in members { #expect(model[m.id] == sim.node(m.id)?.owned) }
        #expect(changes.contains { if case .shrank = $0.1 { true } else { false } })
    }

    @Test func gracefulLeaveHandsKeysToTheSuccessor() throws {
        let sim = Self.simulator()
        var handOffs: [(NodeRef, RingRange, NodeRef)] = []
        var grew: [(NodeRef, RingRange)] = []
        sim.onEvent = { n, e in
            if case .handOff(let r, let to) = e { handOffs.append((n, r, to)) }
            if case .rangeChanged(.grew(let r)) = e { grew.append((n, r)) }
        }
        _ = Self.grow(sim, to: 10)
        sim.run(until: sim.now + 20_000)
        let live = sim.liveNodes
        let leaver = live[3]
        let owned = try #require(sim.node(leaver.id)?.owned)
        grew.removeAll()
        sim.leave(leaver.id)
        sim.run(until: sim.now + 200)
        #expect(handOffs.count == 1)
        #expect(handOffs.first?.1 == owned)
        #expect(handOffs.first?.2.id == live[4].id)
        // The successor took the range over at once, before any stabilization round.
        #expect(grew.contains { $0.0.id == live[4].id && $0.1 == owned })
        #expect(sim.node(live[4].id)?.predecessor?.id == live[2].id)
        #expect(sim.node(live[2].id)?.successor?.id == live[4].id)
        sim.run(until: sim.now + 10_000)
        #expect(sim.wrongPointers() == (0, 0))
        #expect(Self.correctLookups(sim, count: 200).correct == 200)
    }

    @Test func crashedNodesAreRoutedAroundAndRepaired() throws {
        let sim = Self.simulator()
        _ = Self.grow(sim, to: 20)
        sim.run(until: sim.now + 20_000)
        let live = sim.liveNodes
        for k in [2, 3, 9] { sim.crash(live[k].id) }
        // Before any repair: lookups still find the live owner through successor lists.
        let before = Self.correctLookups(sim, count: 200)
        #expect(before.correct == 200)
        sim.run(until: sim.now + 20_000)
        #expect(sim.wrongPointers() == (0, 0))
        // The node after the crashed pair grew to cover their keys.
        let heir = try #require(sim.node(live[4].id))
        #expect(heir.predecessor?.id == live[1].id)
        #expect(heir.owned == RingRange(after: live[1].id, upTo: live[4].id))
    }

    /// A node that restarts with its id (its key) before the others notice it was gone: its
    /// successor still names it as predecessor, which must not make it its own successor.
    @Test func aNodeRestartedWithItsIdJoinsWithARealSuccessorNotItself() throws {
        let (sim, members, joinedWith) = Self.restartAndRejoin(ringOf: 12, restarting: 5)
        let x = members[5]
        let expected = try #require(sim.trueSuccessor(of: x.id &+ ChordID(1)))
        #expect(joinedWith.map(\.id) == [expected.id], "joined with \(joinedWith), the live successor is \(expected)")
        sim.run(until: sim.now + 30_000)
        #expect(sim.wrongPointers() == (0, 0))
        #expect(Self.correctLookups(sim, count: 100).correct == 100)
    }

    /// The same in a ring of two: the other node knows only the restarted node's earlier self,
    /// so its successor list names nobody else; it must still be found as the successor.
    @Test func aNodeRestartedWithItsIdRejoinsARingOfTwo() throws {
        let (sim, members, joinedWith) = Self.restartAndRejoin(ringOf: 2, restarting: 1)
        #expect(joinedWith.map(\.id) == [members[0].id], "joined with \(joinedWith)")
        sim.run(until: sim.now + 20_000)
        #expect(sim.wrongPointers() == (0, 0))
    }

    /// A settled ring of `size`; member `index` crashes, restarts with its id and joins through
    /// member 0; returns what it joined with (its first successor), after 5 s.
    static func restartAndRejoin(ringOf size: Int, restarting index: Int) -> (ChordSimulator, [NodeRef], [NodeRef]) {
        let sim = Self.simulator()
        let members = Self.grow(sim, to: size)
        sim.run(until: sim.now + 20_000)
        let x = members[index]
        let joined = JoinLog()
        sim.onEvent = { node, event in
            if node.id == x.id, case .joined(let s) = event { joined.list.append(s) }
        }
        sim.crash(x.id)
        sim.restart(x.id)
        sim.join(x.id, via: members[0].id)
        sim.run(until: sim.now + 5_000)
        return (sim, members, joined.list)
    }

    final class JoinLog { var list: [NodeRef] = [] }

    @Test func aSeedReplaysExactly() throws {
        func run() -> (Int, Int, [ChordID]) {
            var c = ChordSimulator.Configuration()
            c.seed = 42
            c.loss = 0.05
            c.latency = .exponential(minimum: 2, mean: 20)
            let sim = ChordSimulator(c)
            _ = Self.grow(sim, to: 16)
            sim.run(until: sim.now + 5_000)
            return (sim.messagesSent, sim.messagesLost, sim.liveNodes.compactMap { sim.node($0.id)?.successor?.id })
        }
        let a = run(), b = run()
        #expect(a.0 == b.0 && a.1 == b.1 && a.2 == b.2)
        #expect(a.1 > 0)
    }
}
