import FlowchainClient
import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
import NodeServer
import Testing
import FlowchainWire

/// What an outsider can send a node, tried against a real `flowchain node` process.
@Suite("Trust: hostile input, device ownership, the connection edge", .serialized)
struct TrustTests {
    static func code(_ body: @escaping @Sendable () async throws -> Any) async -> (Int, String) {
        do {
            _ = try await body()
            return (0, "")
        } catch let e as RPCConnection.RemoteError {
            return (e.code, e.message)
        } catch {
            return (-1, "\(error)")
        }
    }

    @Test func hostileNumbersAreRefusedWhereTheyEnterAndTheNodeSurvives() async throws {
        let node = try await RunningNode()
        let answers = try await RPCConnection.with(node.url) { rpc -> [(Int, String)] in
            var out: [(Int, String)] = []
            let cases: [(String, [String: JSONValue])] = [
                ("subscribe", ["topic": "blocks", "cursor": -2]),
                ("subscribe", ["topic": "blocks", "cursor": .int(Int64.max)]),
                ("subscribe", ["topic": "blocks", "cursor": .int(UInt64.max)]),
                ("subscribe", ["topic": "readings", "cursor": -1]),
                ("subscribe", ["topic": "readings", "cursor": 1.5]),
                ("subscribe", ["topic": "readings", "device": 5]),
                ("blocks", ["below": -1]),
                ("unsubscribe", ["subscription": -1]),
                ("readings", ["device": "d", "limit": 1e30]),
                ("readings", ["device": "d", "from": .int(UInt64(Int64.max) + 1)]),
                ("submit", ["device": "d", "seq": .int(UInt64.max), "time": 1, "payload": "{}", "signer": .string(String(repeating: "0", count: 64)), "signature": .string(String(repeating: "0", count: 128))]),
            ]
            for (method, params) in cases {
                out.append(await Self.code { try await rpc.call(method, params) })
            }
            return out
        }
        for (i, (code, message)) in answers.enumerated() {
            #expect(code == -32602, "case \(i): \(code) \(message)")
        }
        #expect(answers[0].1.contains("'cursor'") && answers[6].1.contains("'below'") && answers[7].1.contains("'subscription'"))
        // A valid blocks subscription sees the next block, and the node is still there afterwards.
        let sawBlock = try await RPCConnection.with(node.url) { rpc -> Bool in
            _ = try await rpc.call("subscribe", ["topic": "blocks", "cursor": -1])
            _ = try await rpc.call("submit", ["device": "d", "payload": ["x": 1]])
            for await note in rpc.notifications where note["params"]?["block"] != nil { return true }
            return false
        }
        #expect(sawBlock)
        // Subscriptions per connection are bounded.
        let codes = try await RPCConnection.with(node.url) { rpc -> [Int] in
            var out: [Int] = []
            for _ in 0..<65 { out.append(await Self.code { try await rpc.call("subscribe", ["topic": "blocks"]) }.0) }
            return out
        }
        #expect(codes.prefix(64).allSatisfy { $0 == 0 } && codes.last == -32006, "\(codes.suffix(3))")
        #expect(try LoopbackHTTP.get(port: node.port, path: "/health").status == 200)
        #expect(try await node.stop() == 0)
    }

    @Test func pipelinedAndBatchedReadingsOfOneDeviceAreAllStored() async throws {
        let node = try await RunningNode(["--rate-limit", "0"])
        let key = try PrivateKey()
        func wire(_ seq: Int) throws -> JSONValue {
            let r = try Reading(device: "pipelined", seq: UInt64(seq), time: 1_764_000_000_000 + Int64(seq), source: .rpc,
                                payload: Array("{\"n\":\(seq)}".utf8), signedBy: key)
            return ["encoded": .string(Hex.encode(r.encoded))]
        }
        var messages: [String] = []
        for b in 0..<5 {
            let batch = try (1...100).map { try wire(b * 100 + $0) }
            messages.append(JSONValue.object(["jsonrpc": "2.0", "id": .int(b), "method": "submit", "params": ["readings": .array(batch)]]).jsonText)
        }
        for seq in 501...1000 {
            messages.append(JSONValue.object(["jsonrpc": "2.0", "id": .int(seq), "method": "submit", "params": try wire(seq)]).jsonText)
        }
        let toSend = messages
        let replies = try await withWebSocket("\(node.url)/rpc") { ws in
            for m in toSend { try await ws.send(m) }    // all in flight at once, none awaited
            return await ws.next(toSend.count, timeout: .seconds(120))
        }
        #expect(replies.count == 505)
        let errors = replies.filter { (reply: JSONValue) -> Bool in
            if reply["error"] != nil { return true }
            let results: [JSONValue] = reply["result"]?.arrayValue ?? []
            return results.contains { $0["error"] != nil }
        }
        #expect(errors.isEmpty, "refused: \(errors.prefix(2))")
        let seqs = try await RPCConnection.with(node.url) { rpc -> [Int] in
            let page = try await rpc.call("readings", ["device": "pipelined", "limit": 1000])
            return (page["readings"]?.arrayValue ?? []).compactMap { $0["seq"]?.int64Value.map { Int($0) } }
        }
        #expect(seqs.sorted() == Array(1...1000), "every one of the 1,000 readings is stored")
        #expect(try await node.stop() == 0)
    }

