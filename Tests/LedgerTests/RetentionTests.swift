import FlowchainCrypto
import FlowchainTesting
import Foundation
import GRDB
@testable import Ledger
import Synchronization
import Testing

/// Retention: old readings lose their payloads, the chain keeps verifying, proofs of kept
/// readings verify, pruned ones are reported as pruned, and the file really shrinks.
@Suite("Retention and pruning")
struct RetentionTests {
    static let key = Fixtures.key(9)
    static let devices = ["d-a", "d-b", "d-c"]

    /// A ledger of `blocks` blocks of `perBlock` readings, block b sealed at time `b * 1000` ms,
    /// readings spread over three devices; returns the readings by block.
    static func ledger(_ store: LedgerStore, blocks: Int, perBlock: Int, payloadBytes: Int = 200) throws -> [[Reading]] {
        var seqs: [String: UInt64] = [:]
        var out: [[Reading]] = []
        let pad = String(repeating: "x", count: payloadBytes)
        for b in 0..<blocks {
            let readings = try (0..<perBlock).map { i in
                let device = devices[(b * perBlock + i) % devices.count]
                seqs[device, default: 0] += 1
                return try Fixtures.reading(key, device: device, seq: seqs[device]!, time: Int64(b * 1000 + i), payload: "{\"n\":\(b),\"pad\":\"\(pad)\"}")
            }
            _ = try store.commitSync(readings)
            _ = try store.cutBlockSync(signedBy: key, now: Int64(b * 1000 + perBlock), maxReadings: 10_000)
            out.append(readings)
        }
        return out
    }

