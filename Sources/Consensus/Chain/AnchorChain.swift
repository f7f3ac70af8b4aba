public import FlowchainCrypto
public import LedgerModel
import Synchronization

/// One node's view of the anchor chain: the valid blocks of its last `keep` heights, arranged as a
/// tree, with fork choice by most cumulative work (`Σ 2^256/(target+1)`), ties to the lower kernel
/// hash. Blocks deeper than `keep` below the tip are final: they leave memory (the node persists
/// them and a checkpoint of the newest final state, `finalized()`), and a branch forking below them
/// is refused as `.stale`, so memory stays bounded however long the chain grows.
/// Not thread-safe: one owner (an actor, or the simulator) drives it.
public final class AnchorChain {
    public struct Entry: Sendable {
        /// nil for the genesis entry and for a checkpoint.
        public let block: AnchorBlock?
        public let hash: Digest32
        public let parent: Digest32?
        public let height: UInt64
        public let time: Int64
        public let target: UInt256
        public let modifier: Digest32
        /// The block's kernel hash (`Kernel.kernelDigest`); the genesis hash for the genesis entry.
        /// The child's modifier derives from it, and fork-choice ties go to the lower one.
        public let kernel: Digest32
        /// Seconds between this block and its parent (the retarget input for its child).
        public let spacing: Int64
        /// Cumulative work from genesis.
        public let weight: UInt256
        public let state: StakeState
    }

    public enum Outcome: Sendable, Equatable {
        case duplicate
        /// Parent unknown: kept until it arrives; ask a peer for `missing`.
        case orphan(missing: Digest32)
        /// Valid, but the tip stays on a heavier branch.
        case sideChain
        /// At or below the final height, or on a branch forking below it: ignored.
        case stale
        case extended
        /// The tip moved to another branch; blocks `disconnected` left the active chain.
        case reorganized(disconnected: [Digest32], connected: [Digest32])
    }

    public let genesis: Genesis
    public let genesisHash: Digest32
    /// The highest target ever allowed: 64 × the initial one.
    public let targetLimit: UInt256
    /// How far ahead of local time a block may be, in seconds.
    public static let maxFutureDrift: Int64 = 15

    private(set) var entries: [Digest32: Entry] = [:]
    private var orphans: [Digest32: [AnchorBlock]] = [:]
    private var orphanByHash: [Digest32: AnchorBlock] = [:]
    /// Orphans in arrival order, for evicting the oldest first.
    private var orphanOrder: [Digest32] = []
    /// Hashes of the active chain by height, from `base.height` up.
    private(set) var active: [Digest32] = []
    public private(set) var tip: Entry
    /// The oldest entry held: the genesis, or the newest final block (or a checkpoint of it).
    public private(set) var base: Entry
    /// How many heights below the tip stay open to reorganisation; deeper blocks are final.
    public let keep: UInt64
    /// Entries that became final since the last `finalized()` call, oldest first.
    private var newlyFinal: [Entry] = []
    let signatures: SignatureCache?

    /// Default depth of finality: 1,000 anchor blocks (about 3 hours at 10 s).
    public static let defaultKeep: UInt64 = 1_000

    /// - Parameters:
    ///   - signatures: an optional cache of verified block signatures, shared by simulated nodes so
    ///     each signature is checked once per simulation.
    ///   - keep: heights kept open to reorganisation (`.max`: never prune, e.g. in simulations).
    ///   - checkpoint: a validated final entry to start from instead of the genesis (its block's
    ///     children are then replayed on top of it).
    public init(genesis: Genesis, signatures: SignatureCache? = nil, keep: UInt64 = AnchorChain.defaultKeep, checkpoint: Entry? = nil) {
        self.genesis = genesis
        genesisHash = genesis.hash
        targetLimit = genesis.initialTarget.multipliedSaturating(by: 64)
        self.signatures = signatures
        self.keep = max(keep, 1)
        let root = checkpoint ?? Entry(
            block: nil, hash: genesisHash, parent: nil, height: 0, time: genesis.time, target: genesis.initialTarget,
            modifier: Kernel.genesisModifier(genesisHash), kernel: genesisHash, spacing: Int64(genesis.anchorInterval),
            weight: .zero, state: StakeState(genesis: genesis))
        entries[root.hash] = root
        active = [root.hash]
        tip = root
        base = root
    }

