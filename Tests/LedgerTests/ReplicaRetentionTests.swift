import FlowchainCrypto
import FlowchainTesting
import Foundation
@testable import Ledger
import Testing

/// A copy of another node's chain follows its owner's retention: what the owner pruned, the copy
/// prunes too, and a copy made after the owner pruned starts from the pruned height (headers and
/// the pruned readings' ids) instead of failing on readings the owner no longer has.
@Suite("Copies of a pruned chain")
struct ReplicaRetentionTests {
    static let key = RetentionTests.key

    /// Copies `owner` into `replica` the way the replication protocol does (batches of `limit`),
    /// until nothing is left to send; returns how many batches it took.
    @discardableResult
    static func sync(_ owner: LedgerStore, into replica: LedgerStore, limit: Int = 500) async throws -> Int {
        for round in 1...10_000 {
            let here = try replica.replicaPosition()
            let batch = try owner.replicationBatch(after: here.position, height: here.height, limit: limit, prunedIDs: limit)
            if batch.isEmpty, batch.prunedBelow <= here.prunedBelow { return round - 1 }
            let after = try await replica.appendReplica(batch)
            if batch.isEmpty, after.prunedBelow == here.prunedBelow { return round }
        }
        Issue.record("replication did not finish")
        return 10_000
    }

    static func stores(_ dir: TemporaryDirectory) throws -> (owner: LedgerStore, replica: LedgerStore) {
        (try LedgerStore(path: dir.file("ledger.sqlite"), owner: key.publicKey),
         try LedgerStore(path: dir.file("replica.sqlite"), owner: key.publicKey, journaled: false))
    }

    @Test func aCopyMadeAfterTheOwnerPrunedStartsAtThePrunedHeightAndVerifies() async throws {
        let dir = TemporaryDirectory("replica-late")
        let (owner, replica) = try Self.stores(dir)
        let blocks = try RetentionTests.ledger(owner, blocks: 80, perBlock: 30)
        _ = try owner.commitSync([try Fixtures.reading(Self.key, device: "pending", seq: 1, time: 90_000)])
        try await owner.prune(below: 40)
        #expect(try owner.prunedBelow() == 40)

        // Before the fix the copy stopped at "replicated reading at position 1201, but this replica's next position is 1".
        // 1,200 pruned ids in batches of at most 500: three batches of pruned blocks, then the rest.
        #expect(try await Self.sync(owner, into: replica) >= 4)
        #expect(try replica.replicaPosition() == owner.replicaPosition())
        #expect(try replica.prunedBelow() == 40 && replica.tip() == owner.tip())
        try replica.verifyAll()
        // Kept readings are there with proofs that verify; pruned ones are known as pruned.
        let kept = blocks[60][11]
        #expect(try replica.reading(id: kept.id)?.reading == kept)
        #expect(try #require(try replica.proof(for: kept.id)).verify(owner: Self.key.publicKey) == .valid(height: 60))
        let gone = blocks[12][3]
        #expect(try replica.reading(id: gone.id) == nil)
        let pruned = try #require(try replica.prunedReading(id: gone.id))
        #expect(pruned.block == 12 && pruned.leaf == 3)
        #expect(try replica.counts().readings == owner.counts().readings)
        // Reopened, the copy passes its start check.
        try replica.close()
        try LedgerStore(path: dir.file("replica.sqlite"), owner: Self.key.publicKey, journaled: false).verifyAll()
    }

