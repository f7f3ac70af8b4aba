@testable import Consensus
import FlowchainCrypto
import FlowchainTesting
import Ledger
import Testing

/// Forged or malformed anchor blocks are rejected, each naming its height and rule.
@Suite("Anchor chain rules")
struct AnchorRulesTests {
    static let alice = Fixtures.key(10), bob = Fixtures.key(11), mallory = Fixtures.key(12)
    static let genesis = Genesis(chainID: "rules-test", time: 1_700_000_000, anchorInterval: 10, bondDelay: 2,
                                 accounts: [.init(key: alice.publicKey, stake: 60, balance: 100), .init(key: bob.publicKey, stake: 40)])

    /// The first second after `after` at which `key` wins the kernel on `chain`'s tip.
    static func winningTime(_ chain: AnchorChain, _ key: PrivateKey, after: Int64? = nil) -> Int64 {
        var t = (after ?? chain.tip.time) + 1
        while chain.mint(key: key, at: t) == nil { t += 1 }
        return t
    }

    /// A block by `key` on the tip with every field overridable, signed by `signer`.
    static func forge(_ chain: AnchorChain, key: PrivateKey, time: Int64, target: UInt256? = nil, modifier: Digest32? = nil,
                      heads: [BlockHeader] = [], records: [StakeRecord] = [], chainID: Digest32? = nil, height: UInt64? = nil) throws -> AnchorBlock {
        let tip = chain.tip
        return try AnchorBlock(
            chain: chainID ?? chain.genesisHash, height: height ?? tip.height + 1, prev: tip.hash, time: time,
            target: target ?? chain.expectedTarget(after: tip),
            stakeModifier: modifier ?? AnchorChain.childModifier(of: tip),
            heads: heads, records: records, signedBy: key)
    }

    func rejection(_ chain: AnchorChain, _ block: AnchorBlock, now: Int64) -> String? {
        do {
            try chain.accept(block, now: now)
            return nil
        } catch {
            return error.rule
        }
    }

    @Test func aValidChainIsAcceptedAndEncodingsRoundTrip() throws {
        let chain = AnchorChain(genesis: Self.genesis)
        for _ in 0..<20 {
            let key = [Self.alice, Self.bob].min { Self.winningTime(chain, $0) < Self.winningTime(chain, $1) }!
            let t = Self.winningTime(chain, key)
            let block = try #require(chain.mint(key: key, at: t))
            #expect(try AnchorBlock(encoded: block.encoded) == block)
            #expect(try chain.accept(block, now: t) == .extended)
        }
        #expect(chain.tip.height == 20)
    }

    @Test func forgedBlocksAreRejected() throws {
        let chain = AnchorChain(genesis: Self.genesis)
        let t = Self.winningTime(chain, Self.alice)
        let good = try Self.forge(chain, key: Self.alice, time: t)

        var badSig = good.encoded
        badSig[badSig.count - 3] ^= 1
        #expect(rejection(chain, try AnchorBlock(encoded: badSig), now: t) == "minter signature does not verify")

        let losing = (t + 1...t + 10_000).first { !Kernel.check(modifier: good.stakeModifier, key: Self.alice.publicKey, time: $0, target: good.target, stake: 60) }!
        #expect(rejection(chain, try Self.forge(chain, key: Self.alice, time: losing), now: losing) == "kernel hash does not meet target × stake")

        #expect(rejection(chain, good, now: t - 16)?.contains("ahead of local time") == true)
        #expect(rejection(chain, try Self.forge(chain, key: Self.alice, time: chain.tip.time), now: t)?.contains("is not after its parent's") == true)
        #expect(rejection(chain, try Self.forge(chain, key: Self.alice, time: t, target: good.target.multipliedSaturating(by: 2)), now: t)?.hasPrefix("wrong target") == true)
        #expect(rejection(chain, try Self.forge(chain, key: Self.alice, time: t, modifier: SHA256.hash([9])), now: t) == "stake modifier does not derive from the parent")
        #expect(rejection(chain, try Self.forge(chain, key: Self.mallory, time: t), now: t) == "unknown staker \(Self.mallory.publicKey)")
        #expect(rejection(chain, try Self.forge(chain, key: Self.alice, time: t, height: 5), now: t)?.hasPrefix("height is not") == true)
        #expect(throws: AnchorViolation.self) { try chain.accept(try Self.forge(chain, key: Self.alice, time: t, chainID: SHA256.hash([7])), now: t) }
        #expect(try chain.accept(good, now: t) == .extended, "the honest block still goes in")
    }

