public import FlowchainCrypto

/// A violation of the segment chain's rules, naming the block and the rule.
public struct ChainViolation: Error, Equatable, Sendable, CustomStringConvertible {
    public let height: UInt64
    public let rule: String

    public init(height: UInt64, _ rule: String) {
        self.height = height
        self.rule = rule
    }

    public var description: String { "block \(height): \(rule)" }
}

/// The rules every segment block obeys: it extends its parent (height + 1, prev = parent hash,
/// time not before the parent's), is signed by the chain's owner, and its Merkle root and count
/// match the readings it holds.
public enum ChainRules {
    /// Checks `header` against its parent (nil for the first block) and, when given, its readings.
    public static func check(
        _ header: BlockHeader, parent: BlockHeader?, owner: PublicKey, readings: [Reading]? = nil
    ) throws {
        let h = header.height
        if let parent {
            guard h == parent.height + 1 else { throw ChainViolation(height: h, "height is not parent height + 1 (\(parent.height) + 1)") }
            guard header.prev == parent.hash else { throw ChainViolation(height: h, "prev does not match the hash of block \(parent.height)") }
            guard header.time >= parent.time else { throw ChainViolation(height: h, "time \(header.time) is before its parent's \(parent.time)") }
        } else {
            guard h == 0 else { throw ChainViolation(height: h, "first block must have height 0") }
            guard header.prev == .zero else { throw ChainViolation(height: h, "first block must have an all-zero prev") }
        }
        guard header.owner == owner else { throw ChainViolation(height: h, "owner \(header.owner) is not this chain's owner \(owner)") }
        guard header.count > 0 else { throw ChainViolation(height: h, "block holds no readings") }
        guard header.hasValidSignature else { throw ChainViolation(height: h, "owner signature does not verify") }
        if let readings {
            guard readings.count == Int(header.count) else {
                throw ChainViolation(height: h, "header says \(header.count) readings, \(readings.count) found")
            }
            let root = MerkleTree.root(of: readings.map { MerkleTree.leafHash($0.encoded) })
            guard root == header.merkleRoot else { throw ChainViolation(height: h, "Merkle root does not match its readings") }
        }
    }
}