    public func entry(_ hash: Digest32) -> Entry? { entries[hash] }
    /// Most blocks held while waiting for their parents; the oldest are evicted first.
    public static let maxOrphans = 1_000
    /// How far above the tip an orphan may claim to be before it is not worth keeping.
    public static let maxOrphanLead: UInt64 = 10_000

    /// Blocks held in memory (entries and orphans): bounded by about `keep` plus side branches.
    public var heldBlocks: Int { entries.count + orphanByHash.count }

    /// The active chain's entry at `height`, while it is held (at or above `base.height`).
    public func activeEntry(at height: UInt64) -> Entry? {
        guard height >= base.height, height - base.height < UInt64(active.count) else { return nil }
        return entries[active[Int(height - base.height)]]
    }

    /// The target a child of `parent` must carry.
    public func expectedTarget(after parent: Entry) -> UInt256 {
        parent.height == 0 ? genesis.initialTarget
            : Kernel.retarget(parent.target, spacing: parent.spacing, interval: genesis.anchorInterval, limit: targetLimit)
    }

    /// The entries that became final since the last call, oldest first, for the caller to persist.
    public func finalized() -> [Entry] {
        defer { newlyFinal = [] }
        return newlyFinal
    }

    /// Checks `block` against every rule and adds it; may move the tip. `now` is local time in seconds.
    @discardableResult
    public func accept(_ block: AnchorBlock, now: Int64) throws(AnchorViolation) -> Outcome {
        if entries[block.hash] != nil { return .duplicate }
        guard block.chain == genesisHash else { throw AnchorViolation(height: block.height, "belongs to another chain (genesis \(block.chain), ours is \(genesisHash))") }
        if block.height <= base.height { return .stale }
        guard let parent = entries[block.prev] else {
            // A branch from below the final height can never win: nothing to wait for.
            if block.height == base.height + 1 { return .stale }
            if orphanByHash[block.hash] == nil { try keepOrphan(block, now: now) }
            // Ask for the deepest block we lack, not just the parent: after a partition the
            // missing branch can be long, and re-walking held orphans would never reach its base.
            var missing = block.prev
            while let held = orphanByHash[missing] { missing = held.prev }
            return .orphan(missing: missing)
        }
        let oldTip = tip
        let entry = try validate(block, parent: parent, now: now)
        entries[block.hash] = entry
        adopt(entry)
        // Blocks that were waiting for this one; a bad one among them is dropped.
        var waiting = orphans.removeValue(forKey: block.hash) ?? []
        while let child = waiting.popLast() {
            orphanByHash[child.hash] = nil
            orphanOrder.removeAll { $0 == child.hash }
            guard entries[child.hash] == nil, let p = entries[child.prev], let e = try? validate(child, parent: p, now: now) else { continue }
            entries[child.hash] = e
            adopt(e)
            waiting += orphans.removeValue(forKey: child.hash) ?? []
        }
        if tip.hash == oldTip.hash { return .sideChain }
        let outcome: Outcome
        if isActive(oldTip) {
            outcome = .extended
        } else {
            // The old tip's branch left the active chain: walk it back to the fork.
            var disconnected: [Digest32] = []
            var cursor = oldTip
            while !isActive(cursor), let p = cursor.parent, let pe = entries[p] {
                disconnected.append(cursor.hash)
                cursor = pe
            }
            outcome = .reorganized(disconnected: disconnected, connected: Array(active[Int(cursor.height + 1 - base.height)...]))
        }
        pruneIfDeep()
        return outcome
    }

    private func isActive(_ e: Entry) -> Bool {
        e.height >= base.height && e.height - base.height < UInt64(active.count) && active[Int(e.height - base.height)] == e.hash
    }

