import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
@testable import PeerNetwork
import Testing

/// The `replicate` bodies: a ring without retention exchanges what it always did; the owner's
/// pruned height and pruned blocks round-trip; garbage is a precise error.
@Suite("Replication wire format")
struct ReplicationCodecTests {
    static let key = Fixtures.key(31)

    func prunedOwner(_ dir: TemporaryDirectory) async throws -> LedgerStore {
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.key.publicKey)
        for b in 0..<40 {
            _ = try store.commitSync([try Fixtures.reading(Self.key, device: "w", seq: UInt64(b + 1), time: Int64(b * 10))])
            _ = try store.cutBlockSync(signedBy: Self.key, now: Int64(b * 10 + 1), maxReadings: 10)
        }
        try await store.prune(below: 5)
        return store
    }

    @Test func withoutRetentionTheBodiesAreExactlyTheOldOnes() throws {
        let reading = try Fixtures.reading(Self.key, device: "w", seq: 1, time: 1)
        let body = ReplicationCodec.encode(expected: 0, ReplicationBatch(readings: [(1, reading)]))
        // expected i64 · 1 reading (i64 position · u32 length · encoding) · 0 blocks, nothing after.
        #expect(body.count == 8 + 4 + 8 + 4 + reading.encoded.count + 4)
        let (expected, batch) = try ReplicationCodec.decodeRequest(body)
        #expect(expected == 0 && batch.readings.map(\.reading) == [reading] && batch.prunedBelow == 0 && batch.prunedBlocks.isEmpty)
        #expect(ReplicationCodec.encode(LedgerStore.ReplicaPosition(position: 7, height: 2)).count == 16)
    }

    @Test func thePrunedHeightAndPrunedBlocksRoundTrip() async throws {
        let dir = TemporaryDirectory("codec")
        let owner = try await prunedOwner(dir)
        let batch = try owner.replicationBatch(after: 0, height: nil, limit: 100)
        #expect(batch.prunedBelow == 5 && batch.prunedBlocks.count == 5 && batch.readings.isEmpty)
        let (_, decoded) = try ReplicationCodec.decodeRequest(ReplicationCodec.encode(expected: 0, batch))
        #expect(decoded.prunedBelow == 5 && decoded.prunedBlocks == batch.prunedBlocks)
        let later = try owner.replicationBatch(after: 5, height: 4, limit: 100)
        #expect(later.prunedBlocks.isEmpty && later.readings.count == 35 && later.prunedBelow == 5)
        let (_, again) = try ReplicationCodec.decodeRequest(ReplicationCodec.encode(expected: 5, later))
        #expect(again.readings.map(\.position) == later.readings.map(\.position) && again.blocks == later.blocks && again.prunedBelow == 5)
        let position = LedgerStore.ReplicaPosition(position: 40, height: 39, prunedBelow: 5)
        #expect(try ReplicationCodec.decodeReply(ReplicationCodec.encode(position)) == position)
    }

    @Test func aTruncatedOrPaddedBodyIsAPreciseError() async throws {
        let dir = TemporaryDirectory("codec-bad")
        let owner = try await prunedOwner(dir)
        let body = ReplicationCodec.encode(expected: 0, try owner.replicationBatch(after: 0, height: nil, limit: 100))
        #expect(throws: DecodingError.self) { try ReplicationCodec.decodeRequest(Array(body.dropLast(3))) }
        #expect(throws: DecodingError.self) { try ReplicationCodec.decodeRequest(body + [0]) }
        #expect(throws: DecodingError.self) { try ReplicationCodec.decodeReply([0, 0, 0, 0, 0, 0, 0, 1, 0, 0]) }
    }
}
