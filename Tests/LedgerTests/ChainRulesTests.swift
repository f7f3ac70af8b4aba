import FlowchainCrypto
import FlowchainTesting
import Ledger
import Testing

@Suite("Segment chain rules")
struct ChainRulesTests {
    static let owner = Fixtures.key(2)

    static func block(height: UInt64, prev: Digest32, time: Int64, readings: [Reading], key: PrivateKey = owner) throws -> BlockHeader {
        try BlockHeader(height: height, prev: prev, time: time,
                        merkleRoot: MerkleTree.root(of: readings.map { MerkleTree.leafHash($0.encoded) }),
                        count: UInt32(readings.count), signedBy: key)
    }

    let readings: [Reading]
    let genesis: BlockHeader

    init() throws {
        readings = try (1...3).map { try Fixtures.reading(Self.owner, seq: UInt64($0)) }
        genesis = try Self.block(height: 0, prev: .zero, time: 1000, readings: readings)
    }

    @Test func aGoodChainPasses() throws {
        try ChainRules.check(genesis, parent: nil, owner: Self.owner.publicKey, readings: readings)
        let next = try Self.block(height: 1, prev: genesis.hash, time: 1000, readings: readings)
        try ChainRules.check(next, parent: genesis, owner: Self.owner.publicKey, readings: readings)
    }

    @Test func eachBrokenRuleIsNamed() throws {
        let pk = Self.owner.publicKey
        let cases: [(BlockHeader, String)] = [
            (try Self.block(height: 2, prev: genesis.hash, time: 1000, readings: readings), "height is not parent height + 1"),
            (try Self.block(height: 1, prev: SHA256.hash([1]), time: 1000, readings: readings), "prev does not match"),
            (try Self.block(height: 1, prev: genesis.hash, time: 999, readings: readings), "before its parent"),
            (try Self.block(height: 1, prev: genesis.hash, time: 1000, readings: readings, key: Fixtures.key(3)), "is not this chain's owner"),
            (try Self.block(height: 1, prev: genesis.hash, time: 1000, readings: Array(readings.prefix(2))), "header says 2 readings, 3 found"),
        ]
        for (header, expected) in cases {
            #expect {
                try ChainRules.check(header, parent: genesis, owner: pk, readings: readings)
            } throws: { error in
                (error as? ChainViolation)?.rule.contains(expected) == true
            }
        }
        let swapped = [readings[1], readings[0], readings[2]]
        #expect(throws: ChainViolation(height: 0, "Merkle root does not match its readings")) {
            try ChainRules.check(genesis, parent: nil, owner: pk, readings: swapped)
        }
    }

    @Test func aForgedSignatureIsRejected() throws {
        var bytes = genesis.encoded
        bytes[bytes.count - 1] ^= 0x40
        let forged = try BlockHeader(encoded: bytes)
        #expect(throws: ChainViolation(height: 0, "owner signature does not verify")) {
            try ChainRules.check(forged, parent: nil, owner: Self.owner.publicKey)
        }
    }

    @Test func proofsVerifyOfflineAndNameTheirFailure() throws {
        let leaves = readings.map { MerkleTree.leafHash($0.encoded) }
        let proof = ReadingProof(reading: readings[1], block: genesis, merkle: MerkleTree.proof(for: 1, in: leaves))
        #expect(proof.verify(owner: Self.owner.publicKey) == .valid(height: 0))
        #expect(proof.verify(owner: Fixtures.key(9).publicKey) != .valid(height: 0))
        let wrongLeaf = ReadingProof(reading: readings[0], block: genesis, merkle: MerkleTree.proof(for: 1, in: leaves))
        #expect(wrongLeaf.verify() == .invalid("the Merkle path does not lead to the root of block 0"))
        let pending = ReadingProof(reading: readings[0], block: nil, merkle: nil)
        guard case .invalid = pending.verify() else { Issue.record("a pending reading must not verify"); return }
    }
}
