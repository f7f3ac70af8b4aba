import FlowchainCrypto
import Foundation

/// The experiments of Stoica et al. (ToN 2003 §V), run in the simulator. Each takes a seed and
/// gives the same figures for the same arguments.
public enum ChordExperiments {
    public typealias Progress = (String) -> Void

    static func log2(_ n: Int) -> Double { Foundation.log2(Double(n)) }

    /// 2·⌈log2 N⌉: the successor-list length the paper uses for its failure experiments.
    public static func paperSuccessors(for n: Int) -> Int { max(1, 2 * Int(log2(max(2, n)).rounded(.up))) }

    /// The network every experiment runs over: per-message latency and loss. Defaults: uniform
    /// 5–50 ms, nothing lost.
    public struct Network: Sendable {
        public var latency = LatencyModel.uniform(5, 50)
        public var loss = 0.0
        public init() {}
    }

    static func simulator(seed: UInt64, successors: Int, network: Network) -> ChordSimulator {
        var c = ChordSimulator.Configuration()
        c.seed = seed
        c.latency = network.latency
        c.loss = network.loss
        c.chord.successorListLength = min(successors, ChordConfiguration.maxListLength)
        return ChordSimulator(c)
    }

    // MARK: Path length

    public struct PathLengthRow: Sendable {
        public let nodes: Int
        public let lookups: LookupStatistics
        public var halfLog2N: Double { ChordExperiments.log2(nodes) / 2 }
        public var withinTarget: Bool { lookups.meanHops <= halfLog2N + 0.5 }
    }

    /// Mean hops of random lookups in stable rings of each size (the paper's Fig. 10, left).
    public static func pathLength(sizes: [Int], lookups: Int, successors: Int?, network: Network = .init(), seed: UInt64,
                                  progress: Progress? = nil) -> [PathLengthRow] {
        sizes.enumerated().map { i, n in
            let sim = simulator(seed: seed &+ UInt64(i), successors: successors ?? 8, network: network)
            sim.buildStableRing(count: n, maintain: false)
            let stats = sim.runLookups(count: lookups, seed: seed &+ 1000 &+ UInt64(i))
            progress?("path length: N = \(n): mean \(String(format: "%.2f", stats.meanHops)) hops over \(stats.issued) lookups")
            return PathLengthRow(nodes: n, lookups: stats)
        }
    }

    // MARK: Simultaneous failures

    public struct FailureRow: Sendable {
        public let fraction: Double
        public let crashed: Int
        /// Lookups right after the crash, before any stabilization.
        public let before: LookupStatistics
        /// Lookups after `rounds` stabilization rounds.
        public let after: LookupStatistics
        public let rounds: Int
    }

    /// Crashes a fraction p of a stable ring at once and scores lookups before and after repair.
    public static func failures(nodes n: Int, fractions: [Double], lookups: Int, successors: Int?, rounds: Int,
                                network: Network = .init(), seed: UInt64, progress: Progress? = nil) -> [FailureRow] {
        fractions.enumerated().map { i, p in
            let r = successors ?? paperSuccessors(for: n)
            let sim = simulator(seed: seed &+ UInt64(i), successors: r, network: network)
            let ring = sim.buildStableRing(count: n, maintain: false)
            var rng = SplitMix64(seed: seed &+ 77 &+ UInt64(i))
            let crashed = Int((Double(n) * p).rounded())
            var order = Array(ring.indices)
            order.shuffle(using: &rng)
            for k in order.prefix(crashed) { sim.crash(ring[k].id) }
            let before = sim.runLookups(count: lookups, seed: seed &+ 500 &+ UInt64(i))
            progress?("failures: p = \(p): \(String(format: "%.4f", before.correctFraction)) correct before stabilization; repairing")
            sim.startMaintenance()
            sim.run(until: sim.now + Int64(rounds) * sim.configuration.chord.stabilizeInterval)
            let after = sim.runLookups(count: lookups, seed: seed &+ 900 &+ UInt64(i))
            progress?("failures: p = \(p): \(String(format: "%.4f", after.correctFraction)) correct after \(rounds) rounds")
            return FailureRow(fraction: p, crashed: crashed, before: before, after: after, rounds: rounds)
        }
    }

