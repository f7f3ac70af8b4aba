import FlowchainCrypto
import Foundation
import LedgerModel

/// A deterministic simulation of stakers minting one anchor chain over a gossip network with
/// latency, loss and partitions, on a virtual clock (milliseconds). Same seed, same run.
public final class PoSSimulation {
    public struct Configuration: Sendable {
        public var stakes: [UInt64] = Array(1...10)
        public var blocks = 1000
        public var anchorInterval: UInt32 = 10
        public var seed: UInt64 = 1
        /// One-way gossip latency, uniform in this range (ms).
        public var latency: ClosedRange<Int64> = 50...500
        /// Probability that one gossip message is lost.
        public var loss = 0.0
        /// Blocks (by the heaviest node's height) during which the network is split in two halves.
        public var partition: Range<Int>? = nil
        /// Stop after this many virtual seconds even if `blocks` is not reached.
        public var maxSeconds: Int64 = 10_000_000

        public init() {}
    }

    public struct Report: Sendable {
        public let blocks: Int
        public let seconds: Int64
        public let meanInterval: Double
        public let minted: [Int]
        public let expectedShare: [Double]
        public let chiSquare: Double
        public let pValue: Double
        public let agreed: Bool
        public let reorganizations: Int
        public let maxReorgDepth: Int
        public let wallSeconds: Double
    }

    struct Node {
        let key: PrivateKey
        let chain: AnchorChain
        var group: Int
        /// This node's own segment chain, reduced to its newest signed header.
        var segmentHead: BlockHeader? = nil
    }

    enum Event {
        case deliver(to: Int, block: AnchorBlock, from: Int)
        case request(to: Int, hash: Digest32, from: Int)
    }

