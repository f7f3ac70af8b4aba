import FlowchainCrypto
import FlowchainTesting
import FlowchainWire
import Hummingbird
import HummingbirdTesting
import HummingbirdWSTesting
import Ledger
@testable import NodeServer
import Testing
import WSClient

/// The HTTP routes through Hummingbird's router in-process, and the WebSocket routes on a live
/// in-process server bound to a free loopback port.
@Suite("Node server routes, in-process")
struct RouteTests {
    static func json(_ r: TestResponse) throws -> JSONValue { try JSONValue(parsing: Array(r.body.readableBytesView)) }

    @Test func healthCountsWhatTheEngineStored() async throws {
        let node = try InProcessNode()
        _ = try await node.engine.ingest(.unsigned(device: "h", payload: Array(#"{"x":1}"#.utf8), time: nil, timeQuality: .synced, source: .rpc))
        try await node.server.makeApplication().test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                let body = try Self.json(response)
                #expect(body["status"] == "ok" && body["readings"] == .int(1))
                #expect(body["publicKey"]?.stringValue == InProcessNode.key.publicKey.hex)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("flowchain_readings_ingested_total"))
            }
        }
    }

    @Test func aDevicesReadingsPageAndThingDescription() async throws {
        let node = try InProcessNode()
        for i in 1...3 {
            _ = try await node.engine.ingest(.unsigned(device: "porch", payload: Array("{\"lux\":\(i * 100)}".utf8), time: nil, timeQuality: .synced, source: .ws))
        }
        try await node.server.makeApplication().test(.router) { client in
            try await client.execute(uri: "/object/porch/readings?limit=2", method: .get) { response in
                let page = try Self.json(response)
                #expect(page["device"] == "porch")
                #expect(page["readings"]?.arrayValue?.map { $0["payload"] } == [["lux": 100], ["lux": 200]])
                #expect(page["nextCursor"]?.stringValue != nil, "more after the first page")
            }
            try await client.execute(uri: "/object/porch", method: .get) { response in
                let thing = try Self.json(response)
                #expect(thing["title"] == "porch" && thing["properties"]?["lux"]?["type"] == "integer")
            }
            try await client.execute(uri: "/object/nobody", method: .get) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/object/bad%20id/readings", method: .get) { #expect($0.status == .badRequest) }
            try await client.execute(uri: "/object/porch/readings?limit=0", method: .get) { #expect($0.status == .badRequest) }
        }
    }

    @Test func aDeviceSendsOverWebSocketAndGetsItsAcknowledgements() async throws {
        let node = try InProcessNode()
        _ = try await node.server.makeApplication().test(.live) { client in
            try await client.ws("/object/gate/send?ack=1") { inbound, outbound, _ in
                try await outbound.write(.text(#"{"open":true}"#))
                try await outbound.write(.text("not json"))
                var replies: [JSONValue] = []
                for try await message in inbound.messages(maxSize: 1 << 16) {
                    if case let .text(text) = message { replies.append(try JSONValue(parsing: Array(text.utf8))) }
                    if replies.count == 2 { break }
                }
                #expect(replies.first?["ack"]?["seq"] == .int(1))
                #expect(replies.last?["error"]?["kind"] == "payload_not_object")
            }
        }
        let stored = try node.engine.store.readings(device: "gate", limit: 10).items
        #expect(stored.map(\.reading.payloadText) == [#"{"open":true}"#], "the frame is stored as sent")
    }
}
