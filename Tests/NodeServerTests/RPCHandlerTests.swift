import FlowchainCrypto
import FlowchainTesting
import FlowchainWire
@testable import Ledger
@testable import NodeServer
import Testing

/// The JSON-RPC endpoint's message handling, driven in-process (no socket, no child process).
@Suite("JSON-RPC handler, in-process")
struct RPCHandlerTests {
    @Test func aSubmittedReadingIsAcknowledgedAndAnsweredByEveryQueryMethod() async throws {
        let node = try InProcessNode()
        let rpc = node.rpc()
        let ack = await rpc.call("submit", ["device": "kitchen", "payload": ["temperature": 21.5, "ok": true]])
        let id = try #require(ack["result"]?["id"]?.stringValue, "\(ack)")
        #expect(ack["result"]?["seq"] == .int(1))
        let page = await rpc.call("readings", ["device": "kitchen"])
        let first = try #require(page["result"]?["readings"]?.arrayValue?.first)
        #expect(first["id"]?.stringValue == id)
        #expect(first["payload"] == ["ok": true, "temperature": 21.5], "the payload keeps its numbers as written")
        #expect(await rpc.call("reading", ["id": .string(id)])["result"]?["seq"] == .int(1))
        let info = await rpc.call("info")
        #expect(info["result"]?["readings"] == .int(1))
        #expect(info["result"]?["publicKey"]?.stringValue == InProcessNode.key.publicKey.hex)
        // Sealed within the block interval, then provable.
        try await node.eventually("the reading is sealed") { await rpc.call("reading", ["id": .string(id)])["result"]?["block"] != .null }
        let proof = await rpc.call("proof", ["id": .string(id)])
        #expect(proof["result"]?["reading"] != nil, "\(proof)")
        // The tip is the engine's: it follows the store's commit of the block a moment later.
        try await node.eventually("the tip names the block") { await rpc.call("tip")["result"]?["height"] != nil }
    }

    @Test func malformedMessagesGetTheStandardCodesAndThePlaceOfTheProblem() async throws {
        let rpc = try InProcessNode().rpc()
        let garbage = try #require(await rpc.send("garbage"))
        #expect(garbage["error"]?["code"] == .int(-32700) && garbage["id"] == .null)
        let duplicate = try #require(await rpc.send(#"{"jsonrpc":"2.0","id":1,"method":"info","method":"tip"}"#))
        #expect(duplicate["error"]?["code"] == .int(-32700))
        #expect(duplicate["error"]?["message"]?.stringValue?.contains("duplicate key \"method\" at byte") == true, "\(duplicate)")
        #expect(await rpc.send("[]")?["error"]?["code"] == .int(-32600))
        let wrongVersion = try #require(await rpc.send(#"{"jsonrpc":"1.0","id":"a","method":"info"}"#))
        #expect(wrongVersion["error"]?["code"] == .int(-32600) && wrongVersion["id"] == "a")
        let objectID = try #require(await rpc.send(#"{"jsonrpc":"2.0","id":{"x":1},"method":"info"}"#))
        #expect(objectID["error"]?["code"] == .int(-32600) && objectID["id"] == .null)
        #expect(await rpc.send(#"{"jsonrpc":"2.0","id":2,"method":"frobnicate"}"#)?["error"]?["code"] == .int(-32601))
        #expect(await rpc.send(#"{"jsonrpc":"2.0","id":3,"method":"readings","params":[1]}"#)?["error"]?["code"] == .int(-32602))
    }