    @Test func aFullCopyDropsWhatItsOwnerPrunesAndKeepsFollowing() async throws {
        let dir = TemporaryDirectory("replica-follow")
        let (owner, replica) = try Self.stores(dir)
        let blocks = try RetentionTests.ledger(owner, blocks: 70, perBlock: 20)
        try await Self.sync(owner, into: replica)
        #expect(try replica.reading(id: blocks[5][0].id) != nil)
        let before = try replica.fileBytes()

        try await owner.prune(below: 30)
        // No new reading: the owner still tells the copy it pruned.
        #expect(try await Self.sync(owner, into: replica) >= 1)
        #expect(try replica.prunedBelow() == 30)
        #expect(try replica.reading(id: blocks[5][0].id) == nil && replica.prunedReading(id: blocks[5][0].id)?.block == 5)
        #expect(try replica.reading(id: blocks[30][0].id) != nil)
        try replica.verifyAll()
        try replica.releaseFreePages()
        #expect(try replica.fileBytes() < before, "the copy's file shrinks too")

        // The owner goes on; the copy keeps following.
        _ = try owner.commitSync([try Fixtures.reading(Self.key, device: "later", seq: 1, time: 200_000)])
        _ = try owner.cutBlockSync(signedBy: Self.key, now: 200_001, maxReadings: 100)
        try await owner.prune(below: 35)
        try await Self.sync(owner, into: replica)
        #expect(try replica.prunedBelow() == 35 && replica.tip() == owner.tip())
        try replica.verifyAll()
    }

    @Test func aCopyPartlyBehindThePrunedHeightCatchesUp() async throws {
        let dir = TemporaryDirectory("replica-partial")
        let (owner, replica) = try Self.stores(dir)
        _ = try RetentionTests.ledger(owner, blocks: 20, perBlock: 10)
        try await Self.sync(owner, into: replica)
        // The owner goes on while the copy is away (its last batch held readings of blocks it
        // then lacked the headers for: 25 pending readings), then prunes past what the copy holds.
        for b in 20..<70 {
            var readings: [Reading] = []
            for i in 0..<10 {
                let seq = UInt64(b * 10 + i), time = Int64(b * 1000 + i)
                readings.append(try Fixtures.reading(Self.key, device: "late-\(i % 2)", seq: seq, time: time))
            }
            _ = try owner.commitSync(readings)
            _ = try owner.cutBlockSync(signedBy: Self.key, now: Int64(b * 1000 + 10), maxReadings: 10_000)
        }
        let here = try replica.replicaPosition()
        let partial = try owner.replicationBatch(after: here.position, height: here.height, limit: 25)
        #expect(partial.readings.count == 25 && partial.blocks.count == 2)
        _ = try await replica.appendReplica(ReplicationBatch(readings: partial.readings, blocks: []))
        try await owner.prune(below: 30)

        try await Self.sync(owner, into: replica, limit: 50)
        #expect(try replica.prunedBelow() == 30 && replica.tip() == owner.tip())
        #expect(try replica.counts().readings == owner.counts().readings)
        try replica.verifyAll()
    }

    @Test func prunedHeadersThatDoNotExtendTheCopyAreRefusedAndNothingIsStored() async throws {
        let dir = TemporaryDirectory("replica-bad")
        let (owner, replica) = try Self.stores(dir)
        _ = try RetentionTests.ledger(owner, blocks: 40, perBlock: 5)
        try await owner.prune(below: 6)
        var batch = try owner.replicationBatch(after: 0, height: nil, limit: 1000)
        #expect(batch.prunedBlocks.count == 6)
        // One id short, a block left out, and a header from another owner's chain: each refused.
        var short = batch
        short.prunedBlocks[2] = PrunedBlock(firstRowid: short.prunedBlocks[2].firstRowid, header: short.prunedBlocks[2].header,
                                            ids: Array(short.prunedBlocks[2].ids.dropLast()))
        await #expect(throws: StoreError.self) { try await replica.appendReplica(short) }
        var gap = batch
        gap.prunedBlocks.remove(at: 1)
        await #expect(throws: StoreError.self) { try await replica.appendReplica(gap) }
        let stranger = try LedgerStore(path: dir.file("stranger.sqlite"), owner: Fixtures.key(77).publicKey)
        _ = try stranger.commitSync([try Fixtures.reading(Fixtures.key(77), device: "s", seq: 1, time: 1)])
        let foreign = try #require(try stranger.cutBlockSync(signedBy: Fixtures.key(77), now: 2, maxReadings: 10))
        batch.prunedBlocks[0] = PrunedBlock(firstRowid: 1, header: foreign, ids: batch.prunedBlocks[0].ids.prefix(Int(foreign.count)).map { $0 })
        await #expect(throws: StoreError.self) { try await replica.appendReplica(batch) }
        #expect(try replica.tip() == nil && replica.prunedBelow() == 0 && replica.counts().readings == 0)
    }
}
