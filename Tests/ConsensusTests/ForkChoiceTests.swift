@testable import Consensus
import FlowchainCrypto
import FlowchainTesting
import Ledger
import Testing

@Suite("Fork choice and reorganisation")
struct ForkChoiceTests {
    static let a = Fixtures.key(30), b = Fixtures.key(31)
    static let genesis = Genesis(chainID: "forks", time: 1_700_000_000, accounts: [.init(key: a.publicKey, stake: 50), .init(key: b.publicKey, stake: 50)])

    /// Extends `chain` by `n` blocks minted by `key` only.
    static func grow(_ chain: AnchorChain, by n: Int, key: PrivateKey) throws -> [AnchorBlock] {
        var out: [AnchorBlock] = []
        for _ in 0..<n {
            let t = AnchorRulesTests.winningTime(chain, key)
            let block = try #require(chain.mint(key: key, at: t))
            try chain.accept(block, now: t)
            out.append(block)
        }
        return out
    }

    @Test func theHeavierBranchWinsAndTheSwitchIsReported() throws {
        let left = AnchorChain(genesis: Self.genesis), right = AnchorChain(genesis: Self.genesis)
        let common = try Self.grow(left, by: 3, key: Self.a)
        for blk in common { try right.accept(blk, now: blk.time) }
        let short = try Self.grow(left, by: 2, key: Self.a)
        let long = try Self.grow(right, by: 5, key: Self.b)
        #expect(right.tip.weight > left.tip.weight)
        var outcomes: [AnchorChain.Outcome] = []
        for blk in long { outcomes.append(try left.accept(blk, now: blk.time + 100)) }
        // The long branch takes over as soon as it is heavier: that block reports the switch.
        guard let i = outcomes.firstIndex(where: { if case .reorganized = $0 { true } else { false } }),
              case let .reorganized(disconnected, connected) = outcomes[i] else { Issue.record("no reorganisation in \(outcomes)"); return }
        #expect(outcomes[..<i].allSatisfy { $0 == .sideChain })
        #expect(outcomes[(i + 1)...].allSatisfy { $0 == .extended })
        #expect(disconnected == short.reversed().map(\.hash))
        #expect(connected == long[...i].map(\.hash))
        #expect(left.tip.hash == right.tip.hash)
        #expect(left.activeEntry(at: 4)?.hash == long[0].hash)
        // The old branch is still known, as a side chain.
        #expect(left.entry(short[1].hash) != nil)
    }

    @Test func equalWorkIsDecidedByTheLowerKernelHash() throws {
        let x = AnchorChain(genesis: Self.genesis), y = AnchorChain(genesis: Self.genesis)
        let bx = try Self.grow(x, by: 1, key: Self.a)[0]
        let by = try Self.grow(y, by: 1, key: Self.b)[0]
        #expect(bx.target == by.target, "same parent, same target, same work")
        try x.accept(by, now: by.time)
        try y.accept(bx, now: bx.time)
        let kernel = { (b: AnchorBlock) in Kernel.kernelDigest(modifier: b.stakeModifier, key: b.minter, time: b.time) }
        let winner = kernel(bx) < kernel(by) ? bx.hash : by.hash
        #expect(x.tip.hash == winner && y.tip.hash == winner, "both nodes settle on the lower kernel hash")
    }

    /// The stake-grinding attack: a winner tries many variants of its block (other heads, records,
    /// content) hoping one also makes it win the next block. None changes who may mint next.
    @Test func aMinterCannotRaiseItsChanceOfWinningTheNextBlockByChangingItsBlock() throws {
        let chain = AnchorChain(genesis: Self.genesis)
        _ = try Self.grow(chain, by: 2, key: Self.a)
        let parent = chain.tip
        let t = AnchorRulesTests.winningTime(chain, Self.a)
        // Variants of one winning block: different segment heads committed.
        var variants: [AnchorBlock] = []
        for n in 0..<16 {
            let segment = try BlockHeader(height: UInt64(n), prev: .zero, time: Int64(n), merkleRoot: SHA256.hash([UInt8(n)]), count: 1, signedBy: Self.a)
            variants.append(try #require(chain.mint(key: Self.a, at: t, heads: n == 0 ? [] : [segment])))
        }
        #expect(Set(variants.map(\.hash)).count == 16, "sixteen different blocks")
        let entries = try variants.map { try chain.validate($0, parent: parent, now: t) }
        let modifiers = Set(entries.map { AnchorChain.childModifier(of: $0) })
        #expect(modifiers.count == 1, "every variant leads to the same next modifier")
        // So the same stakers win the same seconds after each variant: the winner gains nothing.
        let target = chain.expectedTarget(after: entries[0])
        let winners = { (e: AnchorChain.Entry) -> [Bool] in
            (t + 1...t + 600).flatMap { time in
                [Self.a, Self.b].map { key in
                    Kernel.check(modifier: AnchorChain.childModifier(of: e), key: key.publicKey, time: time, target: target, stake: e.state.stake(of: key.publicKey))
                }
            }
        }
        let first = winners(entries[0])
        #expect(first.contains(true), "someone can mint in the next ten minutes")
        for e in entries.dropFirst() { #expect(winners(e) == first) }
    }

    @Test func orphansWaitForTheirParent() throws {
        let source = AnchorChain(genesis: Self.genesis)
        let blocks = try Self.grow(source, by: 4, key: Self.a)
        let late = AnchorChain(genesis: Self.genesis)
        #expect(try late.accept(blocks[3], now: blocks[3].time) == .orphan(missing: blocks[2].hash))
        #expect(try late.accept(blocks[2], now: blocks[3].time) == .orphan(missing: blocks[1].hash))
        try late.accept(blocks[0], now: blocks[3].time)
        #expect(try late.accept(blocks[1], now: blocks[3].time) == .extended)
        #expect(late.tip.hash == blocks[3].hash, "the waiting blocks connect once their parent arrives")
    }

    @Test func nodesWithDifferentGenesisRefuseEachOther() throws {
        let other = Genesis(chainID: "forks-2", time: Self.genesis.time, accounts: Self.genesis.accounts)
        let mine = AnchorChain(genesis: Self.genesis), theirs = AnchorChain(genesis: other)
        let blk = try Self.grow(theirs, by: 1, key: Self.a)[0]
        #expect(throws: AnchorViolation.self) { try mine.accept(blk, now: blk.time) }
        #expect(Self.genesis.hash != other.hash)
    }
}
