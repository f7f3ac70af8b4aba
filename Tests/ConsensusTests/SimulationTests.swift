import Consensus
import FlowchainTesting
import Foundation
import Testing

/// The PoS simulation: stake shares, block interval, partitions (deterministic for a seed).
@Suite("Proof-of-Stake in simulation", .serialized)
struct SimulationTests {
    @Test(.timeLimit(.minutes(10)))
    func tenStakersMintInProportionToStakeOverTenThousandBlocks() async throws {
        var c = PoSSimulation.Configuration()
        c.stakes = Array(1...10)
        c.blocks = 10_000
        c.seed = 2026
        // Tens of seconds of computation in a debug build: on a thread of its own (`offPool`).
        let r = try await offPool { [c] in PoSSimulation(c).run() }
        #expect(r.blocks >= 10_000)
        #expect(r.pValue > 0.001, "chi-square \(r.chiSquare), p = \(r.pValue), minted \(r.minted)")
        #expect(abs(r.meanInterval - 10) / 10 < 0.05, "mean interval \(r.meanInterval) s")
        #expect(r.agreed)
    }

    @Test(.timeLimit(.minutes(10)))
    func aHealedPartitionConvergesAndKeepsEarlierAnchors() {
        var c = PoSSimulation.Configuration()
        c.stakes = [5, 5, 5, 5, 5, 5]
        c.partition = 100..<600
        c.blocks = 700
        c.loss = 0.05
        c.seed = 99
        let sim = PoSSimulation(c)
        let r = sim.run()
        #expect(r.agreed, "all nodes on one tip")
        let healed = sim.healedAt ?? -1, agreedAt = sim.agreedAfterHealAt ?? Int.max
        // Sync here is one block per round trip (the simulator has no batch sync), so a 500-block
        // partition takes a few dozen blocks to heal.
        #expect(agreedAt - healed <= 100, "agreement \(agreedAt - healed) blocks after the heal")
        #expect(r.maxReorgDepth > 10, "the losing half really reorganised (depth \(r.maxReorgDepth))")
        let before = sim.committedAtPartition ?? []
        #expect(before.contains { $0 != nil }, "heads were committed before the partition")
        for chain in sim.chains {
            for (i, h) in before.enumerated() {
                guard let h else { continue }
                #expect((sim.committedSegmentHeight(of: i, on: chain) ?? 0) >= h, "node \(i)'s segment \(h) lost its anchor")
            }
        }
    }

    @Test func theSameSeedGivesTheSameRun() async throws {
        var c = PoSSimulation.Configuration()
        c.blocks = 200
        c.seed = 5
        let (a, b) = try await offPool { [c] in (PoSSimulation(c).run(), PoSSimulation(c).run()) }
        #expect(a.minted == b.minted && a.seconds == b.seconds && a.reorganizations == b.reorganizations)
    }
}
