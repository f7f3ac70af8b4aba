@testable import Consensus
import FlowchainCrypto
import FlowchainTesting
import Ledger
import Testing

/// The anchor chain of a node with a real store: heads committed only on a losing branch are
/// committed again after the reorganisation, and the stored chain replays on restart.
@Suite("Anchor node")
struct AnchorNodeTests {
    static let me = Fixtures.key(40), rival = Fixtures.key(41)
    static let genesis = Genesis(chainID: "anchor-node", time: 1_700_000_000, accounts: [.init(key: me.publicKey, stake: 50), .init(key: rival.publicKey, stake: 50)])

    /// A store holding `blocks` sealed segment blocks of `me`.
    static func store(_ dir: TemporaryDirectory, blocks: Int) throws -> LedgerStore {
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: me.publicKey)
        for b in 0..<blocks {
            _ = try store.commitSync([try Fixtures.reading(me, seq: UInt64(b + 1))])
            _ = try store.cutBlockSync(signedBy: me, now: Int64(b), maxReadings: 10)
        }
        return store
    }

    /// Ticks `node` second by second from `after` until it mints; returns the block.
    static func mintNext(_ node: AnchorNode, after: Int64) async throws -> AnchorBlock {
        var t = after
        while true {
            t += 1
            if let b = try await node.tick(now: t) { return b }
        }
    }

    @Test func aLoneNodeWithNothingNewMintsAndWritesNothing() async throws {
        let dir = TemporaryDirectory()
        let store = try Self.store(dir, blocks: 2)
        let node = try AnchorNode(genesis: Self.genesis, key: Self.me, store: store, now: Self.genesis.time)
        let first = try await Self.mintNext(node, after: Self.genesis.time)
        #expect(first.heads.map(\.height) == [1])
        // Its head is committed: an hour of ticks that would win mints nothing and writes nothing.
        let written = store.transactions
        for t in (first.time + 1)...(first.time + 3600) {
            #expect(try await node.tick(now: t, otherHeads: [], records: [], skipEmpty: true) == nil)
        }
        let tip = await node.tip.hash
        #expect(store.transactions == written && tip == first.hash)
        // A new segment block: the next win commits it.
        _ = try store.commitSync([try Fixtures.reading(Self.me, seq: 3)])
        _ = try store.cutBlockSync(signedBy: Self.me, now: 5, maxReadings: 10)
        var t = first.time + 3600, next: AnchorBlock? = nil
        while next == nil, t < first.time + 100_000 {
            t += 1
            next = try await node.tick(now: t, otherHeads: [], records: [], skipEmpty: true)
        }
        #expect(next?.heads.map(\.height) == [2])
    }

    @Test func headsCommittedOnlyOnALosingBranchAreCommittedAgain() async throws {
        let dir = TemporaryDirectory()
        let store = try Self.store(dir, blocks: 3)
        let node = try AnchorNode(genesis: Self.genesis, key: Self.me, store: store, now: Self.genesis.time)
        let mine = try await Self.mintNext(node, after: Self.genesis.time)
        #expect(mine.heads.map(\.height) == [2], "the node commits its newest segment head")

        // A rival branch from genesis, two blocks long and without that head, outweighs it.
        let rivalChain = AnchorChain(genesis: Self.genesis)
        var rivalBlocks: [AnchorBlock] = []
        var t = Self.genesis.time
        while rivalBlocks.count < 2 {
            t += 1
            if let b = rivalChain.mint(key: Self.rival, at: t) {
                try rivalChain.accept(b, now: t)
                rivalBlocks.append(b)
            }
        }
        var outcomes: [AnchorChain.Outcome] = []
        for b in rivalBlocks { outcomes.append(try await node.receive(b, now: t + 100)) }
        #expect(outcomes.contains { if case .reorganized = $0 { true } else { false } })
        #expect(await node.tip.state.heads[Self.me.publicKey] == nil, "the head is no longer committed")

        let again = try await Self.mintNext(node, after: max(t, mine.time))
        #expect(again.prev == rivalBlocks.last!.hash)
        #expect(again.heads.map(\.height) == [2], "…so the next block commits it again")

        // Everything stored replays into the same tip.
        let replayed = try AnchorNode(genesis: Self.genesis, key: nil, store: store, now: t + 1000)
        #expect(await replayed.tip.hash == again.hash)
    }

    /// A board without a real-time clock restarts with its clock days behind, then NTP corrects
    /// it: the stored chain loads, nothing is minted or accepted on the wrong clock (no block
    /// before its parent's time, none "ahead of local time"), and once the clock is right the
    /// node takes peers' blocks and mints again.
    @Test func aClockDaysBehindAtStartIsToleratedUntilItIsCorrected() async throws {
        let dir = TemporaryDirectory()
        let store = try Self.store(dir, blocks: 1)
        let node = try AnchorNode(genesis: Self.genesis, key: Self.me, store: store, now: Self.genesis.time)
        let first = try await Self.mintNext(node, after: Self.genesis.time + 86_400 * 10)
        let behind = first.time - 3 * 86_400

        let restarted = try AnchorNode(genesis: Self.genesis, key: Self.me, store: store, now: behind)
        #expect(await restarted.tip.hash == first.hash, "the stored chain loads on a clock 3 days behind")
        for t in behind..<(behind + 120) { #expect(try await restarted.tick(now: t) == nil, "no block minted before its parent's time") }

        // A peer's block on the right clock is ahead of this clock: refused, not taken.
        let peerChain = AnchorChain(genesis: Self.genesis)
        try peerChain.accept(first, now: first.time)
        var t = first.time
        var peerBlock: AnchorBlock? = nil
        while peerBlock == nil { t += 1; peerBlock = peerChain.mint(key: Self.rival, at: t) }
        await #expect(throws: AnchorViolation.self) { try await restarted.receive(peerBlock!, now: behind) }
        // The clock is corrected: the same block is taken, and the node mints after it.
        _ = try await restarted.receive(peerBlock!, now: t)
        #expect(await restarted.tip.hash == peerBlock!.hash)
        let next = try await Self.mintNext(restarted, after: t)
        #expect(next.prev == peerBlock!.hash && next.time > peerBlock!.time)
    }
}