    public let configuration: Configuration
    public let genesis: Genesis
    var nodes: [Node] = []
    var rng: SplitMix64
    var queue: [(time: Int64, seq: Int, event: Event)] = []
    var seq = 0
    var now: Int64 = 0   // ms
    public private(set) var reorganizations = 0
    /// Each node's committed segment height on the heaviest chain when the partition began.
    public private(set) var committedAtPartition: [UInt64?]? = nil
    /// Heaviest height when the partition healed, and when all nodes next agreed on one tip.
    public private(set) var healedAt: Int? = nil
    public private(set) var agreedAfterHealAt: Int? = nil
    public private(set) var maxReorgDepth = 0

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        rng = SplitMix64(seed: configuration.seed)
        var keyRng = SplitMix64(seed: configuration.seed ^ 0x5eed)
        let keys = configuration.stakes.map { _ in try! PrivateKey(seed: (0..<32).map { _ in UInt8.random(in: 0...255, using: &keyRng) }) }
        genesis = Genesis(chainID: "sim-\(configuration.seed)", time: 1_700_000_000, anchorInterval: configuration.anchorInterval,
                          accounts: zip(keys, configuration.stakes).map { Genesis.Account(key: $0.publicKey, stake: $1) })
        let cache = SignatureCache()
        nodes = keys.enumerated().map { i, k in Node(key: k, chain: AnchorChain(genesis: genesis, signatures: cache, keep: .max), group: 0) }
        now = genesis.time * 1000
    }

    public var chains: [AnchorChain] { nodes.map(\.chain) }

    func schedule(_ delay: Int64, _ event: Event) {
        seq += 1
        let t = now + delay
        // Keep the queue sorted by (time, seq): binary insertion.
        var lo = 0, hi = queue.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if queue[mid].time < t || (queue[mid].time == t && queue[mid].seq < seq) { lo = mid + 1 } else { hi = mid }
        }
        queue.insert((t, seq, event), at: lo)
    }

    func send(_ event: Event, from: Int, to: Int) {
        guard nodes[from].group == nodes[to].group else { return }   // partitioned
        if configuration.loss > 0, Double.random(in: 0..<1, using: &rng) < configuration.loss { return }
        schedule(Int64.random(in: configuration.latency, using: &rng), event)
    }

    func broadcast(_ block: AnchorBlock, from: Int) {
        for j in nodes.indices where j != from { send(.deliver(to: j, block: block, from: from), from: from, to: j) }
    }

    func handle(_ event: Event) {
        let seconds = now / 1000
        switch event {
        case let .deliver(to, block, from):
            guard let outcome = try? nodes[to].chain.accept(block, now: seconds) else { return }
            switch outcome {
            case let .orphan(missing):
                send(.request(to: from, hash: missing, from: to), from: to, to: from)
            case let .reorganized(disconnected, _):
                reorganizations += 1
                maxReorgDepth = max(maxReorgDepth, disconnected.count)
                broadcast(block, from: to)
            case .extended:
                broadcast(block, from: to)
            case .duplicate, .sideChain, .stale:
                break
            }
        case let .request(to, hash, from):
            if let b = nodes[to].chain.entry(hash)?.block { send(.deliver(to: from, block: b, from: to), from: to, to: from) }
        }
    }

    /// A new signed segment header for node `i` (stand-in for its real segment chain).
    func nextSegmentHead(_ i: Int, time: Int64) -> BlockHeader? {
        let prev = nodes[i].segmentHead
        return try? BlockHeader(height: prev.map { $0.height + 1 } ?? 0, prev: prev?.hash ?? .zero, time: time * 1000,
                                merkleRoot: SHA256.hash(Array("sim-\(i)-\(time)".utf8)), count: 1, signedBy: nodes[i].key)
    }

    /// The newest segment height of node `i` committed on `chain`'s active tip.
    public func committedSegmentHeight(of i: Int, on chain: AnchorChain) -> UInt64? {
        chain.tip.state.heads[nodes[i].key.publicKey]?.height
    }

    /// The height reached by the heaviest node.
    var height: Int { Int(nodes.map { $0.chain.tip.height }.max() ?? 0) }

    /// Runs until `blocks` anchor blocks are on the heaviest chain and every node agrees (or the
    /// time budget ends). `progress` is called now and then with the height.
    public func run(progress: ((Int) -> Void)? = nil) -> Report {
        let wall = ContinuousClock.now
        let end = now + configuration.maxSeconds * 1000
        var lastProgress = 0
        var settled = 0
        while now < end {
            // One virtual second: deliver due messages, then every staker checks the kernel.
            let next = now + 1000
            while let first = queue.first, first.time < next {
                queue.removeFirst()
                now = first.time
                handle(first.event)
            }
            now = next
            let seconds = now / 1000
            if let p = configuration.partition {
                let split = p.contains(height)
                if split, committedAtPartition == nil {
                    let best = heaviest
                    committedAtPartition = nodes.indices.map { committedSegmentHeight(of: $0, on: best) }
                }
                if !split, committedAtPartition != nil, healedAt == nil { healedAt = height }
                if healedAt != nil, agreedAfterHealAt == nil, agreed { agreedAfterHealAt = height }
                for i in nodes.indices { nodes[i].group = split ? (i % 2) : 0 }
            }
            for i in nodes.indices {
                let stake = nodes[i].chain.tip.state.stake(of: nodes[i].key.publicKey)
                let chain = nodes[i].chain
                // Cheap pre-check; the segment head is signed only when the kernel succeeds.
                guard chain.tip.time < seconds, Kernel.check(
                    modifier: AnchorChain.childModifier(of: chain.tip), key: nodes[i].key.publicKey,
                    time: seconds, target: chain.expectedTarget(after: chain.tip), stake: stake) else { continue }
                nodes[i].segmentHead = nextSegmentHead(i, time: seconds)
                if let block = nodes[i].chain.mint(key: nodes[i].key, at: seconds, heads: nodes[i].segmentHead.map { [$0] } ?? []) {
                    _ = try? nodes[i].chain.accept(block, now: seconds)
                    broadcast(block, from: i)
                }
            }
            if height - lastProgress >= 500 { lastProgress = height; progress?(height) }
            if height >= configuration.blocks {
                // Give gossip time to settle, then stop.
                settled += 1
                if agreed || settled > 120 { break }
            }
        }
        return report(wall: (ContinuousClock.now - wall))
    }

    public var agreed: Bool { Set(nodes.map(\.chain.tip.hash)).count == 1 }

    /// The chain with the most work among the nodes.
    public var heaviest: AnchorChain { nodes.map(\.chain).reduce(nodes[0].chain) { $1.isBetter($1.tip, than: $0.tip) ? $1 : $0 } }

    func report(wall: Duration) -> Report {
        let best = heaviest
        let tip = best.tip
        var minted = [Int](repeating: 0, count: nodes.count)
        let index = Dictionary(uniqueKeysWithValues: nodes.enumerated().map { ($1.key.publicKey, $0) })
        for h in 1...max(1, Int(tip.height)) {
            if let b = best.activeEntry(at: UInt64(h))?.block, let i = index[b.minter] { minted[i] += 1 }
        }
        let total = Double(configuration.stakes.reduce(0, +))
        let share = configuration.stakes.map { Double($0) / total }
        let n = Double(minted.reduce(0, +))
        let chi = ChiSquare.statistic(observed: minted.map(Double.init), expected: share.map { $0 * n })
        let seconds = tip.time - genesis.time
        return Report(blocks: Int(tip.height), seconds: seconds, meanInterval: tip.height > 0 ? Double(seconds) / Double(tip.height) : 0,
                      minted: minted, expectedShare: share, chiSquare: chi,
                      pValue: ChiSquare.pValue(chi, degreesOfFreedom: max(1, nodes.count - 1)),
                      agreed: agreed, reorganizations: reorganizations, maxReorgDepth: maxReorgDepth,
                      wallSeconds: Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18)
    }
}
