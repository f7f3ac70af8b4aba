public import FlowchainCrypto

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

extension ReadingProof {
    /// The proof as a self-contained JSON document (`flowchain-proof/1`): the exact encodings in
    /// hex, so it verifies anywhere with no access to the node.
    public struct Portable: Codable, Sendable, Equatable {
        public static let formatName = "flowchain-proof/1"

        public struct Path: Codable, Sendable, Equatable {
            public let index: UInt32
            public let count: UInt32
            public let siblings: [Digest32]
        }

        /// The extension to the anchor chain: the anchor block committing a segment head at or
        /// above the reading's block, and the segment headers that chain from one to the other.
        public struct Anchor: Codable, Sendable, Equatable {
            /// Hex of the anchor block's encoding.
            public let block: String
            /// Hex of the segment headers after the reading's block, up to the committed head.
            public let segments: [String]
            /// Hex of every anchor block from height 1 up to and including `block`, when asked for:
            /// with the chain's genesis file a verifier replays them through every rule (kernel,
            /// stake, targets, signatures) and so knows `block` was minted with stake.
            public var chain: [String]?

            public init(block: String, segments: [String], chain: [String]? = nil) {
                self.block = block
                self.segments = segments
                self.chain = chain
            }
        }

        public let format: String
        /// Hex of the reading's canonical encoding.
        public let reading: String
        /// Hex of the block header's encoding; nil while the reading waits for its block.
        public let block: String?
        public let merkle: Path?
        /// nil until an anchor block commits the reading's segment.
        public var anchor: Anchor? = nil

        enum CodingKeys: String, CodingKey { case format, reading, block, merkle, anchor }

        /// Absent parts are written as explicit nulls, so clients can test for them by key.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(format, forKey: .format)
            try c.encode(reading, forKey: .reading)
            try c.encode(block, forKey: .block)
            try c.encode(merkle, forKey: .merkle)
            try c.encode(anchor, forKey: .anchor)
        }
    }

    public var portable: Portable {
        Portable(
            format: Portable.formatName,
            reading: Hex.encode(reading.encoded),
            block: block.map { Hex.encode($0.encoded) },
            merkle: merkle.map { Portable.Path(index: $0.index, count: $0.count, siblings: $0.siblings) })
    }

    /// Rebuilds a proof from its portable form; a malformed document is a `DecodingError` naming the part.
    public init(portable p: Portable) throws {
        guard p.format == Portable.formatName else {
            throw DecodingError.invalid(field: "format", reason: "expected \(Portable.formatName), got \(p.format)")
        }
        guard let readingBytes = Hex.decode(p.reading) else { throw DecodingError.invalid(field: "reading", reason: "not hex") }
        let reading = try Reading(encoded: readingBytes)
        var block: BlockHeader? = nil
        if let hex = p.block {
            guard let bytes = Hex.decode(hex) else { throw DecodingError.invalid(field: "block", reason: "not hex") }
            block = try BlockHeader(encoded: bytes)
        }
        self.init(reading: reading, block: block, merkle: p.merkle.map { MerkleProof(index: $0.index, count: $0.count, siblings: $0.siblings) })
    }
}