    @Test func stakeCannotBeSpentTwice() throws {
        let chain = AnchorChain(genesis: Self.genesis)
        let g = chain.genesisHash
        let bond1 = try StakeRecord(kind: .bond, chain: g, amount: 80, nonce: 1, signedBy: Self.alice)
        let bond2 = try StakeRecord(kind: .bond, chain: g, amount: 80, nonce: 2, signedBy: Self.alice)
        let t = Self.winningTime(chain, Self.alice)
        #expect(rejection(chain, try Self.forge(chain, key: Self.alice, time: t, records: [bond1, bond2]), now: t)?.contains("spent twice") == true)
        let replay = try StakeRecord(kind: .bond, chain: g, amount: 10, nonce: 1, signedBy: Self.alice)
        #expect(rejection(chain, try Self.forge(chain, key: Self.alice, time: t, records: [bond1, replay]), now: t)?.contains("nonce 1 is not 2") == true)
        let unbond = try StakeRecord(kind: .unbond, chain: g, amount: 41, nonce: 1, signedBy: Self.bob)
        #expect(rejection(chain, try Self.forge(chain, key: Self.alice, time: t, records: [unbond]), now: t)?.contains("unbonds 41 but the stake is 40") == true)
        // A valid bond moves balance now and adds stake after the bond delay.
        try chain.accept(try Self.forge(chain, key: Self.alice, time: t, records: [bond1]), now: t)
        #expect(chain.tip.state.accounts[Self.alice.publicKey]?.balance == 20)
        #expect(chain.tip.state.stake(of: Self.alice.publicKey) == 60)
        for _ in 0..<2 {
            let key = [Self.alice, Self.bob].min { Self.winningTime(chain, $0) < Self.winningTime(chain, $1) }!
            let tt = Self.winningTime(chain, key)
            try chain.accept(#require(chain.mint(key: key, at: tt)), now: tt)
        }
        #expect(chain.tip.state.stake(of: Self.alice.publicKey) == 140)
    }

    @Test func malformedHeadsAreRejected() throws {
        let chain = AnchorChain(genesis: Self.genesis)
        let t = Self.winningTime(chain, Self.alice)
        let node = Fixtures.key(20)
        let h1 = try BlockHeader(height: 3, prev: .zero, time: 1, merkleRoot: SHA256.hash([1]), count: 2, signedBy: node)
        let h2 = try BlockHeader(height: 4, prev: h1.hash, time: 2, merkleRoot: SHA256.hash([2]), count: 2, signedBy: node)
        #expect(rejection(chain, try Self.forge(chain, key: Self.alice, time: t, heads: [h1, h2]), now: t)?.contains("a second head for owner") == true)
        var forged = h1.encoded
        forged[forged.count - 1] ^= 1
        #expect(rejection(chain, try Self.forge(chain, key: Self.alice, time: t, heads: [try BlockHeader(encoded: forged)]), now: t)?.contains("not signed by its owner") == true)
        let empty = try BlockHeader(height: 3, prev: .zero, time: 1, merkleRoot: .zero, count: 0, signedBy: node)
        #expect(rejection(chain, try Self.forge(chain, key: Self.alice, time: t, heads: [empty]), now: t)?.contains("empty segment block") == true)
        try chain.accept(try Self.forge(chain, key: Self.alice, time: t, heads: [h2]), now: t)
        let t2 = Self.winningTime(chain, Self.alice)
        #expect(rejection(chain, try Self.forge(chain, key: Self.alice, time: t2, heads: [h1]), now: t2)?.contains("not above the committed 4") == true)
        #expect(chain.anchor(owner: node.publicKey, segmentHeight: 3)?.height == 1, "segment block 3 is anchored by the block that committed 4")
        #expect(chain.anchor(owner: node.publicKey, segmentHeight: 5) == nil)
    }

    @Test func truncatedAndTrailingEncodingsAreRejected() throws {
        let chain = AnchorChain(genesis: Self.genesis)
        let t = Self.winningTime(chain, Self.alice)
        let block = try Self.forge(chain, key: Self.alice, time: t)
        #expect(throws: Ledger.DecodingError.self) { try AnchorBlock(encoded: Array(block.encoded.dropLast())) }
        #expect(throws: Ledger.DecodingError.trailingBytes(count: 1)) { try AnchorBlock(encoded: block.encoded + [0]) }
    }
}