    /// Checks what can be checked of a block whose parent is unknown, then holds it, evicting the
    /// oldest orphan when full.
    private func keepOrphan(_ block: AnchorBlock, now: Int64) throws(AnchorViolation) {
        let h = block.height
        guard h <= tip.height + Self.maxOrphanLead else { throw AnchorViolation(height: h, "is more than \(Self.maxOrphanLead) above the tip \(tip.height)") }
        guard block.time <= now + Self.maxFutureDrift else { throw AnchorViolation(height: h, "timestamp \(block.time) is ahead of local time") }
        guard block.heads.count <= AnchorBlock.maxHeads, block.records.count <= AnchorBlock.maxRecords else { throw AnchorViolation(height: h, "too many heads or records") }
        guard tip.state.accounts[block.minter] != nil || base.state.accounts[block.minter] != nil else {
            throw AnchorViolation(height: h, "unknown staker \(block.minter)")
        }
        guard block.hasValidSignature else { throw AnchorViolation(height: h, "minter signature does not verify") }
        if orphanByHash.count >= Self.maxOrphans, let oldest = orphanOrder.first {
            orphanOrder.removeFirst()
            if let evicted = orphanByHash.removeValue(forKey: oldest) {
                orphans[evicted.prev]?.removeAll { $0.hash == oldest }
                if orphans[evicted.prev]?.isEmpty == true { orphans[evicted.prev] = nil }
            }
        }
        orphans[block.prev, default: []].append(block)
        orphanByHash[block.hash] = block
        orphanOrder.append(block.hash)
    }

    /// Makes the active blocks deeper than `keep` final: they leave memory (in batches of 64, so
    /// the cost is amortised), with every side branch that forks below the new base.
    private func pruneIfDeep() {
        guard keep != .max, tip.height > base.height + keep + 64 else { return }
        let newBaseHeight = tip.height - keep
        guard let newBase = activeEntry(at: newBaseHeight) else { return }
        for h in (base.height + 1)...newBaseHeight { if let e = activeEntry(at: h) { newlyFinal.append(e) } }
        func descends(_ e: Entry) -> Bool {
            var cursor = e
            while cursor.height > newBaseHeight, let p = cursor.parent, let pe = entries[p] { cursor = pe }
            return cursor.hash == newBase.hash
        }
        entries = entries.filter { _, e in e.height >= newBaseHeight && (isActive(e) || descends(e)) }
        active.removeFirst(Int(newBaseHeight - base.height))
        base = newBase
        for (hash, orphan) in orphanByHash where orphan.height <= newBaseHeight {
            orphanByHash[hash] = nil
            orphans[orphan.prev] = nil
            orphanOrder.removeAll { $0 == hash }
        }
    }

    /// The entry `block` would become, or the rule it breaks.
    public func validate(_ b: AnchorBlock, parent: Entry, now: Int64) throws(AnchorViolation) -> Entry {
        let h = b.height
        guard h == parent.height + 1 else { throw AnchorViolation(height: h, "height is not parent height + 1 (\(parent.height) + 1)") }
        guard b.time > parent.time else { throw AnchorViolation(height: h, "timestamp \(b.time) is not after its parent's \(parent.time)") }
        guard b.time <= now + Self.maxFutureDrift else {
            throw AnchorViolation(height: h, "timestamp \(b.time) is \(b.time - now) s ahead of local time (at most \(Self.maxFutureDrift))")
        }
        let target = expectedTarget(after: parent)
        guard b.target == target else { throw AnchorViolation(height: h, "wrong target \(b.target.hex.prefix(16))…, expected \(target.hex.prefix(16))…") }
        guard b.stakeModifier == Self.childModifier(of: parent) else {
            throw AnchorViolation(height: h, "stake modifier does not derive from the parent")
        }
        guard parent.state.accounts[b.minter] != nil else { throw AnchorViolation(height: h, "unknown staker \(b.minter)") }
        let stake = parent.state.stake(of: b.minter)
        guard stake > 0 else { throw AnchorViolation(height: h, "minter \(b.minter) has no stake") }
        guard Kernel.check(modifier: b.stakeModifier, key: b.minter, time: b.time, target: b.target, stake: stake) else {
            throw AnchorViolation(height: h, "kernel hash does not meet target × stake")
        }
        guard b.heads.count <= AnchorBlock.maxHeads, b.records.count <= AnchorBlock.maxRecords else {
            throw AnchorViolation(height: h, "too many heads or records")
        }
        if !(signatures?.contains(b.hash) ?? false) {
            guard b.hasValidSignature else { throw AnchorViolation(height: h, "minter signature does not verify") }
        }
        let state = try parent.state.applying(b, chain: genesisHash, bondDelay: genesis.bondDelay, verifySignatures: !(signatures?.contains(b.hash) ?? false))
        signatures?.insert(b.hash)
        let (weight, _) = parent.weight.addingReportingOverflow(Kernel.work(b.target))
        return Entry(block: b, hash: b.hash, parent: parent.hash, height: h, time: b.time, target: b.target, modifier: b.stakeModifier,
                     kernel: Kernel.kernelDigest(modifier: b.stakeModifier, key: b.minter, time: b.time), spacing: b.time - parent.time, weight: weight, state: state)
    }

