import FlowchainCrypto

/// Lookups of random keys from random live nodes, scored against the simulator's oracle.
public struct LookupStatistics: Sendable, Equatable {
    public var issued = 0
    /// Returned the key's true live successor at the moment the lookup finished.
    public var correct = 0
    /// Returned a node that is not the key's live successor.
    public var wrong = 0
    /// Ended with an error.
    public var failed = 0
    public var hops: [Int] = []
    public var totalTimeouts = 0
    public var totalMessages = 0

    public var correctFraction: Double { issued == 0 ? 0 : Double(correct) / Double(issued) }
    public var meanHops: Double { hops.isEmpty ? 0 : Double(hops.reduce(0, +)) / Double(hops.count) }
    public var meanTimeouts: Double { issued == 0 ? 0 : Double(totalTimeouts) / Double(issued) }
    public var meanMessages: Double { issued == 0 ? 0 : Double(totalMessages) / Double(issued) }

    public func hopsPercentile(_ p: Double) -> Int {
        guard !hops.isEmpty else { return 0 }
        let s = hops.sorted()
        return s[min(s.count - 1, Int((p * Double(s.count - 1)).rounded()))]
    }

    mutating func record(_ result: Result<LookupAnswer, LookupError>, truth: ChordID?) {
        switch result {
        case .success(let a):
            if a.successor.id == truth { correct += 1 } else { wrong += 1 }
            hops.append(a.hops)
            totalTimeouts += a.timeouts
            totalMessages += a.messages
        case .failure:
            failed += 1
        }
    }
}

extension ChordSimulator {
    /// Runs `count` lookups of random keys, each from a random live node, at most `window` at a
    /// time, and waits for all of them (bounded by `deadline` virtual ms from now).
    public func runLookups(count: Int, window: Int = 512, seed: UInt64, deadline: Int64 = 600_000,
                           progress: ((Int) -> Void)? = nil) -> LookupStatistics {
        var rng = SplitMix64(seed: seed)
        var stats = LookupStatistics()
        var finished = 0
        let live = liveNodes.filter { node($0.id)?.isActive == true }
        guard !live.isEmpty else { return stats }
        func issue() {
            guard stats.issued < count else { return }
            stats.issued += 1
            let key = Self.randomKey(&rng)
            let from = live[Int.random(in: 0..<live.count, using: &rng)]
            lookup(from: from.id, key: key) { [unowned self] result in
                stats.record(result, truth: self.trueSuccessor(of: key)?.id)
                finished += 1
                if let progress, finished % 10_000 == 0 { progress(finished) }
                issue()
            }
        }
        for _ in 0..<min(window, count) { issue() }
        let end = now + deadline
        run(until: end) { finished < stats.issued }
        stats.failed += stats.issued - finished
        return stats
    }

    /// A uniformly random point on the ring from `rng`.
    static func randomKey(_ rng: inout SplitMix64) -> ChordID { ChordID(w0: rng.next(), w1: rng.next(), w2: rng.next()) }
}
