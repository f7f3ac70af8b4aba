public import FlowchainCrypto

/// Where the anchor chain keeps its blocks: the node's durable store implements it (`Ledger`'s
/// `LedgerStore`), so `Consensus` holds its rules without depending on SQLite. Blocks and the
/// checkpoint are opaque bytes here; `Consensus` owns their formats.
public protocol AnchorStorage: Sendable {
    /// Stores an anchor block's encoding (idempotent).
    func saveAnchorBlock(hash: Digest32, height: UInt64, encoded: [UInt8]) throws
    /// Stored anchor blocks above `height` (all when nil), by height.
    func anchorBlocks(above height: UInt64?) throws -> [(height: UInt64, encoded: [UInt8])]
    /// Stored anchor blocks with heights in `range` (final or not), by height.
    func anchorBlocks(heights range: ClosedRange<UInt64>) throws -> [(height: UInt64, encoded: [UInt8])]
    /// The highest stored anchor block's height (nil: none stored).
    func highestAnchorHeight() throws -> UInt64?
    /// Records blocks that became final and the newest one's checkpoint, in one transaction.
    func saveFinalAnchors(_ finals: [FinalAnchor], checkpoint: [UInt8]) throws
    func anchorCheckpoint() throws -> [UInt8]?
    /// The hash of the final anchor block at `height`, if it is final.
    func finalAnchorHash(height: UInt64) throws -> Digest32?
    func finalAnchorBlocks(heights range: ClosedRange<UInt64>) throws -> [[UInt8]]
    /// The lowest final anchor block committing `owner`'s segment at or above `segmentHeight`.
    func finalAnchorCommitting(owner: PublicKey, segmentHeight: UInt64) throws -> (height: UInt64, encoded: [UInt8], committed: UInt64)?
    /// This node's own segment blocks at `heights` and its segment tip (what an anchor commits).
    func blocks(heights range: ClosedRange<UInt64>) throws -> [BlockHeader]
    func tip() throws -> BlockHeader?
    /// Runs `body` off the cooperative pool (storage calls block on disk).
    func offloadAnchorWork<T: Sendable>(_ body: @escaping @Sendable (any AnchorStorage) throws -> T) async throws -> T
}

/// A final anchor block to record: its height and hash, and the segment heads it commits.
public struct FinalAnchor: Sendable {
    public let height: UInt64
    public let hash: Digest32
    public let commits: [(owner: PublicKey, segmentHeight: UInt64)]
    public init(height: UInt64, hash: Digest32, commits: [(owner: PublicKey, segmentHeight: UInt64)]) {
        self.height = height
        self.hash = hash
        self.commits = commits
    }
}
