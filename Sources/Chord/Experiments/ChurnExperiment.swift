import FlowchainCrypto
import Foundation

extension ChordExperiments {
    public struct ChurnRow: Sendable {
        /// Joins per second and, equally, failures per second (Poisson, the paper's R).
        public let rate: Double
        public let seconds: Int
        public let joins: Int
        public let crashes: Int
        public let lookups: LookupStatistics
        public let finalNodes: Int
    }

    /// A ring of `initial` nodes under continuous churn (ToN 2003 §V-E): nodes join and crash as
    /// Poisson processes of rate R each, stabilization runs every 30 s on average (15–45 s), and
    /// lookups of random keys arrive at `lookupRate` per second. A lookup fails unless it returns the
    /// key's live successor at the moment it finishes.
    public static func churn(initial: Int, rates: [Double], seconds: Int, lookupRate: Double = 1, successors: Int?,
                             network: Network = .init(), seed: UInt64, progress: Progress? = nil) -> [ChurnRow] {
        rates.enumerated().map { i, rate in
            var c = ChordSimulator.Configuration()
            c.seed = seed &+ UInt64(i)
            c.latency = network.latency
            c.loss = network.loss
            c.chord.successorListLength = successors ?? 8
            c.chord.stabilizeInterval = 30_000
            c.chord.fixFingersInterval = 30_000
            c.chord.checkPredecessorInterval = 30_000
            c.chord.jitter = 0.5
            let sim = ChordSimulator(c)
            sim.buildStableRing(count: initial, maintain: true)
            var rng = SplitMix64(seed: seed &+ 4242 &+ UInt64(i))
            var stats = LookupStatistics()
            var joins = 0, crashes = 0
            let end = Int64(seconds) * 1000
            func exponential(_ perSecond: Double) -> Int64 {
                Int64((-Foundation.log(Double.random(in: Double.ulpOfOne..<1, using: &rng)) / perSecond * 1000).rounded())
            }
            func activeNodes() -> [NodeRef] { sim.liveNodes.filter { sim.node($0.id)?.isActive == true } }
            func churnEvent() {
                let live = activeNodes()
                if Bool.random(using: &rng) || live.count < 8 {
                    let n = sim.addNode()
                    sim.join(n.id, via: live[Int.random(in: 0..<live.count, using: &rng)].id)
                    joins += 1
                } else {
                    sim.crash(live[Int.random(in: 0..<live.count, using: &rng)].id)
                    crashes += 1
                }
                let next = sim.now + exponential(rate * 2)
                if next < end { sim.schedule(at: next, churnEvent) }
            }
            var finished = 0
            func lookupEvent() {
                let live = activeNodes()
                let key = ChordSimulator.randomKey(&rng)
                stats.issued += 1
                sim.lookup(from: live[Int.random(in: 0..<live.count, using: &rng)].id, key: key) { r in
                    stats.record(r, truth: sim.trueSuccessor(of: key)?.id)
                    finished += 1
                }
                let next = sim.now + exponential(lookupRate)
                if next < end { sim.schedule(at: next, lookupEvent) }
            }
            if rate > 0 { sim.schedule(at: exponential(rate * 2), churnEvent) }
            sim.schedule(at: exponential(lookupRate), lookupEvent)
            var reported = 0
            while sim.now < end {
                sim.run(until: min(end, sim.now + 600_000))
                if sim.now / 600_000 > reported {
                    reported = Int(sim.now / 600_000)
                    progress?("churn: R = \(rate): \(sim.now / 1000)/\(seconds) virtual s, \(joins) joins, \(crashes) crashes, \(stats.issued) lookups")
                }
            }
            sim.run(until: end + 120_000) { finished < stats.issued }
            stats.failed += stats.issued - finished
            return ChurnRow(rate: rate, seconds: seconds, joins: joins, crashes: crashes, lookups: stats, finalNodes: sim.liveNodes.count)
        }
    }
}
