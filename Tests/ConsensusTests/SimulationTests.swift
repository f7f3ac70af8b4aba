import Consensus
import Foundation
import Testing

@Suite("Proof-of-Stake simulation")
struct SimulationTests {
    @Test func aThousandBlocksQuick() {
        var c = PoSSimulation.Configuration()
        c.blocks = 1000
        c.seed = 7
        let r = PoSSimulation(c).run()
        print("blocks \(r.blocks) mean \(r.meanInterval) minted \(r.minted) chi \(r.chiSquare) p \(r.pValue) agreed \(r.agreed) reorgs \(r.reorganizations) wall \(r.wallSeconds)")
        #expect(r.blocks >= 1000)
    }
}
