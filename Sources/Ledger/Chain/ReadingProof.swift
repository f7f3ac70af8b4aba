import FlowchainCrypto

/// Proof that a reading is in a signed segment block: reading → Merkle path → block header.
/// Verifies offline with no access to the store.
public struct ReadingProof: Sendable, Equatable {
    public let reading: Reading
    /// nil while the reading waits for its block.
    public let block: BlockHeader?
    public let merkle: MerkleProof?

    public init(reading: Reading, block: BlockHeader?, merkle: MerkleProof?) {
        self.reading = reading
        self.block = block
        self.merkle = merkle
    }

    public enum Verdict: Equatable, Sendable {
        case valid(height: UInt64)
        case invalid(String)
    }

    /// Checks the reading's signature, its Merkle path to the block's root and the block's
    /// signature; with `owner`, also that the block was signed by that node.
    public func verify(owner: PublicKey? = nil) -> Verdict {
        guard reading.hasValidSignature else { return .invalid("the reading's signature does not verify against its signer \(reading.signer)") }
        guard let block, let merkle else { return .invalid("the reading is stored but not yet in a block; try again after the next block") }
        guard merkle.count == block.count else {
            return .invalid("the Merkle proof is for \(merkle.count) leaves but block \(block.height) holds \(block.count)")
        }
        guard let root = merkle.root(from: MerkleTree.leafHash(reading.encoded)) else {
            return .invalid("the Merkle proof is malformed (index \(merkle.index) of \(merkle.count) with \(merkle.siblings.count) siblings)")
        }
        guard root == block.merkleRoot else { return .invalid("the Merkle path does not lead to the root of block \(block.height)") }
        guard block.hasValidSignature else { return .invalid("the signature of block \(block.height) does not verify") }
        if let owner, block.owner != owner {
            return .invalid("block \(block.height) is signed by \(block.owner), not by the expected node \(owner)")
        }
        return .valid(height: block.height)
    }
}
