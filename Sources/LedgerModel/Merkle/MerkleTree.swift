public import FlowchainCrypto

/// A binary Merkle tree over reading encodings with domain-separated hashes:
/// leaf = SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ left ‖ right).
///
/// An odd node at the end of a level is promoted unchanged rather than paired with a copy of
/// itself, so two different leaf lists can never share a root (the duplicate-last-leaf flaw).
public enum MerkleTree {
    public static func leafHash<C: Collection>(_ data: C) -> Digest32 where C.Element == UInt8 {
        var h = SHA256.Hasher()
        h.update([UInt8(0)])
        h.update(Array(data))
        return h.finalize()
    }

    public static func nodeHash(_ left: Digest32, _ right: Digest32) -> Digest32 {
        var buffer = [UInt8](repeating: 1, count: 65)
        left.withUnsafeBytes { buffer.replaceSubrange(1..<33, with: $0) }
        right.withUnsafeBytes { buffer.replaceSubrange(33..<65, with: $0) }
        return SHA256.hash(buffer)
    }

    /// The root of `leaves` (already leaf-hashed); `Digest32.zero` for no leaves.
    public static func root(of leaves: [Digest32]) -> Digest32 {
        guard !leaves.isEmpty else { return .zero }
        var level = leaves
        while level.count > 1 { level = next(level) }
        return level[0]
    }

    /// The proof that leaf `index` of `leaves` is under `root(of: leaves)`.
    public static func proof(for index: Int, in leaves: [Digest32]) -> MerkleProof {
        precondition(index >= 0 && index < leaves.count, "leaf index out of range")
        var siblings: [Digest32] = []
        var level = leaves
        var i = index
        while level.count > 1 {
            if i % 2 == 1 {
                siblings.append(level[i - 1])
            } else if i + 1 < level.count {
                siblings.append(level[i + 1])
            }
            level = next(level)
            i /= 2
        }
        return MerkleProof(index: UInt32(index), count: UInt32(leaves.count), siblings: siblings)
    }

    private static func next(_ level: [Digest32]) -> [Digest32] {
        var out: [Digest32] = []
        out.reserveCapacity((level.count + 1) / 2)
        var i = 0
        while i + 1 < level.count {
            out.append(nodeHash(level[i], level[i + 1]))
            i += 2
        }
        if i < level.count { out.append(level[i]) }
        return out
    }
}

/// An inclusion proof: the leaf's position, the tree size and the sibling hashes bottom-up.
/// Sides are derived from `index` and `count`, so a proof cannot claim a different position.
public struct MerkleProof: Hashable, Sendable, Codable {
    public let index: UInt32
    public let count: UInt32
    public let siblings: [Digest32]

    public init(index: UInt32, count: UInt32, siblings: [Digest32]) {
        self.index = index
        self.count = count
        self.siblings = siblings
    }

    /// The root this proof leads to from `leaf`, or nil when the proof's shape is inconsistent.
    public func root(from leaf: Digest32) -> Digest32? {
        guard count > 0, index < count else { return nil }
        var hash = leaf
        var i = Int(index)
        var n = Int(count)
        var used = 0
        while n > 1 {
            if i % 2 == 1 {
                guard used < siblings.count else { return nil }
                hash = MerkleTree.nodeHash(siblings[used], hash)
                used += 1
            } else if i + 1 < n {
                guard used < siblings.count else { return nil }
                hash = MerkleTree.nodeHash(hash, siblings[used])
                used += 1
            }
            n = (n + 1) / 2
            i /= 2
        }
        return used == siblings.count ? hash : nil
    }

    public func verifies(leaf: Digest32, root expected: Digest32) -> Bool { root(from: leaf) == expected }
}
