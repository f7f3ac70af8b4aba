import FlowchainCrypto
import Foundation
import Ledger

/// The anchor chain of one running node: replays and re-validates the stored chain on start,
/// mints when this node's key wins the kernel, commits the node's segment head, stores every
/// accepted block, and extends reading proofs to the anchor.
public actor AnchorNode {
    public let chain: AnchorChain
    /// nil for an observer that never mints (e.g. `flowchain verify`).
    let key: PrivateKey?
    let store: LedgerStore

    /// Replays the stored anchor blocks through every rule; a block that fails stops the node.
    public init(genesis: Genesis, key: PrivateKey?, store: LedgerStore, now: Int64) throws {
        chain = AnchorChain(genesis: genesis)
        self.key = key
        self.store = store
        for (height, encoded) in try store.anchorBlocks() {
            let block: AnchorBlock
            do { block = try AnchorBlock(encoded: encoded) } catch {
                throw AnchorStoreError(height: height, reason: "does not decode (\(error))")
            }
            guard block.height == height else { throw AnchorStoreError(height: height, reason: "says it is at height \(block.height)") }
            do {
                if case .orphan = try chain.accept(block, now: now) {
                    throw AnchorStoreError(height: height, reason: "its parent is missing from the store")
                }
            } catch let v as AnchorViolation {
                throw AnchorStoreError(height: height, reason: v.rule)
            }
        }
    }

    public var tip: AnchorChain.Entry { chain.tip }

    /// True when `block` is on the heaviest anchor chain.
    public func isOnActiveChain(_ block: AnchorBlock) -> Bool { chain.isOnActiveChain(block) }

    /// Checks the kernel for this second; mints, stores and returns a block when it wins. The
    /// store is read and written on its I/O threads, never on the actor's.
    public func tick(now: Int64) async throws -> AnchorBlock? {
        guard let key else { return nil }
        // Most seconds nobody wins: check the kernel before touching the store.
        let parent = chain.tip
        let modifier = AnchorChain.childModifier(of: parent)
        guard now > parent.time, Kernel.check(modifier: modifier, key: key.publicKey, time: now, target: chain.expectedTarget(after: parent),
                                              stake: parent.state.stake(of: key.publicKey)) else { return nil }
        // This node's newest segment head, unless the tip already commits it. After a
        // reorganisation this re-commits heads that were only on the losing branch.
        var heads: [BlockHeader] = []
        let segmentTip = try await store.offload { try $0.tip() }
        guard chain.tip.hash == parent.hash else { return nil }   // the tip moved while we read
        if let head = segmentTip {
            let committed = chain.tip.state.heads[key.publicKey]?.height
            if committed.map({ head.height > $0 }) ?? true { heads = [head] }
        }
        guard let block = chain.mint(key: key, at: now, heads: heads) else { return nil }
        try chain.accept(block, now: now)
        try await store.offload { try $0.saveAnchorBlock(hash: block.hash, height: block.height, encoded: block.encoded) }
        return block
    }

    /// Accepts a block from elsewhere (a peer, later); stores it when valid.
    @discardableResult
    public func receive(_ block: AnchorBlock, now: Int64) async throws -> AnchorChain.Outcome {
        let outcome = try chain.accept(block, now: now)
        switch outcome {
        case .duplicate, .orphan: break
        default: try await store.offload { try $0.saveAnchorBlock(hash: block.hash, height: block.height, encoded: block.encoded) }
        }
        return outcome
    }

    /// How `proof`'s anchor block stands against this node's (trusted) chain.
    public func verifyAnchor(_ proof: AnchoredProof) -> AnchoredProof.AnchorVerdict { proof.verifyAnchor(on: chain) }

    /// The active anchor blocks from height 1 up to `height`, for a proof that carries its chain.
    public func activeBlocks(through height: UInt64) -> [AnchorBlock] {
        guard height >= 1 else { return [] }
        return (1...height).compactMap { chain.activeEntry(at: $0)?.block }
    }

    /// `proof` carried to the first active anchor block committing its segment, when there is one.
    public func anchored(_ proof: ReadingProof) async throws -> AnchoredProof? {
        guard let block = proof.block, let entry = chain.anchor(owner: block.owner, segmentHeight: block.height),
              let anchor = entry.block, let committed = entry.state.heads[block.owner] else { return nil }
        let range = (block.height + 1)...max(block.height + 1, committed.height)
        let segments = committed.height > block.height ? try await store.offload { try $0.blocks(heights: range) } : []
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