    // MARK: Convergence

    public struct ConvergenceResult: Sendable {
        public let joins: Int
        /// Virtual seconds the joins took (each waits for the previous one to have found its successor).
        public let joinSeconds: Double
        /// Wrong successor / predecessor pointers right after the last join.
        public let wrongAfterJoins: (successors: Int, predecessors: Int)
        /// Stabilization rounds after the last join until every pointer was right; nil if not within the limit.
        public let rounds: Int?
        public let limit: Int
    }

    /// Sequential joins through random members, with stabilization running; then counts rounds
    /// until every successor and predecessor pointer is correct.
    public static func convergence(joins: Int, successors: Int?, limit: Int = 30, network: Network = .init(), seed: UInt64,
                                   progress: Progress? = nil) -> ConvergenceResult {
        let sim = simulator(seed: seed, successors: successors ?? 8, network: network)
        var rng = SplitMix64(seed: seed &+ 5)
        let first = sim.addNode()
        sim.create(first.id)
        var members = [first]
        var joined = 0
        sim.onEvent = { _, e in if case .joined = e { joined += 1 } }
        for k in 0..<joins {
            let n = sim.addNode()
            sim.join(n.id, via: members[Int.random(in: 0..<members.count, using: &rng)].id)
            sim.run(until: sim.now + 60_000) { joined <= k }
            members.append(n)
            if (k + 1) % 250 == 0 { progress?("convergence: \(k + 1)/\(joins) joined") }
        }
        let joinSeconds = Double(sim.now) / 1000
        let wrong = sim.wrongPointers()
        let period = sim.configuration.chord.stabilizeInterval
        var rounds: Int?
        for round in 0...limit {
            let w = sim.wrongPointers()
            if w.successors == 0 && w.predecessors == 0 { rounds = round; break }
            sim.run(until: sim.now + period)
        }
        return ConvergenceResult(joins: joins, joinSeconds: joinSeconds, wrongAfterJoins: wrong, rounds: rounds, limit: limit)
    }

    // MARK: Load balance

    public struct LoadBalanceResult: Sendable {
        public let nodes: Int
        public let keys: Int
        public let mean: Double
        public let p1: Int, p50: Int, p99: Int, max: Int
        /// Quantiles of the ideal model: each node's share of the ring is exponential with mean 1/N.
        public let theoryP1: Double, theoryP50: Double, theoryP99: Double
    }

    /// Keys per node for random node ids and keys (the paper's Fig. 8), beside the exponential model.
    public static func loadBalance(nodes n: Int, keys: Int, seed: UInt64, progress: Progress? = nil) -> LoadBalanceResult {
        var rng = SplitMix64(seed: seed)
        let ids = (0..<n).map { _ in ChordSimulator.randomKey(&rng) }.sorted()
        var counts = [Int](repeating: 0, count: n)
        for k in 0..<keys {
            let key = ChordSimulator.randomKey(&rng)
            var lo = 0, hi = n
            while lo < hi {
                let mid = (lo + hi) / 2
                if ids[mid] < key { lo = mid + 1 } else { hi = mid }
            }
            counts[lo == n ? 0 : lo] += 1
            if (k + 1) % 250_000 == 0 { progress?("load balance: \(k + 1)/\(keys) keys placed") }
        }
        let s = counts.sorted()
        func q(_ p: Double) -> Int { s[Swift.min(n - 1, Int((p * Double(n - 1)).rounded()))] }
        let mean = Double(keys) / Double(n)
        return LoadBalanceResult(nodes: n, keys: keys, mean: mean, p1: q(0.01), p50: q(0.5), p99: q(0.99), max: s.last ?? 0,
                                 theoryP1: -Foundation.log(0.99) * mean, theoryP50: Foundation.log(2) * mean,
                                 theoryP99: Foundation.log(100) * mean)
    }
}
