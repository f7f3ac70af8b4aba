import FlowchainCrypto
import FlowchainTesting
import Ledger
import Testing

@Suite("Merkle tree and proofs")
struct MerkleTests {
    static func leaves(_ n: Int) -> [Digest32] { (0..<n).map { MerkleTree.leafHash(Array("leaf-\($0)".utf8)) } }

    @Test(arguments: Array(1...33) + [64, 100, 257])
    func everyLeafProvesAgainstTheRoot(n: Int) {
        let leaves = Self.leaves(n)
        let root = MerkleTree.root(of: leaves)
        for i in 0..<n {
            let proof = MerkleTree.proof(for: i, in: leaves)
            #expect(proof.verifies(leaf: leaves[i], root: root), "leaf \(i) of \(n)")
            if n > 1 {
                #expect(!proof.verifies(leaf: leaves[(i + 1) % n], root: root), "another leaf must not verify at \(i)")
            }
        }
    }

    @Test func shapeMatchesTheDefinitionForThreeLeaves() {
        let l = Self.leaves(3)
        // Odd node promoted, not duplicated.
        #expect(MerkleTree.root(of: l) == MerkleTree.nodeHash(MerkleTree.nodeHash(l[0], l[1]), l[2]))
        #expect(MerkleTree.root(of: [l[0]]) == l[0])
        #expect(MerkleTree.root(of: []) == .zero)
    }

    @Test func duplicatingTheLastLeafChangesTheRoot() {
        let l = Self.leaves(3)
        #expect(MerkleTree.root(of: l) != MerkleTree.root(of: l + [l[2]]))
    }

    @Test func leafAndNodeHashesAreDomainSeparated() {
        let a = MerkleTree.leafHash(Array("a".utf8)), b = MerkleTree.leafHash(Array("b".utf8))
        // An inner node's preimage presented as leaf data must not give the same hash.
        #expect(MerkleTree.leafHash(a.bytes + b.bytes) != MerkleTree.nodeHash(a, b))
        #expect(MerkleTree.leafHash(Array("a".utf8)) != SHA256.hash(Array("a".utf8)))
    }

    @Test func tamperedProofsFail() {
        let leaves = Self.leaves(11)
        let root = MerkleTree.root(of: leaves)
        let proof = MerkleTree.proof(for: 6, in: leaves)
        var siblings = proof.siblings
        siblings[1] = SHA256.hash([1])
        #expect(!MerkleProof(index: 6, count: 11, siblings: siblings).verifies(leaf: leaves[6], root: root))
        #expect(!MerkleProof(index: 7, count: 11, siblings: proof.siblings).verifies(leaf: leaves[6], root: root))
        #expect(MerkleProof(index: 6, count: 11, siblings: proof.siblings + [root]).root(from: leaves[6]) == nil)
        #expect(MerkleProof(index: 6, count: 11, siblings: Array(proof.siblings.dropLast())).root(from: leaves[6]) == nil)
        #expect(MerkleProof(index: 11, count: 11, siblings: proof.siblings).root(from: leaves[6]) == nil)
        #expect(MerkleProof(index: 0, count: 0, siblings: []).root(from: leaves[0]) == nil)
    }
}
