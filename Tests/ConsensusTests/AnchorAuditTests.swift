@testable import Consensus
import FlowchainCrypto
import FlowchainTesting
import Foundation
import GRDB
import Ledger
import Testing

/// `flowchain check`'s audit of the anchor chain: the whole stored chain replays from the genesis,
/// and the segment heads it commits must be the ledger's own blocks, so tampering that leaves
/// every segment block's signature intact (a chain cut short, a final record swapped, an anchor
/// block altered) is found.
@Suite("Anchor chain audit")
struct AnchorAuditTests {
    static let me = Fixtures.key(60)
    static let genesis = Genesis(chainID: "anchor-audit", time: 1_700_000_000, accounts: [.init(key: me.publicKey, stake: 100)])
    static let keep: UInt64 = 3

    /// A ledger with segment blocks and an anchor chain of `anchors` blocks minted over them (a
    /// new segment block before each), the older ones final (finality comes in batches of 64
    /// heights above `keep`). Returns the store and the last block's time.
    static func ledger(_ dir: TemporaryDirectory, anchors: Int = 70) async throws -> (LedgerStore, Int64) {
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: me.publicKey)
        let node = try AnchorNode(genesis: genesis, key: me, store: store, now: genesis.time, keep: keep)
        var t = genesis.time
        for b in 0..<anchors {
            _ = try store.commitSync([try Fixtures.reading(me, seq: UInt64(b + 1))])
            _ = try store.cutBlockSync(signedBy: me, now: Int64(b), maxReadings: 10)
            var minted: AnchorBlock? = nil
            while minted == nil { t += 1; minted = try await node.tick(now: t) }
        }
        return (store, t)
    }

    static func audit(_ store: LedgerStore, now: Int64) throws -> AnchorAudit.Summary {
        try AnchorAudit.verify(genesis: genesis, store: store, owner: me.publicKey, now: now, keep: keep)
    }

    /// Runs `sql` on the ledger file as a tamperer would (another connection, the node's closed).
    static func tamper(_ dir: TemporaryDirectory, _ sql: String) throws {
        let db = try DatabaseQueue(path: dir.file("ledger.sqlite"))
        try db.write { try $0.execute(sql: sql) }
        try db.close()
    }

    static func flipByte(_ offset: Int, ofAnchorAt height: Int, _ dir: TemporaryDirectory) throws {
        let db = try DatabaseQueue(path: dir.file("ledger.sqlite"))
        try db.write { db in
            var encoded = try #require(try Data.fetchOne(db, sql: "SELECT encoded FROM anchor WHERE height = ?", arguments: [height]))
            encoded[encoded.startIndex + offset] ^= 1
            try db.execute(sql: "UPDATE anchor SET encoded = ? WHERE height = ?", arguments: [encoded, height])
        }
        try db.close()
    }

    static func failure(_ dir: TemporaryDirectory, now: Int64) throws -> AnchorStoreError? {
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: nil, readOnly: true, tailCheck: 0)
        defer { try? store.close() }
        do { _ = try audit(store, now: now); return nil } catch let e as AnchorStoreError { return e }
    }

    @Test func aWholeChainReplaysAndItsHeadsAreTheLedgersBlocks() async throws {
        let dir = TemporaryDirectory()
        let (store, t) = try await Self.ledger(dir)
        let summary = try Self.audit(store, now: t)
        #expect(summary.blocks == 70 && summary.tipHeight == 70 && summary.stale == 0, "\(summary)")
        let checkpoint = try AnchorCheckpoint.decode(try #require(try store.anchorCheckpoint()))
        #expect(summary.finalHeight > 0 && summary.finalHeight == checkpoint.height, "the recorded finals and checkpoint agree with the replay")
        #expect(summary.headsChecked == 70, "each anchor block committed the segment block cut before it")
        // A ledger without an anchor chain has nothing to audit.
        let other = TemporaryDirectory()
        let empty = try LedgerStore(path: other.file("ledger.sqlite"), owner: Self.me.publicKey)
        #expect(try Self.audit(empty, now: t) == AnchorAudit.Summary())
    }

    @Test func aSegmentChainCutShortIsFoundThoughEveryRemainingBlockVerifies() async throws {
        let dir = TemporaryDirectory()
        let (store, t) = try await Self.ledger(dir)
        try store.close()
        // The newest segment block is removed (its readings look pending): the rest still verifies alone.
        try Self.tamper(dir, "DELETE FROM block WHERE height = (SELECT MAX(height) FROM block)")
        let cut = try LedgerStore(path: dir.file("ledger.sqlite"), owner: nil, readOnly: true, tailCheck: 0)
        try cut.verifyAll()
        try cut.close()
        let error = try #require(try Self.failure(dir, now: t))
        #expect(error.height == 70 && error.reason.contains("which the ledger does not hold"), "\(error)")
    }

    @Test func aSwappedFinalRecordAndAnAlteredAnchorBlockAreFound() async throws {
        let dir = TemporaryDirectory()
        let (store, t) = try await Self.ledger(dir)
        try store.close()
        try Self.tamper(dir, "UPDATE anchor_final SET hash = zeroblob(32) WHERE height = 2")
        let swapped = try #require(try Self.failure(dir, now: t))
        #expect(swapped.height == 2 && swapped.reason.contains("recorded as final is block"), "\(swapped)")
        try Self.tamper(dir, "UPDATE anchor_final SET hash = (SELECT hash FROM anchor WHERE height = 2) WHERE height = 2")
        #expect(try Self.failure(dir, now: t) == nil, "restored")
        // One byte of a stored anchor block's encoding (inside its signed body) changes.
        try Self.flipByte(40, ofAnchorAt: 5, dir)
        let altered = try #require(try Self.failure(dir, now: t))
        #expect(altered.height == 5, "\(altered)")
    }
}