    @Test func devicesOwnTheirRecordsOverTheWire() async throws {
        let node = try await RunningNode(["--token", "node-secret", "--protect-reads"])
        // A token of its own for `gate`, issued on the node's machine while it runs.
        let issued = try await runFlowchain(["devices", "add", "gate", "--token", "--data-dir", node.dataDir])
        #expect(issued.status == 0, "\(issued.output)")
        let token = try #require(issued.output.split(separator: "\n").first { $0.hasPrefix("token ") }.map { String($0.dropFirst(6)) })

        let ack = try await withWebSocket("\(node.url)/object/gate/send?ack=1&token=\(token)") { ws in
            try await ws.send(#"{"open":true}"#)
            return await ws.next().first?["ack"]?["seq"]?.int64Value
        }
        #expect(ack == 1)
        // The gate's token cannot write as another device, and the refusal says why.
        let other = try LoopbackHTTP.upgrade(port: node.port, path: "/object/porch/send?token=\(token)")
        #expect(other.status == 401 && other.text.contains("needs a token"), "\(other.status) \(other.text)")
        // Reads are protected on this node: the status endpoint too.
        let status = try LoopbackHTTP.upgrade(port: node.port, path: "/object/gate/status")
        #expect(status.status == 401 && status.text.contains("token"), "\(status.status) \(status.text)")

        let deviceKey = try PrivateKey(), stranger = try PrivateKey()
        let results = try await RPCConnection.with(node.url, token: "node-secret") { rpc -> [(Int, String)] in
            var out: [(Int, String)] = []
            out.append(await Self.code { try await rpc.call("addDevice", ["device": "meter", "key": .string(deviceKey.publicKey.hex)]) })
            let good = try Reading(device: "meter", seq: 1, time: 1, source: .rpc, payload: Array("{}".utf8), signedBy: deviceKey)
            let forged = try Reading(device: "meter", seq: 2, time: 2, source: .rpc, payload: Array("{}".utf8), signedBy: stranger)
            let identity = "01" + String(repeating: "0", count: 62)
            out.append(await Self.code { try await rpc.call("submit", ["encoded": .string(Hex.encode(good.encoded))]) })
            out.append(await Self.code { try await rpc.call("submit", ["encoded": .string(Hex.encode(forged.encoded))]) })
            out.append(await Self.code { try await rpc.call("addDevice", ["device": "ghost", "key": .string(identity)]) })
            return out
        }
        #expect(results[0].0 == 0 && results[1].0 == 0, "\(results)")
        #expect(results[2].0 == -32002 && results[2].1.contains("bound to key \(deviceKey.publicKey.hex)"), "\(results[2])")
        #expect(results[3].0 == -32602 && results[3].1.contains("not a usable Ed25519 public key"), "\(results[3])")
        // A device token is not the node's: on this node (reads protected) it cannot even open /rpc,
        // so it cannot register devices either.
        let deviceRPC = try LoopbackHTTP.upgrade(port: node.port, path: "/rpc?token=\(token)")
        #expect(deviceRPC.status == 401, "\(deviceRPC.status) \(deviceRPC.text)")
        // Re-keying is explicit and logged.
        let rekey = try await runFlowchain(["devices", "rekey", "meter", "--key", stranger.publicKey.hex, "--node", node.url, "--token-of-node", "node-secret"])
        #expect(rekey.status == 0 && rekey.output.contains("re-keyed from \(deviceKey.publicKey.hex)"), "\(rekey.output)")
        #expect(try await node.process.waitForOutput("device meter re-keyed over RPC"))
        let list = try await runFlowchain(["devices", "list", "--data-dir", node.dataDir])
        #expect(list.output.contains("meter  signer \(stranger.publicKey.hex)") && list.output.contains("gate") && list.output.contains("own token"), "\(list.output)")
        // Over RPC the list is the node's (it ignored --node and listed the default data directory).
        let remote = try await runFlowchain(["devices", "list", "--node", node.url, "--token-of-node", "node-secret"])
        #expect(remote.status == 0 && remote.output.contains("gate  last seq 1") && remote.output.contains("meter  last seq 1"), "\(remote.output)")
        let remoteJSON = try await runFlowchain(["devices", "list", "--json", "--node", node.url, "--token-of-node", "node-secret"])
        #expect(remoteJSON.output.contains(#""device":"gate""#), "\(remoteJSON.output)")
        #expect(try await node.stop() == 0)
    }

    @Test func theEdgeAnswersInsteadOfHanging() async throws {
        // A header timeout long enough that a loaded machine fills the node and asks again
        // before the first idle connections time out.
        let node = try await RunningNode(["--max-connections", "40", "--header-timeout", "10"])
        // 40 connections that never finish their request head fill the node…
        let idle: [Int32] = try await offPool {
            var fds: [Int32] = []
            for i in 0..<40 {
                guard let fd = LoopbackHTTP.connect(port: node.port) else { continue }
                if i % 2 == 0 { LoopbackHTTP.send(fd, "GET /rpc HTTP/1.1\r\nHost: x\r\n") }
                fds.append(fd)
            }
            return fds
        }
        #expect(idle.count == 40)
        try await Task.sleep(for: .milliseconds(300))
        // …the next is told so at once…
        let refused = try await offPool { try LoopbackHTTP.get(port: node.port, path: "/health") }
        #expect(refused.status == 503 && refused.text.contains("at most 40 connections"), "\(refused.status) \(refused.text)")
        // …and the half-open ones are closed after the header timeout (408), which frees the node.
        let closedWith408 = try await offPool {
            var n = 0
            for fd in idle {
                let answer = LoopbackHTTP.readAll(fd)
                if String(decoding: answer, as: UTF8.self).hasPrefix("HTTP/1.1 408") { n += 1 }
                close(fd)
            }
            return n
        }
        #expect(closedWith408 == 40)
        #expect(try LoopbackHTTP.get(port: node.port, path: "/health").status == 200)

        // A few hundred half-open requests at once: all timed out, and the node serves again.
        let (many, timedOut) = try await offPool {
            var many: [Int32] = []
            for _ in 0..<300 {
                guard let fd = LoopbackHTTP.connect(port: node.port) else { break }
                LoopbackHTTP.send(fd, "GET /health HTTP/1.1\r\n")
                many.append(fd)
            }
            let timedOut = many.filter { String(decoding: LoopbackHTTP.readAll($0), as: UTF8.self).hasPrefix("HTTP/1.1 408") }.count
            for fd in many { close(fd) }
            return (many, timedOut)
        }
        #expect(timedOut == many.count && many.count >= 250, "\(timedOut) of \(many.count) half-open requests answered 408")
        #expect(try LoopbackHTTP.get(port: node.port, path: "/health").status == 200)

        // A text frame that is not UTF-8 is closed with 1007 and not stored (no U+FFFD stand-in).
        let ws = try #require(RawWebSocket(port: node.port, path: "/object/utf/send?ack=1"))
        ws.sendFrame(opcode: 1, [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D])   // {"a":"\xC3("}
        let closing = ws.readUntilClose()
        #expect(closing.code == 1007 && closing.texts.isEmpty, "\(closing)")
        // An oversize frame closes with 1009 and nothing of it is stored.
        let big = try #require(RawWebSocket(port: node.port, path: "/object/big/send?ack=1"))
        big.sendFrame(opcode: 1, Array(("{\"blob\":\"" + String(repeating: "x", count: 70 * 1024) + "\"}").utf8))
        let oversize = big.readUntilClose()
        #expect(oversize.code == 1009 && oversize.texts.isEmpty, "\(oversize)")
        let stored = try await RPCConnection.with(node.url) { rpc -> Int in
            var n = 0
            for device in ["utf", "big"] {
                let page = try await rpc.call("readings", ["device": .string(device)])
                n += page["readings"]?.arrayValue?.count ?? -1
            }
            return n
        }
        #expect(stored == 0)
        #expect(FlowchainServer.isLoopback("127.0.0.1") && FlowchainServer.isLoopback("::1") && !FlowchainServer.isLoopback("0.0.0.0"))
        #expect(try await node.stop() == 0)
    }
}

@Suite("Trust: registration needs the node's token")
struct RegistrationTokenTests {
    @Test func registeringOverRPCNeedsTheNodesToken() async throws {
        let open = try await RunningNode()
        let noToken = try await RPCConnection.with(open.url) { rpc in
            await TrustTests.code { try await rpc.call("addDevice", ["device": "x", "token": true]) }
        }
        #expect(noToken.0 == -32001 && noToken.1.contains("--token"), "a node without a token cannot be administered over the network: \(noToken)")
        #expect(try await open.stop() == 0)

        let guarded = try await RunningNode(["--token", "node-secret"])
        let issued = try await runFlowchain(["devices", "add", "gate", "--token", "--data-dir", guarded.dataDir])
        let token = try #require(issued.output.split(separator: "\n").first { $0.hasPrefix("token ") }.map { String($0.dropFirst(6)) })
        let results = try await RPCConnection.with(guarded.url, token: token) { rpc -> [Int] in
            [await TrustTests.code { try await rpc.call("addDevice", ["device": "x", "token": true]) }.0,
             await TrustTests.code { try await rpc.call("submit", ["device": "porch", "payload": ["x": 1]]) }.0,
             await TrustTests.code { try await rpc.call("submit", ["device": "gate", "payload": ["x": 1]]) }.0]
        }
        #expect(results == [-32001, -32001, 0], "a device token registers nothing and writes only its device")
        #expect(try await guarded.stop() == 0)
    }
}