    /// The stake modifier every child of `parent` must carry.
    public static func childModifier(of parent: Entry) -> Digest32 {
        Kernel.modifier(parentModifier: parent.modifier, parentKernel: parent.kernel)
    }

    /// Fork choice: does `entry` beat the current tip? More work wins; equal work goes to the lower
    /// kernel hash, which the minter cannot grind either (only its key and timestamp enter it).
    func isBetter(_ e: Entry, than t: Entry) -> Bool {
        if e.weight != t.weight { return e.weight > t.weight }
        if e.kernel != t.kernel { return e.kernel < t.kernel }
        return e.hash < t.hash
    }

    /// Makes `entry` the tip when it beats the current one.
    private func adopt(_ entry: Entry) {
        guard isBetter(entry, than: tip) else { return }
        // Walk the new branch back to where it meets the active chain.
        var branch: [Digest32] = []
        var cursor = entry
        while !isActive(cursor) {
            branch.append(cursor.hash)
            guard let p = cursor.parent, let pe = entries[p] else { break }
            cursor = pe
        }
        active.removeSubrange(Int(cursor.height + 1 - base.height)...)
        active += branch.reversed()
        tip = entry
    }

    /// Tries to mint on the tip at `time` with `key`: a signed block when the kernel succeeds.
    /// Heads and records that would break a rule against the tip's state are left out.
    public func mint(key: PrivateKey, at time: Int64, heads: [BlockHeader] = [], records: [StakeRecord] = []) -> AnchorBlock? {
        let parent = tip
        guard time > parent.time else { return nil }
        let stake = parent.state.stake(of: key.publicKey)
        let modifier = Self.childModifier(of: parent)
        let target = expectedTarget(after: parent)
        guard Kernel.check(modifier: modifier, key: key.publicKey, time: time, target: target, stake: stake) else { return nil }
        // Keep only what applies cleanly, one item at a time.
        var keptHeads: [BlockHeader] = [], keptRecords: [StakeRecord] = []
        let chain = genesisHash, delay = genesis.bondDelay
        func fits(_ hs: [BlockHeader], _ rs: [StakeRecord]) -> Bool {
            guard let probe = try? AnchorBlock(chain: chain, height: parent.height + 1, prev: parent.hash, time: time, target: target,
                                               stakeModifier: modifier, heads: hs, records: rs, signedBy: key) else { return false }
            return (try? parent.state.applying(probe, chain: chain, bondDelay: delay, verifySignatures: true)) != nil
        }
        for r in records.prefix(AnchorBlock.maxRecords) where fits([], keptRecords + [r]) { keptRecords.append(r) }
        for h in heads.prefix(AnchorBlock.maxHeads) where fits(keptHeads + [h], keptRecords) { keptHeads.append(h) }
        return try? AnchorBlock(chain: chain, height: parent.height + 1, prev: parent.hash, time: time, target: target,
                                stakeModifier: modifier, heads: keptHeads, records: keptRecords, signedBy: key)
    }

    /// The first active block held in memory whose committed head for `owner` is at
    /// `segmentHeight` or above; nil when none is, or when the commitment is already final (the
    /// caller then looks in the persisted final blocks).
    public func anchor(owner: PublicKey, segmentHeight: UInt64) -> Entry? {
        guard let lastHash = active.last, let last = entries[lastHash], (last.state.heads[owner]?.height).map({ $0 >= segmentHeight }) == true else { return nil }
        if (base.state.heads[owner]?.height).map({ $0 >= segmentHeight }) == true { return nil }
        var lo = 0, hi = active.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if let e = entries[active[mid]], (e.state.heads[owner]?.height).map({ $0 >= segmentHeight }) == true { hi = mid } else { lo = mid + 1 }
        }
        return entries[active[lo]]
    }
}

/// Block hashes whose signatures (block, heads, records) were already verified.
public final class SignatureCache: Sendable {
    private let seen = Mutex<Set<Digest32>>([])
    public init() {}
    func contains(_ h: Digest32) -> Bool { seen.withLock { $0.contains(h) } }
    func insert(_ h: Digest32) { _ = seen.withLock { $0.insert(h) } }
}