    @Test func idsComeBackExactlyAsSentEvenBeyondSixtyFourBits() async throws {
        let rpc = try InProcessNode().rpc()
        let bytes = await RPCEndpoint.handle(Array(#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"info"}"#.utf8), dispatcher: rpc.dispatcher)
        let text = String(decoding: try #require(bytes), as: UTF8.self)
        #expect(text.contains(#""id":123456789012345678901234567890"#), "\(text)")
        #expect(await rpc.send(#"{"jsonrpc":"2.0","id":"req-7","method":"info"}"#)?["id"] == "req-7")
    }

    @Test func submissionsStayInTheJournaledBatchUntilAQueryPublishesThem() async throws {
        let node = try InProcessNode()
        let rpc = node.rpc()
        for n in 1...3 { _ = await rpc.call("submit", ["device": "batched", "payload": ["n": .int(n)]]) }
        #expect(node.engine.store.batchOpen, "checking a submission's credentials does not publish the batch")
        let page = await rpc.call("readings", ["device": "batched"])
        #expect(page["result"]?["readings"]?.arrayValue?.count == 3, "a query sees every acknowledged reading (it publishes the batch first)")
    }

    @Test func aNotificationIsCarriedOutButNotAnswered() async throws {
        let node = try InProcessNode()
        let rpc = node.rpc()
        #expect(await rpc.send(#"{"jsonrpc":"2.0","method":"submit","params":{"device":"quiet","payload":{"n":1}}}"#) == nil)
        let page = await rpc.call("readings", ["device": "quiet"])
        #expect(page["result"]?["readings"]?.arrayValue?.count == 1)
    }

    @Test func aBatchIsAnsweredInOrderAndSkipsItsNotifications() async throws {
        let rpc = try InProcessNode().rpc()
        let reply = try #require(await rpc.send("""
            [{"jsonrpc":"2.0","id":1,"method":"submit","params":{"device":"b","payload":{"n":1}}},
             {"jsonrpc":"2.0","method":"submit","params":{"device":"b","payload":{"n":2}}},
             {"jsonrpc":"2.0","id":3,"method":"submit","params":{"device":"b","payload":{"n":3}}},
             {"jsonrpc":"2.0","id":4,"method":"nope"}]
            """))
        let items = try #require(reply.arrayValue)
        #expect(items.map { $0["id"] } == [.int(1), .int(3), .int(4)])
        #expect(items[0]["result"]?["seq"] == .int(1) && items[1]["result"]?["seq"] == .int(3), "readings keep the batch's order")
        #expect(items[2]["error"]?["code"] == .int(-32601))
    }

    @Test func numbersThatDoNotFitAreRefusedNamingTheParameter() async throws {
        let rpc = try InProcessNode().rpc()
        for (params, name) in [(#"{"device":"d","limit":1e30}"#, "limit"), (#"{"device":"d","from":9223372036854775808}"#, "from"),
                               (#"{"device":"d","limit":2.5}"#, "limit")] {
            let reply = try #require(await rpc.send(#"{"jsonrpc":"2.0","id":1,"method":"readings","params":"# + params + "}"))
            #expect(reply["error"]?["code"] == .int(-32602), "\(params)")
            #expect(reply["error"]?["message"]?.stringValue?.contains("'\(name)'") == true, "\(reply)")
        }
    }

    @Test func writesNeedTheTokenWhenTheNodeHasOneAndReadsStayOpen() async throws {
        let node = try InProcessNode { $0.token = "s3cret" }
        let anonymous = node.rpc()
        #expect(await anonymous.call("submit", ["device": "t", "payload": ["x": 1]])["error"]?["code"] == .int(-32001))
        #expect(await anonymous.call("info")["result"]?["writeTokenRequired"] == true)
        #expect(await node.rpc(token: "s3cret").call("submit", ["device": "t", "payload": ["x": 1]])["result"]?["seq"] == .int(1))
    }

    @Test func aSubscriberHearsEachCommitFromTheFeed() async throws {
        let node = try InProcessNode()
        let rpc = node.rpc()
        let sub = await rpc.call("subscribe", ["topic": "readings", "device": "watched"])
        #expect(sub["result"]?["subscription"] != nil, "\(sub)")
        for i in 0..<3 { _ = await rpc.call("submit", ["device": "watched", "payload": ["i": .int(i)]]) }
        _ = await rpc.call("submit", ["device": "other", "payload": ["i": 9]])
        try await node.eventually("three notifications") { rpc.notifications.count >= 3 }
        let seqs = rpc.notifications.compactMap { $0["params"]?["reading"]?["seq"] }
        #expect(seqs == [.int(1), .int(2), .int(3)], "only the subscribed device, in order")
    }

    @Test func readingsAfterASeqWaitForTheNextOneAndFollowersResumeBySeq() async throws {
        let node = try InProcessNode()
        let rpc = node.rpc()
        for i in 0..<3 { _ = await rpc.call("submit", ["device": "meter", "payload": ["i": .int(i)]]) }
        let page = await rpc.call("readings", ["device": "meter", "afterSeq": 1])
        #expect(page["result"]?["readings"]?.arrayValue?.compactMap { $0["seq"] } == [.int(2), .int(3)], "\(page)")
        #expect(page["result"]?["lastSeq"] == .int(3) && page["result"]?["newestSeq"] == .int(3))
        let none = await rpc.call("readings", ["device": "meter", "afterSeq": 3])
        #expect(none["result"]?["readings"] == .array([]) && none["result"]?["lastSeq"] == .int(3))
        // A waiting call returns as soon as the next reading is committed.
        let waiter = node.rpc()
        async let waited = waiter.call("readings", ["device": "meter", "afterSeq": 3, "wait": 5000])
        try await Task.sleep(for: .milliseconds(200))
        _ = await rpc.call("submit", ["device": "meter", "payload": ["i": 3]])
        #expect(await waited["result"]?["readings"]?.arrayValue?.compactMap { $0["seq"] } == [.int(4)])
        // Bad combinations are named.
        #expect(await rpc.call("readings", ["device": "meter", "afterSeq": 1, "cursor": "x"])["error"]?["code"] == .int(-32602))
        #expect(await rpc.call("readings", ["device": "meter", "afterSeq": 1, "wait": 60000])["error"]?["code"] == .int(-32602))
        #expect(await rpc.call("subscribe", ["topic": "readings", "afterSeq": 1])["error"]?["code"] == .int(-32602), "afterSeq needs a device")
        // A follower that resumes after seq 2 hears 3, 4 and what comes next, in seq order.
        let sub = await rpc.call("subscribe", ["topic": "readings", "device": "meter", "afterSeq": 2])
        #expect(sub["result"]?["afterSeq"] == .int(2), "\(sub)")
        _ = await rpc.call("submit", ["device": "meter", "payload": ["i": 4]])
        try await node.eventually("three notifications") { rpc.notifications.count >= 3 }
        #expect(rpc.notifications.compactMap { $0["params"]?["reading"]?["seq"] } == [.int(3), .int(4), .int(5)])
    }
}
