public import FlowchainCrypto
import Foundation
public import LedgerModel

/// The anchor chain of one running node: replays and re-validates the stored chain on start,
/// mints when this node's key wins the kernel, commits the node's segment head, stores every
/// accepted block, and extends reading proofs to the anchor.
public actor AnchorNode {
    public let chain: AnchorChain
    /// nil for an observer that never mints (e.g. `flowchain verify`).
    let key: PrivateKey?
    let store: any AnchorStorage
    /// Stored anchor blocks replayed through the rules at start (those above the checkpoint).
    public nonisolated let replayedAtStart: Int
    /// The chain this node follows (its genesis hash).
    public nonisolated let genesisHash: Digest32

    /// Starts from the stored checkpoint (the newest final state), or the genesis when there is
    /// none, and replays the stored anchor blocks above it through every rule; a block that fails
    /// stops the node. Start-up time and memory depend on the finality depth, not the chain's length.
    public init(genesis: Genesis, key: PrivateKey?, store: any AnchorStorage, now: Int64, keep: UInt64 = AnchorChain.defaultKeep) throws {
        var checkpoint: AnchorChain.Entry? = nil
        if let bytes = try store.anchorCheckpoint() {
            do { checkpoint = try AnchorCheckpoint.decode(bytes) } catch {
                throw AnchorStoreError(height: 0, reason: "the stored checkpoint does not decode (\(error))")
            }
            if let c = checkpoint, try store.finalAnchorHash(height: c.height) != c.hash {
                throw AnchorStoreError(height: c.height, reason: "the stored checkpoint does not match the recorded final block")
            }
        }
        chain = AnchorChain(genesis: genesis, keep: keep, checkpoint: checkpoint)
        genesisHash = genesis.hash
        self.key = key
        self.store = store
        let stored = try store.anchorBlocks(above: checkpoint?.height)
        replayedAtStart = stored.count
        // What becomes final during the replay is recorded only once every stored block has
        // passed: a chain that fails refuses the node without it having written anything.
        var finals: [AnchorChain.Entry] = []
        for (height, encoded) in stored {
            let block: AnchorBlock
            do { block = try AnchorBlock(encoded: encoded) } catch {
                throw AnchorStoreError(height: height, reason: "does not decode (\(error))")
            }
            guard block.height == height else { throw AnchorStoreError(height: height, reason: "says it is at height \(block.height)") }
            do {
                // Every rule is checked again except "not ahead of local time", which held when the
                // block was first accepted: a board without a real-time clock may start with its
                // clock days behind, and its own stored chain must still load.
                if case .orphan = try chain.accept(block, now: max(now, block.time)) {
                    throw AnchorStoreError(height: height, reason: "its parent is missing from the store")
                }
            } catch let v as AnchorViolation {
                throw AnchorStoreError(height: height, reason: v.rule)
            }
            finals += chain.finalized()
        }
        // An observer (no key, e.g. `flowchain verify` on a read-only store) only reads.
        if key != nil { try Self.persist(finals, chain: chain, store: store) }
    }

    /// Records blocks that became final, and a checkpoint of the newest final state.
    static func persist(_ finals: [AnchorChain.Entry], chain: AnchorChain, store: any AnchorStorage) throws {
        guard !finals.isEmpty else { return }
        let records = finals.map { e in
            FinalAnchor(height: e.height, hash: e.hash, commits: (e.block?.heads ?? []).map { ($0.owner, $0.height) })
        }
        try store.saveFinalAnchors(records, checkpoint: AnchorCheckpoint.encode(chain.base))
    }

    /// Persists what became final since the last call, on the store's I/O threads.
    private func persistFinalized() async throws {
        let finals = chain.finalized()
        guard !finals.isEmpty, key != nil else { return }
        let records = finals.map { e in
            FinalAnchor(height: e.height, hash: e.hash, commits: (e.block?.heads ?? []).map { ($0.owner, $0.height) })
        }
        let checkpoint = AnchorCheckpoint.encode(chain.base)
        try await store.offloadAnchorWork { try $0.saveFinalAnchors(records, checkpoint: checkpoint) }
    }

    public var tip: AnchorChain.Entry { chain.tip }
    /// The newest final height held (the checkpoint the node restarted from, or later).
    public var finalHeight: UInt64 { chain.base.height }

    /// True when `block` is on the heaviest anchor chain (held in memory, or recorded as final).
    public func isOnActiveChain(_ block: AnchorBlock) async -> Bool {
        if block.height > chain.base.height { return chain.isOnActiveChain(block) }
        if block.height == chain.base.height { return block.hash == chain.base.hash }
        let height = block.height
        return (try? await store.offloadAnchorWork { try $0.finalAnchorHash(height: height) }) == block.hash
    }

    /// Checks the kernel for this second; mints, stores and returns a block when it wins. The
    /// store is read and written on its I/O threads, never on the actor's.
    public func tick(now: Int64) async throws -> AnchorBlock? {
        try await tick(now: now, otherHeads: [], records: [])
    }

    /// `tick`, also committing `otherHeads` (other nodes' segment heads, newest known, heard from
    /// the ring) and carrying `records`; whatever does not apply cleanly is left out.
    /// With `skipEmpty`, a win with nothing to commit (no new head, no record) mints nothing and
    /// writes nothing: a node alone with an idle ledger leaves its storage alone.
    public func tick(now: Int64, otherHeads: [BlockHeader], records: [StakeRecord], skipEmpty: Bool = false) async throws -> AnchorBlock? {
        guard let key else { return nil }
        // Most seconds nobody wins: check the kernel before touching the store.
        let parent = chain.tip
        let modifier = AnchorChain.childModifier(of: parent)
        guard now > parent.time, Kernel.check(modifier: modifier, key: key.publicKey, time: now, target: chain.expectedTarget(after: parent),
                                              stake: parent.state.stake(of: key.publicKey)) else { return nil }
        // This node's newest segment head, unless the tip already commits it. After a
        // reorganisation this re-commits heads that were only on the losing branch.
        var heads: [BlockHeader] = []
        let segmentTip = try await store.offloadAnchorWork { try $0.tip() }
        guard chain.tip.hash == parent.hash else { return nil }   // the tip moved while we read
        if let head = segmentTip {
            let committed = chain.tip.state.heads[key.publicKey]?.height
            if committed.map({ head.height > $0 }) ?? true { heads = [head] }
        }
        for h in otherHeads where h.owner != key.publicKey {
            if chain.tip.state.heads[h.owner].map({ h.height > $0.height }) ?? true { heads.append(h) }
        }
        if skipEmpty, heads.isEmpty, records.isEmpty { return nil }
        guard let block = chain.mint(key: key, at: now, heads: heads, records: records) else { return nil }
        try chain.accept(block, now: now)
        try await store.offloadAnchorWork { try $0.saveAnchorBlock(hash: block.hash, height: block.height, encoded: block.encoded) }
        try await persistFinalized()
        return block
    }

    /// Accepts a block from elsewhere (a peer, later); stores it when valid.
    @discardableResult
    public func receive(_ block: AnchorBlock, now: Int64) async throws -> AnchorChain.Outcome {
        let outcome = try chain.accept(block, now: now)
        switch outcome {
        case .duplicate, .orphan: break
        default: try await store.offloadAnchorWork { try $0.saveAnchorBlock(hash: block.hash, height: block.height, encoded: block.encoded) }
        }
        try await persistFinalized()
        return outcome
    }

    /// Active blocks after `height`, at most `limit` (for a peer catching up).
    public func blocks(after height: UInt64, limit: Int) async throws -> [AnchorBlock] {
        let top = min(chain.tip.height, height + UInt64(max(limit, 1)))
        guard height < top else { return [] }
        let base = chain.base.height
        var out: [AnchorBlock] = []
        if base > height {
            let range = (height + 1)...min(base, top)
            out = try await store.offloadAnchorWork { try $0.finalAnchorBlocks(heights: range) }.map { try AnchorBlock(encoded: $0) }
        }
        if top > base { out += (max(base, height) + 1...top).compactMap { chain.activeEntry(at: $0)?.block } }
        return out
    }

    /// How `proof`'s anchor block stands against this node's (trusted) chain.
    public func verifyAnchor(_ proof: AnchoredProof) async -> AnchoredProof.AnchorVerdict {
        if proof.anchor.height <= chain.base.height {
            return await isOnActiveChain(proof.anchor) ? .verified
                : .invalid("anchor block \(proof.anchor.height) is not the final block at that height")
        }
        return proof.verifyAnchor(on: chain)
    }

    /// The active anchor blocks from height 1 up to `height`, for a proof that carries its chain:
    /// final ones from the store, newer ones from memory.
    public func activeBlocks(through height: UInt64) async throws -> [AnchorBlock] {
        guard height >= 1 else { return [] }
        let base = chain.base.height
        var out: [AnchorBlock] = []
        if base >= 1 {
            let top = min(base, height)
            out = try await store.offloadAnchorWork { try $0.finalAnchorBlocks(heights: 1...top) }.map { try AnchorBlock(encoded: $0) }
        }
        if height > base { out += ((base + 1)...height).compactMap { chain.activeEntry(at: $0)?.block } }
        return out
    }

    /// `proof` carried to the first active anchor block committing its segment, when there is one.
    public func anchored(_ proof: ReadingProof) async throws -> AnchoredProof? {
        guard let block = proof.block else { return nil }
        let anchor: AnchorBlock
        let committedHeight: UInt64
        if let entry = chain.anchor(owner: block.owner, segmentHeight: block.height), let b = entry.block, let committed = entry.state.heads[block.owner] {
            (anchor, committedHeight) = (b, committed.height)
        } else {
            // Committed by a block that is already final (no longer in memory): the store's index.
            let (owner, height) = (block.owner, block.height)
            guard let found = try await store.offloadAnchorWork({ try $0.finalAnchorCommitting(owner: owner, segmentHeight: height) }) else { return nil }
            (anchor, committedHeight) = (try AnchorBlock(encoded: found.encoded), found.committed)
        }
        let range = (block.height + 1)...max(block.height + 1, committedHeight)
        let segments = committedHeight > block.height ? try await store.offloadAnchorWork { try $0.blocks(heights: range) } : []
        return AnchoredProof(reading: proof, segments: segments, anchor: anchor)
    }
}

/// A stored anchor block that no longer verifies: the node refuses to start on it.
public struct AnchorStoreError: Error, CustomStringConvertible, Sendable {
    public let height: UInt64
    public let reason: String
    public var description: String {
        "the stored anchor chain does not verify: anchor block at height \(height): \(reason); refusing to run on it"
    }
}