    @Test func prunedByAgeTheChainVerifiesKeptProofsVerifyAndPrunedReadingsSaySo() async throws {
        let dir = TemporaryDirectory()
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.key.publicKey)
        let blocks = try Self.ledger(store, blocks: 100, perBlock: 20)
        // Keep what was sealed in the last 50 s of a clock at 100 s: block b is sealed at b s + 20 ms,
        // so blocks 50…99 stay and 0…49 are pruned.
        let report = try await RetentionPolicy(maxAge: 50_000).apply(to: store, now: 100_000)
        #expect(report.blocks == 50 && report.readings == 50 * 20, "\(report)")
        #expect(try store.prunedBelow() == 50)
        try store.verifyAll()
        // A kept reading's proof verifies; a pruned one is reported with its block and leaf.
        let kept = blocks[75][7]
        let proof = try #require(try store.proof(for: kept.id))
        #expect(proof.verify(owner: Self.key.publicKey) == .valid(height: 75))
        let gone = blocks[3][5]
        #expect(try store.reading(id: gone.id) == nil && (try store.proof(for: gone.id)) == nil)
        let pruned = try #require(try store.prunedReading(id: gone.id))
        #expect(pruned.block == 3 && pruned.leaf == 5 && pruned.blockTime == 3 * 1000 + 20)
        #expect(try store.prunedReading(id: kept.id) == nil)
        // Queries by device see only what is kept; each device's numbering goes on after its pruned readings.
        let left = try store.readings(device: "d-a", limit: 10_000).items
        #expect(!left.isEmpty && left.allSatisfy { ($0.block ?? 0) >= 50 })
        let lastA = try #require(try store.lastSeq(device: "d-a"))
        let again = try Fixtures.reading(Self.key, device: "d-a", seq: 1, time: 99_000)
        #expect(try store.commitSync([again]) == [.seqNotIncreasing(last: lastA)], "a pruned seq is not used again")
        // Pruning again at the same time does nothing; the newest 32 blocks are never pruned.
        #expect(try await RetentionPolicy(maxAge: 50_000).apply(to: store, now: 100_000).blocks == 0)
        #expect(try await RetentionPolicy(maxAge: 60_000).apply(to: store, now: 10_000_000).prunedBelow == UInt64(100 - LedgerStore.unprunableTail))
        try store.verifyAll()
        try store.close()
        // Reopened: the tail check passes and nothing was lost from the kept blocks.
        let reopened = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.key.publicKey)
        #expect(try reopened.reading(id: blocks[99][19].id) != nil)
        try reopened.verifyAll()
    }

    @Test func aDeviceWhoseReadingsAreAllPrunedContinuesItsNumbering() async throws {
        let dir = TemporaryDirectory()
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.key.publicKey)
        // A device that only appears in the first block.
        _ = try store.commitSync([try Fixtures.reading(Self.key, device: "once", seq: 7, time: 0)])
        _ = try store.cutBlockSync(signedBy: Self.key, now: 1, maxReadings: 100)
        _ = try Self.ledger(store, blocks: 40, perBlock: 2)
        try await store.prune(below: 1)
        #expect(try store.readings(device: "once", limit: 10).items.isEmpty)
        #expect(try store.lastSeq(device: "once") == 7)
        #expect(try store.lastSeqs()["once"] == 7)
        #expect(try store.commitSync([try Fixtures.reading(Self.key, device: "once", seq: 7, time: 5)]) == [.seqNotIncreasing(last: 7)])
    }

    /// A ledger made without `auto_vacuum` (the default) is rewritten once, then gives pages back
    /// incrementally; one made with it (`FLOWCHAIN_AUTO_VACUUM=1`) needs no rewrite. Both shrink
    /// to within 10 % of the target.
    @Test(arguments: [true, false])
    func prunedBySizeTheFileShrinksToWithin10PercentOfTheTarget(autoVacuum: Bool) async throws {
        let dir = TemporaryDirectory()
        let path = dir.file("ledger.sqlite")
        let store = try LedgerStore(path: path, owner: Self.key.publicKey, autoVacuum: autoVacuum)
        #expect(try store.read("mode") { try Int.fetchOne($0, sql: "PRAGMA auto_vacuum") } == (autoVacuum ? 2 : 0))
        _ = try Self.ledger(store, blocks: 120, perBlock: 50, payloadBytes: 400)
        try store.checkpoint()
        let before = try store.fileBytes()
        let target = before / 3
        let report = try await RetentionPolicy(maxBytes: target).apply(to: store, now: 0)
        #expect(report.convertedToIncrementalVacuum == !autoVacuum, "only a ledger made without auto_vacuum is rewritten once")
        let onDisk = Int64(try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int))
        #expect(onDisk <= target && onDisk >= target * 9 / 10, "the file itself: \(onDisk) bytes for a target of \(target) (was \(before))")
        #expect(report.bytesAfter == onDisk)
        try store.verifyAll()
        // Another pass at the same size prunes nothing: the file is under its limit.
        let second = try await RetentionPolicy(maxBytes: target).apply(to: store, now: 0)
        #expect(second.blocks == 0 && !second.convertedToIncrementalVacuum)
    }

    /// A pruned reading's id stays where it was written, in arrival order (`reading_id`), so
    /// pruning inserts nothing at random; ids that an earlier version moved into the id-keyed
    /// `pruned` table are still found and counted.
    @Test func prunedIdsStayWhereTheyWereWrittenAndEarlierOnesAreStillFound() async throws {
        let dir = TemporaryDirectory()
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.key.publicKey)
        let blocks = try Self.ledger(store, blocks: 300, perBlock: 20)   // 6,000 readings: a bucket is 4,096
        try await store.prune(below: 250)
        let legacyRows = try await store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM pruned") }
        #expect(legacyRows == 0, "nothing inserted by id")
        for (b, leaf) in [(0, 0), (100, 7), (204, 15), (249, 19)] {
            let found = try #require(try store.prunedReading(id: blocks[b][leaf].id), "block \(b) leaf \(leaf)")
            #expect(found.block == UInt64(b) && found.leaf == UInt32(leaf))
        }
        #expect(try store.prunedReading(id: blocks[260][3].id) == nil && store.reading(id: blocks[260][3].id) != nil)
        try store.verifyAll()
        // As an earlier version left them: the first 10 blocks' ids in `pruned`, not in `reading_id`.
        try await store.pool.write { db in
            try db.execute(sql: "INSERT INTO pruned(id, height, leaf) SELECT id, row / 20, row % 20 FROM (SELECT id, row - 1 AS row FROM reading_id WHERE row <= 200)")
            try db.execute(sql: "DELETE FROM reading_id WHERE row <= 200")
        }
        let legacy = try #require(try store.prunedReading(id: blocks[4][9].id))
        #expect(legacy.block == 4 && legacy.leaf == 9)
        try store.verifyAll()
    }

    /// Giving a freed page back moves a page of new readings into it (written twice); a page
    /// left free is reused by the next readings. An age pass gives pages back only when many are
    /// free.
    @Test func anAgePassGivesManyFreedPagesBackAndLeavesAFewForNewReadings() async throws {
        let dir = TemporaryDirectory()
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.key.publicKey)
        _ = try Self.ledger(store, blocks: 120, perBlock: 50, payloadBytes: 400)
        try store.checkpoint()
        let full = try store.fileBytes()
        // Half the ledger pruned: far more than a tenth of the file is free, so it shrinks.
        try await store.prune(below: 60, release: .whenOverTenth)
        let half = try store.fileBytes()
        let freeAfterHalf = try store.freePages()
        #expect(half < full * 6 / 10 && freeAfterHalf == 0, "\(half) of \(full) bytes")
        // Two more blocks: a few pages, kept free (none given back: the file does not shrink).
        try await store.prune(below: 62, release: .whenOverTenth)
        let kept = try store.freePages()
        let sizeKept = try store.fileBytes()
        #expect(kept > 0 && sizeKept >= half, "\(kept) free pages, \(sizeKept) bytes (\(half) before)")
        // New readings take those pages first: the file does not grow while they last.
        let pad = String(repeating: "y", count: 400)
        _ = try store.commitSync(try (1...20).map { try Fixtures.reading(Self.key, device: "later", seq: UInt64($0), time: 200_000, payload: "{\"pad\":\"\(pad)\"}") })
        try store.checkpoint()
        let (freeLater, sizeLater) = (try store.freePages(), try store.fileBytes())
        #expect(freeLater < kept && sizeLater == sizeKept, "reused, not grown: \(freeLater) free pages, \(sizeLater) bytes")
        try store.verifyAll()
    }

    @Test func pruningUnderLoadLosesNoAcknowledgedReadingInsideTheWindow() async throws {
        let dir = TemporaryDirectory()
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.key.publicKey)
        final class Clock: Sendable { let ms = Atomic<Int64>(0) }
        let clock = Clock()
        // Writers: a block of 10 readings every tick of the test clock (1 s), 150 ticks.
        let writer = Task {
            var acked: [(id: Digest32, time: Int64)] = []
            for tick in 1...150 {
                let now = Int64(tick) * 1000
                clock.ms.store(now, ordering: .sequentiallyConsistent)
                let readings = try (0..<10).map { try Fixtures.reading(Self.key, device: "load-\($0)", seq: UInt64(tick), time: now) }
                let outcomes = try await store.commit(readings, sealingPendingWith: Self.key, now: now, maxReadings: 10_000).outcomes
                for (r, o) in zip(readings, outcomes) { if case .stored = o { acked.append((r.id, now)) } }
            }
            return acked
        }
        // The pruner: keeps 30 s, applied while the writer runs (bounded: stops with the writer).
        let policy = RetentionPolicy(maxAge: 30_000)
        var passes = 0
        while !Task.isCancelled, passes < 10_000 {
            _ = try await policy.apply(to: store, now: clock.ms.load(ordering: .sequentiallyConsistent))
            passes += 1
            if clock.ms.load(ordering: .sequentiallyConsistent) >= 150_000 { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        let acked = try await writer.value
        #expect(acked.count == 1500)
        let final = try await policy.apply(to: store, now: 150_000)
        #expect(try store.prunedBelow() > 100, "pruning kept up: \(final)")
        // Every acknowledged reading is either stored or pruned with its id; none inside the window is pruned.
        var inWindowMissing = 0, lost = 0
        for (id, time) in acked {
            let here = try store.reading(id: id) != nil
            let pruned = try store.prunedReading(id: id) != nil
            if !here && !pruned { lost += 1 }
            // Readings are sealed in the next commit's block, stamped one tick later.
            if time >= 150_000 - 30_000, !here { inWindowMissing += 1 }
        }
        #expect(lost == 0 && inWindowMissing == 0)
        try store.verifyAll()
    }
}
