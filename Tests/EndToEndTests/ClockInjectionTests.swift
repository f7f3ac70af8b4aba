import Consensus
import FlowchainCrypto
import FlowchainNode
import FlowchainTesting
import Foundation
import Ledger
import Logging
import Testing

/// Every part of a node reads time from the clock it is given, so a test can set the time.
@Suite("An injected clock")
struct ClockInjectionTests {
    @Test func aNodeTakesItsTimeFromTheInjectedClock() async throws {
        let dir = TemporaryDirectory("clock")
        var configuration = NodeConfiguration()
        configuration.dataDirectory = DataDirectory(dir.file("data"))
        configuration.server = nil
        configuration.clock = .fixed(1_700_000_123_456)
        let node = try Node(configuration: configuration, logger: Logger(label: "clock-test"))
        #expect(node.genesis.time == 1_700_000_122, "a single-node genesis starts one second before now")
        node.engine.running()   // as the node's service group would run it
        let ack = try await node.engine.ingest(.unsigned(device: "clocked", payload: Array("{}".utf8), time: nil, timeQuality: .synced, source: .rpc))
        #expect(try node.store.reading(id: ack.id)?.reading.time == 1_700_000_123_456, "an unsigned reading is stamped with the clock's time")
        let header = try #require(try await node.engine.cutBlock())
        #expect(header.time == 1_700_000_123_456, "blocks are stamped by the same clock")
    }
}
