public import FlowchainCrypto
public import LedgerModel

/// Verifies a node's whole stored anchor chain from its genesis (`flowchain check`), not only the
/// blocks above the checkpoint a start replays: every stored block against every rule, the
/// recorded final blocks and checkpoint against the replay, and each segment head this node's
/// anchor blocks commit against the node's own ledger, so a rewritten or truncated segment chain
/// is found even when every segment block's own signature verifies.
public enum AnchorAudit {
    public struct Summary: Sendable, Equatable {
        /// Stored anchor blocks replayed through the rules.
        public var blocks = 0
        /// Of them, blocks on branches that forked below a final block (ignored, as a node ignores them).
        public var stale = 0
        /// The replayed chain's tip and its final height.
        public var tipHeight: UInt64 = 0
        public var finalHeight: UInt64 = 0
        /// Segment heads of `owner` the anchor blocks commit, each found equal in the ledger.
        public var headsChecked = 0
    }

    /// - Parameters:
    ///   - owner: whose segment heads to compare with `store`'s segment blocks (the ledger's owner).
    ///   - now: local time in seconds; a stored block may be newer (its clock was checked when it
    ///     was accepted), as a node's start allows.
    ///   - keep: the finality depth the node ran with.
    ///   - progress: called with (heights done, highest height) after each page of heights.
    public static func verify(genesis: Genesis, store: any AnchorStorage, owner: PublicKey?, now: Int64, keep: UInt64 = AnchorChain.defaultKeep,
                              progress: (UInt64, UInt64) -> Void = { _, _ in }) throws -> Summary {
        var summary = Summary()
        let chain = AnchorChain(genesis: genesis, keep: keep)
        var checkpoint: AnchorChain.Entry? = nil
        if let bytes = try store.anchorCheckpoint() {
            do { checkpoint = try AnchorCheckpoint.decode(bytes) } catch {
                throw AnchorStoreError(height: 0, reason: "the stored checkpoint does not decode (\(error))")
            }
        }
        guard let top = try store.highestAnchorHeight() else {
            if let checkpoint { throw AnchorStoreError(height: checkpoint.height, reason: "a checkpoint is stored but no anchor block") }
            return summary
        }
        var checkpointSeen = checkpoint == nil || checkpoint?.height == 0
        let page: UInt64 = 2_000
        var from: UInt64 = 1
        while from <= top {
            let to = min(top, from + page - 1)
            for (height, encoded) in try store.anchorBlocks(heights: from...to) {
                let block: AnchorBlock
                do { block = try AnchorBlock(encoded: encoded) } catch {
                    throw AnchorStoreError(height: height, reason: "does not decode (\(error))")
                }
                guard block.height == height else { throw AnchorStoreError(height: height, reason: "says it is at height \(block.height)") }
                let outcome: AnchorChain.Outcome
                do { outcome = try chain.accept(block, now: max(now, block.time)) } catch {
                    throw AnchorStoreError(height: height, reason: error.rule)
                }
                summary.blocks += 1
                switch outcome {
                case .orphan: throw AnchorStoreError(height: height, reason: "its parent is missing from the store")
                case .stale: summary.stale += 1; continue
                case .duplicate, .sideChain, .extended, .reorganized: break
                }
                if let owner { summary.headsChecked += try checkHeads(of: block, owner: owner, store: store) }
                for final in chain.finalized() {
                    if let recorded = try store.finalAnchorHash(height: final.height), recorded != final.hash {
                        throw AnchorStoreError(height: final.height, reason: "recorded as final is block \(recorded), but the chain's block there is \(final.hash)")
                    }
                    if let c = checkpoint, c.height == final.height {
                        guard c.hash == final.hash else {
                            throw AnchorStoreError(height: c.height, reason: "the stored checkpoint names block \(c.hash), but the chain's block there is \(final.hash)")
                        }
                        checkpointSeen = true
                    }
                }
            }
            progress(to, top)
            from = to + 1
        }
        if let c = checkpoint, !checkpointSeen {
            throw AnchorStoreError(height: c.height, reason: "the stored checkpoint is above what the stored blocks make final (\(chain.base.height))")
        }
        summary.tipHeight = chain.tip.height
        summary.finalHeight = chain.base.height
        return summary
    }

    /// Compares the heads of `owner`'s segment that `block` commits with the ledger's blocks.
    static func checkHeads(of block: AnchorBlock, owner: PublicKey, store: any AnchorStorage) throws -> Int {
        var checked = 0
        for head in block.heads where head.owner == owner {
            guard let stored = try store.blocks(heights: head.height...head.height).first else {
                throw AnchorStoreError(height: block.height, reason: "commits this node's segment block \(head.height), which the ledger does not hold (its chain was cut short)")
            }
            guard stored == head else {
                throw AnchorStoreError(height: block.height, reason: "commits this node's segment block \(head.height) as \(head.hash), but the ledger's block \(head.height) is \(stored.hash)")
            }
            checked += 1
        }
        return checked
    }
}
