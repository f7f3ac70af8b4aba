@testable import Consensus
import FlowchainCrypto
import FlowchainTesting
import Ledger
import Testing

/// The anchor chain stays bounded in memory however long it grows, restarts from a checkpoint, and
/// holds a bounded number of orphans, validated before they are kept.
@Suite("Anchor chain finality, checkpoints and orphans")
struct FinalityTests {
    static let a = Fixtures.key(50), b = Fixtures.key(51)
    static let genesis = Genesis(chainID: "finality", time: 1_700_000_000, anchorInterval: 1,
                                 accounts: [.init(key: a.publicKey, stake: 60), .init(key: b.publicKey, stake: 40)])

    static func grow(_ chain: AnchorChain, by n: Int, key: PrivateKey = a) throws -> [AnchorBlock] {
        try ForkChoiceTests.grow(chain, by: n, key: key)
    }

    @Test func memoryStaysBoundedAndDeepBranchesAreStale() throws {
        let chain = AnchorChain(genesis: Self.genesis, keep: 100)
        let blocks = try Self.grow(chain, by: 1_500)
        #expect(chain.tip.height == 1_500)
        #expect(chain.heldBlocks <= 100 + 64 + 1, "held \(chain.heldBlocks) blocks for a chain of 1,500")
        let finals = chain.finalized()
        #expect(finals.map(\.height) == Array(1...chain.base.height), "every block below the base became final, in order")
        #expect(chain.base.height >= 1_500 - 100 - 64)
        // A branch forking below the final height is ignored, not validated or kept.
        let fork = AnchorChain(genesis: Self.genesis, keep: .max)
        for blk in blocks.prefix(10) { try fork.accept(blk, now: blk.time) }
        let rival = try Self.grow(fork, by: 3, key: Self.b)
        #expect(try chain.accept(rival[0], now: rival[0].time) == .stale)
        #expect(chain.activeEntry(at: 5) == nil && chain.activeEntry(at: chain.tip.height)?.hash == chain.tip.hash)
    }

    @Test func aCheckpointRoundTripsAndTheChainContinuesFromIt() throws {
        let full = AnchorChain(genesis: Self.genesis, keep: .max)
        let blocks = try Self.grow(full, by: 300)
        let middle = try #require(full.activeEntry(at: 200))
        let decoded = try AnchorCheckpoint.decode(AnchorCheckpoint.encode(middle))
        #expect(decoded.hash == middle.hash && decoded.height == 200 && decoded.weight == middle.weight && decoded.state == middle.state)
        #expect(decoded.kernel == middle.kernel && decoded.modifier == middle.modifier && decoded.target == middle.target)
        // A chain restarted from the checkpoint accepts the same later blocks and reaches the same tip.
        let resumed = AnchorChain(genesis: Self.genesis, checkpoint: decoded)
        for blk in blocks[200...] { try resumed.accept(blk, now: blk.time) }
        #expect(resumed.tip.hash == full.tip.hash && resumed.tip.weight == full.tip.weight)
        // A truncated checkpoint is an error naming the field, not a crash.
        #expect(throws: Ledger.DecodingError.self) { try AnchorCheckpoint.decode(Array(AnchorCheckpoint.encode(middle).dropLast(5))) }
    }

    @Test func aNodeRestartsFromItsCheckpointAndStillProvesOldReadings() async throws {
        let dir = TemporaryDirectory()
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.a.publicKey)
        _ = try store.commitSync([try Fixtures.reading(Self.a, seq: 1)])
        _ = try store.cutBlockSync(signedBy: Self.a, now: 1, maxReadings: 10)
        let node = try AnchorNode(genesis: Self.genesis, key: Self.a, store: store, now: Self.genesis.time, keep: 50)
        var t = Self.genesis.time
        var minted = 0
        while minted < 400 {
            t += 1
            if try await node.tick(now: t) != nil { minted += 1 }
        }
        let tip = await node.tip
        #expect(tip.height == 400)
        #expect(try store.anchorCheckpoint() != nil, "a checkpoint was persisted")
        // Restart: only the blocks above the checkpoint are replayed, and the tip is the same.
        let again = try AnchorNode(genesis: Self.genesis, key: Self.a, store: store, now: t + 10, keep: 50)
        let againTip = await again.tip
        #expect(againTip.hash == tip.hash && againTip.weight == tip.weight)
        let finalHeight = await again.finalHeight
        #expect(finalHeight >= 400 - 50 - 64, "started from the checkpoint at \(finalHeight)")
        #expect(again.replayedAtStart <= 50 + 64, "replayed \(again.replayedAtStart) of 400 stored blocks")
        // The reading's segment was committed by anchor block 1, long final: its proof still anchors.
        let proof = try #require(try store.proof(for: try Fixtures.reading(Self.a, seq: 1).id))
        let anchored = try #require(try await again.anchored(proof))
        #expect(anchored.anchor.height == 1)
        #expect(await again.isOnActiveChain(anchored.anchor))
        #expect(await again.verifyAnchor(anchored) == .verified)
        let carried = try await again.activeBlocks(through: 3)
        #expect(carried.map(\.height) == [1, 2, 3])
    }

    @Test func orphansAreCheckedBeforeTheyAreKeptAndTheOldestAreEvicted() throws {
        let source = AnchorChain(genesis: Self.genesis, keep: .max)
        let blocks = try Self.grow(source, by: 1_100)
        let late = AnchorChain(genesis: Self.genesis, keep: .max)
        // Everything but block 1 arrives first: all orphans, bounded at maxOrphans.
        for blk in blocks.dropFirst() { _ = try late.accept(blk, now: blk.time) }
        #expect(late.heldBlocks <= AnchorChain.maxOrphans + 1)
        // A stranger's block is refused outright instead of being held.
        let stranger = try PrivateKey()
        let forged = try AnchorBlock(chain: Self.genesis.hash, height: 5, prev: Digest32(hex: String(repeating: "ab", count: 32))!, time: Self.genesis.time + 5,
                                     target: Self.genesis.initialTarget, stakeModifier: .zero, heads: [], records: [], signedBy: stranger)
        #expect(throws: AnchorViolation.self) { try late.accept(forged, now: Self.genesis.time + 10) }
        // The newest orphans were kept (the oldest evicted): once block 1 arrives, the chain links
        // up as far as the kept run allows, and never beyond what it holds.
        _ = try late.accept(blocks[0], now: blocks[0].time)
        #expect(late.tip.height >= 1)
        #expect(late.heldBlocks <= AnchorChain.maxOrphans + 2)
    }
}
