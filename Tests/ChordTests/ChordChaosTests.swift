import FlowchainCrypto
import FlowchainTesting
import Testing
@testable import Chord

/// Random joins, graceful leaves and crashes over a lossy network, then quiet: whatever the
/// order of events, the ring must heal completely.
@Suite struct ChordChaosTests {
    /// The live ring with each node's pointers, marking the wrong ones: the failure message.
    static func describe(_ sim: ChordSimulator) -> String {
        let live = sim.liveNodes
        return live.enumerated().map { k, r in
            let n = sim.node(r.id)!
            let s = live[(k + 1) % live.count], p = live[(k - 1 + live.count) % live.count]
            return "\(r) succ \(n.successors.map(\.description)) \(n.successor?.id == s.id ? "" : "WRONG (\(s))") "
                + "pred \(n.predecessor?.description ?? "nil") \(n.predecessor?.id == p.id ? "" : "WRONG (\(p))") active \(n.isActive)"
                + " pending \(n.pending.values.map { "\($0.peer):\($0.purpose)" }) \(n.statistics)"
        }.joined(separator: "\n")
    }

    /// What a churn run leaves: the simulator, quiet again, and what was done to it.
    struct Churned {
        let sim: ChordSimulator
        let joins: Int, leaves: Int, crashes: Int
        let bootstrapsOf: [ChordID: [ChordID]]
    }

    /// Random joins, leaves and crashes from `seed`, then quiet (seconds of computation: run on
    /// a thread of its own, see `offPool`).
    static func churn(seed: UInt64) -> Churned {
        var c = ChordSimulator.Configuration()
        c.seed = seed
        c.loss = 0.02
        c.latency = .exponential(minimum: 2, mean: 25)
        c.chord.successorListLength = 4
        let sim = ChordSimulator(c)
        var rng = SplitMix64(seed: seed &* 31)
        let first = sim.addNode()
        sim.create(first.id)
        for _ in 0..<15 {
            let n = sim.addNode()
            let live = sim.liveNodes.filter { sim.node($0.id)?.isActive == true }
            sim.join(n.id, via: live[Int.random(in: 0..<live.count, using: &rng)].id)
            sim.run(until: sim.now + 400)
        }
        sim.run(until: sim.now + 10_000)
        var joins = 0, leaves = 0, crashes = 0
        var bootstrapsOf: [ChordID: [ChordID]] = [:]
        var lastJoin: Int64 = 0
        sim.onEvent = { _, e in if case .joined = e { lastJoin = sim.now } }
        for _ in 0..<120 {
            let live = sim.liveNodes.filter { sim.node($0.id)?.isActive == true }
            switch Int.random(in: 0..<3, using: &rng) {
            case 0 where live.count > 0:
                // Two bootstraps, as a node's configuration would give: either may crash meanwhile.
                let n = sim.addNode()
                let a = Int.random(in: 0..<live.count, using: &rng)
                let b = (a + Int.random(in: 1..<max(2, live.count), using: &rng)) % live.count
                bootstrapsOf[n.id] = [live[a].id, live[b].id]
                sim.join(n.id, via: bootstrapsOf[n.id]!)
                joins += 1
            case 1 where live.count > 6:
                sim.leave(live[Int.random(in: 0..<live.count, using: &rng)].id)
                leaves += 1
            case 2 where live.count > 6:
                // Never more than the successor list can bridge: one crash at a time.
                sim.crash(live[Int.random(in: 0..<live.count, using: &rng)].id)
                crashes += 1
            default: break
            }
            sim.run(until: sim.now + Int64.random(in: 100...1_500, using: &rng))
        }
        // Quiet: stabilization, fix_fingers and check_predecessor repair everything. A join that
        // lost a bootstrap retries every 2 s and may land late: give the ring 30 s after the last.
        sim.run(until: sim.now + 60_000)
        if lastJoin + 30_000 > sim.now { sim.run(until: lastJoin + 30_000) }
        // At any instant a lost message can leave one pointer briefly wrong; with the network
        // quiet too, nothing may stay wrong.
        sim.loss = 0
        sim.run(until: sim.now + 10_000)
        return Churned(sim: sim, joins: joins, leaves: leaves, crashes: crashes, bootstrapsOf: bootstrapsOf)
    }

    @Test(arguments: Array(1...16) as [UInt64])
    func theRingHealsAfterRandomChurn(seed: UInt64) async throws {
        let run = try await offPool { Self.churn(seed: seed) }
        let (sim, joins, leaves, crashes, bootstrapsOf) = (run.sim, run.joins, run.leaves, run.crashes, run.bootstrapsOf)
        #expect(joins > 20 && leaves > 10 && crashes > 10, "\(joins) joins, \(leaves) leaves, \(crashes) crashes")
        // A node still joining must have lost every bootstrap it was given before any answered;
        // it keeps retrying (and saying so) but is not part of the ring: set it aside.
        for n in sim.liveNodes where sim.node(n.id)?.isActive != true {
            let boots = try #require(bootstrapsOf[n.id])
            #expect(boots.allSatisfy { !sim.isAlive($0) || sim.node($0)?.isActive != true }, "\(n) never joined though a bootstrap lives")
            sim.crash(n.id)
        }
        let live = sim.liveNodes
        let members = live
        #expect(sim.wrongPointers() == (0, 0), "seed \(seed):\n\(Self.describe(sim))")
        var k = SplitMix64(seed: seed)
        for _ in 0..<200 {
            let key = ChordSimulator.randomKey(&k)
            let owners = members.filter { sim.node($0.id)?.owned?.contains(key) == true }
            #expect(owners.map(\.id) == [sim.trueSuccessor(of: key)!.id], "seed \(seed): key \(key)")
        }
        let stats = sim.runLookups(count: 300, seed: seed)
        #expect(stats.correct == 300, "seed \(seed): \(stats.correct)/300")
    }
}
