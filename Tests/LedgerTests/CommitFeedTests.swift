import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
import Testing

@Suite("The commit feed: the one way out")
struct CommitFeedTests {
    static let node = Fixtures.key(61)
    static let device = Fixtures.key(62)

    @Test func everyCommitAndBlockIsPublishedByTheEngineItself() async throws {
        let dir = TemporaryDirectory()
        // No scheduled cuts (an hour apart): the one block is the one asked for, however slow the machine.
        var config = IngestEngine.Configuration()
        config.blockInterval = .seconds(3600)
        let engine = try IngestEngine(store: LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.node.publicKey), key: Self.node, configuration: config).running()
        let readings = engine.feed.subscribe(.readings(device: "one"))
        let blocks = engine.feed.subscribe(.blocks)
        for seq in 1...5 { _ = try await engine.submit(try Fixtures.reading(Self.device, device: "one", seq: UInt64(seq))) }
        _ = try await engine.submit(try Fixtures.reading(Self.device, device: "other", seq: 1))
        let header = try #require(try await engine.cutBlock())
        engine.feed.finishAll()
        var seqs: [UInt64] = []
        for await case let .reading(r) in readings.events { seqs.append(r.reading.seq) }
        var sealed: [BlockHeader] = []
        for await case let .block(b) in blocks.events { sealed.append(b) }
        #expect(seqs == [1, 2, 3, 4, 5], "only the subscribed device, in arrival order")
        #expect(sealed == [header])
    }

    @Test func aSlowClientLosesEventsButAnInternalListenerDoesNotAndOutlivesClients() async throws {
        let feed = CommitFeed(capacity: 2)
        let client = feed.subscribe(.blocks)
        let counter = feed.subscribeInternal(.blocks)
        let headers = try (0..<10).map { try BlockHeader(height: UInt64($0), prev: .zero, time: 1, merkleRoot: .zero, count: 1, signedBy: Self.node) }
        for h in headers.prefix(5) { feed.publish(h) }
        feed.finishClients()
        for h in headers.suffix(5) { feed.publish(h) }
        feed.finishAll()
        var clientSaw = 0, counted = 0
        for await _ in client.events { clientSaw += 1 }
        for await _ in counter.events { counted += 1 }
        #expect(clientSaw == 2 && client.dropped == 3, "the client's buffer holds 2; 3 dropped and counted")
        #expect(counted == 10, "the internal listener heard everything, also after the clients were ended")
    }
}
