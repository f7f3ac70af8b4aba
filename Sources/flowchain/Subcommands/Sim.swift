import ArgumentParser
import Consensus
import FlowchainCrypto
import FlowchainNode
import Foundation

struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Run a deterministic simulation.",
        subcommands: [SimPoS.self, SimChord.self]
    )
}

struct SimPoS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pos",
        abstract: "Simulate stakers minting the anchor chain over a lossy, partitionable gossip network.",
        discussion: """
            Virtual clock, seeded: the same arguments give the same run. Prints each staker's \
            share of blocks beside its share of stake, the chi-square test of the two, the mean \
            block interval, forks and reorganisations.
            """
    )

    @Option(help: "Stakes, comma-separated.") var stakes = "1,2,3,4,5,6,7,8,9,10"
    @Option(help: "Anchor blocks to simulate.") var blocks = 10_000
    @Option(help: "Target seconds between blocks.") var interval: UInt32 = 10
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Option(help: "Gossip message loss, 0…1.") var loss = 0.0
    @Option(help: "Heights during which the network is split in two, e.g. 1000-1500.") var partition: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        var c = PoSSimulation.Configuration()
        c.stakes = stakes.split(separator: ",").compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
        guard !c.stakes.isEmpty, c.stakes.contains(where: { $0 > 0 }) else { throw ValidationError("--stakes needs at least one positive stake") }
        guard (1...1_000_000).contains(blocks) else { throw ValidationError("--blocks must be 1…1000000") }
        guard (0...0.9).contains(loss) else { throw ValidationError("--loss must be within 0…0.9") }
        c.blocks = blocks
        c.anchorInterval = interval
        c.seed = seed
        c.loss = loss
        if let partition {
            let p = partition.split(separator: "-").compactMap { Int($0) }
            guard p.count == 2, p[0] < p[1] else { throw ValidationError("--partition must be FROM-TO heights, e.g. 1000-1500") }
            c.partition = p[0]..<p[1]
        }
        let sim = PoSSimulation(c)
        let r = sim.run { height in if !json { FileHandle.standardError.write(Data("sim: height \(height)\n".utf8)) } }
        let total = Double(r.minted.reduce(0, +))
        if json {
            var out: [String: Any] = [
                "blocks": r.blocks, "virtualSeconds": r.seconds, "meanInterval": r.meanInterval, "targetInterval": Int(interval),
                "minted": r.minted, "stakes": c.stakes, "chiSquare": r.chiSquare, "pValue": r.pValue,
                "agreed": r.agreed, "reorganizations": r.reorganizations, "maxReorgDepth": r.maxReorgDepth, "wallSeconds": r.wallSeconds,
            ]
            if let h = sim.healedAt { out["healedAt"] = h }
            if let a = sim.agreedAfterHealAt { out["agreedAfterHealAt"] = a }
            try printJSON(out)
            return
        }
        print("STAKER  STAKE  STAKE-SHARE  BLOCKS  BLOCK-SHARE")
        for (i, s) in c.stakes.enumerated() {
            print(String(format: "%6d  %5llu  %10.4f  %6d  %10.4f", i, s, r.expectedShare[i], r.minted[i], total > 0 ? Double(r.minted[i]) / total : 0))
        }
        print(String(format: "blocks %d over %lld virtual s: mean interval %.2f s (target %u)", r.blocks, r.seconds, r.meanInterval, interval))
        print(String(format: "chi-square %.3f with %d degrees of freedom: p = %.4f", r.chiSquare, c.stakes.count - 1, r.pValue))
        print("all nodes agree: \(r.agreed); reorganisations \(r.reorganizations), deepest \(r.maxReorgDepth)")
        if let h = sim.healedAt { print("partition healed at height \(h); agreement at \(sim.agreedAfterHealAt.map(String.init) ?? "never")") }
        print(String(format: "wall time %.1f s", r.wallSeconds))
    }
}
