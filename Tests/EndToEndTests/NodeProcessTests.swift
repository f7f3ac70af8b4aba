import FlowchainClient
import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
import NodeServer
import Testing
import FlowchainWire

/// The node's server, tested against a real `flowchain node` process over loopback.
@Suite("Node process: devices, JSON-RPC, health, metrics over real sockets", .serialized)
struct NodeProcessTests {
    @Test func healthMetricsAndDashboardAreServed() async throws {
        let node = try await RunningNode(["--demo", "--demo-rate", "20"])
        #expect(try await node.process.waitForOutput("block 1 sealed"))
        let health = try LoopbackHTTP.get(port: node.port, path: "/health")
        #expect(health.status == 200)
        let status = try #require(try JSONSerialization.jsonObject(with: Data(health.body)) as? [String: Any])
        #expect(status["status"] as? String == "ok")
        let metrics = try LoopbackHTTP.get(port: node.port, path: "/metrics")
        #expect(metrics.status == 200 && metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
        let demo = metrics.text.split(separator: "\n").first { $0.hasPrefix("flowchain_readings_ingested_total{source=\"demo\"}") }
        #expect(Int(demo?.split(separator: " ").last ?? "0") ?? 0 > 0, "demo readings counted:\n\(metrics.text.prefix(800))")
        for series in ["flowchain_blocks_total", "flowchain_ack_latency_seconds_bucket", "flowchain_connections", "flowchain_dropped_frames_total"] {
            #expect(metrics.text.contains(series), "missing \(series)")
        }
        // Memory as operators read it: shared library pages count in full in RSS, in part in PSS,
        // not at all in USS; the node's /proc figures agree.
        func memory(_ kind: String) -> Double? {
            metrics.text.split(separator: "\n").first { $0.hasPrefix("flowchain_memory_bytes{kind=\"\(kind)\"}") }
                .flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        let (rss, pss, uss) = (memory("resident") ?? 0, memory("proportional") ?? 0, memory("unique") ?? 0)
        #expect(uss > 1_000_000 && uss <= pss && pss <= rss, "USS \(uss) ≤ PSS \(pss) ≤ RSS \(rss)")
        #expect(abs(rss / 1_048_576 - node.process.rssMB()) < max(8, rss / 1_048_576 / 4), "RSS \(rss) as /proc/PID/status says: \(node.process.rssMB()) MB")
        let anonymous = memory("anonymous") ?? 0, anonymousNow = node.process.rssMB(field: "RssAnon:") * 1_048_576
        #expect(anonymous > 1_000_000 && anonymous < rss, "RssAnon \(anonymous) is part of RSS \(rss)")
        #expect(abs(anonymous - anonymousNow) < max(8_388_608, anonymousNow / 4), "RssAnon \(anonymous) as /proc/PID/status says: \(anonymousNow)")
        let page = try LoopbackHTTP.get(port: node.port, path: "/")
        let script = try LoopbackHTTP.get(port: node.port, path: "/dashboard.js")
        #expect(page.status == 200 && page.text.contains("<title>Flowchain"))
        #expect(script.status == 200 && script.text.contains("subscribe"))
        #expect(page.body.count + script.body.count <= 100 * 1024, "dashboard page weight \(page.body.count + script.body.count) bytes")
        let td = try LoopbackHTTP.get(port: node.port, path: "/object/demo-1")
        #expect(td.status == 200 && td.headers["content-type"]?.hasPrefix("application/td+json") == true)
        let thing = try #require(try JSONSerialization.jsonObject(with: Data(td.body)) as? [String: Any])
        #expect((thing["properties"] as? [String: Any])?.keys.sorted() == ["humidity", "temperature"])
        #expect(try LoopbackHTTP.get(port: node.port, path: "/object/nobody").status == 404)
        // A WebSocket route asked with plain HTTP says what it is (it answered an empty 200).
        for path in ["/object/demo-1/send", "/object/demo-1/status", "/rpc"] {
            let plain = try LoopbackHTTP.get(port: node.port, path: path)
            #expect(plain.status == 426 && plain.text.contains("is a WebSocket endpoint"), "\(path): \(plain.status) \(plain.text)")
        }
        #expect(try LoopbackHTTP.get(port: node.port, path: "/object/bad%20id").status == 400)
        let history = try LoopbackHTTP.get(port: node.port, path: "/object/demo-1/readings?limit=3")
        let page1 = try #require(try JSONSerialization.jsonObject(with: Data(history.body)) as? [String: Any])
        #expect((page1["readings"] as? [Any])?.count == 3 && page1["nextCursor"] is String)
        #expect(try await node.stop() == 0)
    }

    @Test func rpcSubmitQueryProveAndVerifyOffline() async throws {
        let node = try await RunningNode()
        let deviceKey = try PrivateKey()
        let signed = try Reading(device: "signed-dev", seq: 7, time: 1_764_000_000_000, source: .rpc,
                                 payload: Array(#"{"pressure":1013.2}"#.utf8), signedBy: deviceKey)
        let (acks, proofJSON) = try await RPCConnection.with(node.url) { rpc -> ([String], String) in
            var ids: [String] = []
            for i in 0..<10 {
                let ack = try await rpc.call("submit", ["device": "rpc-dev", "payload": ["n": .int(i)]])
                ids.append(ack["id"]?.stringValue ?? "")
            }
            let signedAck = try await rpc.call("submit", [
                "device": .string(signed.device), "seq": 7, "time": .int(signed.time), "timeSynced": true, "source": "rpc",
                "payload": .string(signed.payloadText), "signer": .string(signed.signer.hex), "signature": .string(Hex.encode(signed.signature)),
            ])
            ids.append(signedAck["id"]?.stringValue ?? "")
            let page = try await rpc.call("readings", ["device": "rpc-dev"])
            let seqs = page["readings"]?.arrayValue?.compactMap { $0["seq"]?.int64Value.map { Int($0) } }
            #expect(seqs == Array(1...10))
            // Wait until the device-signed reading is sealed, then take its proof.
            var proof: JSONValue = .null
            for _ in 0..<100 {
                proof = try await rpc.call("proof", ["id": .string(ids[10])])
                if proof["block"] != .null { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            return (ids, proof.jsonText)
        }
        #expect(acks[10] == signed.id.hex, "a device-signed reading keeps its own id")
        #expect(try await node.stop() == 0)

        let file = node.dir.file("proof.json")
        try proofJSON.write(toFile: file, atomically: true, encoding: .utf8)
        let offline = try await runFlowchain(["verify", "--proof", file])
        #expect(offline.status == 0 && offline.stdout.hasPrefix("valid:"), "\(offline.output)")
        let tampered = proofJSON.replacingOccurrences(of: "7b227072", with: "7b227073")   // {"pr → {"ps inside the payload
        #expect(tampered != proofJSON)
        try tampered.write(toFile: file, atomically: true, encoding: .utf8)
        let bad = try await runFlowchain(["verify", "--proof", file])
        #expect(bad.status == 1 && bad.stdout.hasPrefix("invalid:"), "\(bad.output)")
    }

    @Test func aSubscriberThatReconnectsWithItsCursorMissesNothingAndSeesNothingTwice() async throws {
        let node = try await RunningNode()
        let total = 300
        // A producer writes readings steadily while the subscriber comes and goes.
        let producer = Task {
            try await RPCConnection.with(node.url) { rpc in
                for i in 0..<total {
                    _ = try await rpc.call("submit", ["device": "resume-dev", "payload": ["i": .int(i)]])
                    if i % 10 == 0 { try await Task.sleep(for: .milliseconds(15)) }
                }
            }
        }
        var seqs: [Int] = []
        var cursor: Int64 = 0
        // Three sessions: each takes some readings, then drops the connection without unsubscribing.
        for take in [60, 90, total] {
            let want = min(take, total - seqs.count)
            let from = cursor
            let got = try await RPCConnection.with(node.url) { rpc -> [(Int, Int64)] in
                _ = try await rpc.call("subscribe", ["topic": "readings", "device": "resume-dev", "cursor": .int(from)])
                var out: [(Int, Int64)] = []
                for await note in rpc.notifications {
                    guard let r = note["params"]?["reading"] else { continue }
                    out.append((r["seq"]?.int64Value.map { Int($0) } ?? -1, r["cursor"]?.int64Value ?? -1))
                    if out.count == want { break }
                }
                return out
            }
            seqs += got.map(\.0)
            cursor = got.last?.1 ?? cursor
            if seqs.count >= total { break }
        }
        try await producer.value
        #expect(seqs == Array(1...total), "gaps or repeats: got \(seqs.count) readings")
        #expect(try await node.stop() == 0)
    }

    @Test func tokensGuardWrites() async throws {
        let node = try await RunningNode(["--token", "s3cret"])
        let denied = try await RPCConnection.with(node.url) { rpc -> Int in
            do {
                _ = try await rpc.call("submit", ["device": "t", "payload": ["x": 1]])
                return 0
            } catch let e as RPCConnection.RemoteError {
                return e.code
            }
        }
        #expect(denied == -32001)
        let tokenRequired = try await RPCConnection.with(node.url) { rpc in
            try await rpc.call("info")["writeTokenRequired"]?.boolValue
        }
        #expect(tokenRequired == true, "reads stay open")
        let allowedSeq = try await RPCConnection.with(node.url, token: "s3cret") { rpc in
            try await rpc.call("submit", ["device": "t", "payload": ["x": 1]])["seq"]?.int64Value
        }
        #expect(allowedSeq == 1)
        // The device endpoint refuses the upgrade without the token, and takes frames with it.
        await #expect(throws: (any Error).self) {
            try await withWebSocket("\(node.url)/object/t/send") { ws in try await ws.send("{\"x\":2}") }
        }
        let ackSeq = try await withWebSocket("\(node.url)/object/t/send?ack=1&token=s3cret") { ws in
            try await ws.send("{\"x\":2}")
            return await ws.next().first?["ack"]?["seq"]?.int64Value.map { Int($0) }
        }
        #expect(ackSeq == 2)
        #expect(try await node.stop() == 0)
    }

    @Test func badInputIsAnsweredAndTheNodeKeepsServingAndLosesNothing() async throws {
        let node = try await RunningNode()
        // Some readings before the abuse.
        let before = try await RPCConnection.with(node.url) { rpc -> [String] in
            var ids: [String] = []
            for i in 0..<20 { ids.append(try await rpc.call("submit", ["device": "keep", "payload": ["i": .int(i)]])["id"]?.stringValue ?? "") }
            return ids
        }
        // Device endpoint: garbage, non-objects, binary; an oversize frame closes that connection only.
        let answers = try await withWebSocket("\(node.url)/object/abuse/send") { ws in
            try await ws.send("garbage")
            try await ws.send("42")
            try await ws.send("{\"unterminated\": ")
            try await ws.sendBinary([0, 1, 2])
            try await ws.send(#"{"signature":"zz","device":"abuse"}"#)
            return await ws.next(5).compactMap { $0["error"]?["kind"]?.stringValue }
        }
        #expect(answers == ["payload_not_object", "payload_not_object", "payload_not_object", "binary_frame", "malformed"])
        // An oversize frame closes that connection with 1009 and stores nothing.
        let big = try #require(RawWebSocket(port: node.port, path: "/object/abuse/send?ack=1"))
        big.sendFrame(opcode: 1, Array(("{\"blob\":\"" + String(repeating: "x", count: 70 * 1024) + "\"}").utf8))
        let oversize = big.readUntilClose()
        #expect(oversize.code == 1009 && oversize.texts.isEmpty, "\(oversize)")
        // RPC: malformed requests of every kind get the standard codes.
        let codes = try await RPCConnection.with(node.url) { rpc -> [Int] in
            var out: [Int] = []
            for (method, params) in [("frobnicate", [String: JSONValue]()), ("readings", [:]), ("readings", ["device": "a b"]),
                                     ("block", ["height": "x"]), ("reading", ["id": "123"]), ("subscribe", ["topic": "weather"]),
                                     ("submit", ["device": "k", "payload": [1, 2]]), ("submit", ["readings": []])] {
                do { _ = try await rpc.call(method, params); out.append(0) } catch let e as RPCConnection.RemoteError { out.append(e.code) }
            }
            return out
        }
        #expect(codes == [-32601, -32602, -32602, -32602, -32602, -32602, -32602, -32602])

        // 10,000 connections opened and dropped: half bare TCP, half a partial HTTP request.
        let port = node.port
        let start = ContinuousClock.now
        let opened = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<20 {
                group.addTask {
                    var n = 0
                    for i in 0..<500 where ContinuousClock.now - start < .seconds(180) {
                        guard let fd = LoopbackHTTP.connect(port: port) else { continue }
                        if (worker + i) % 2 == 0 {
                            let partial = Array("GET /rpc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n".utf8)
                            _ = partial.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                        }
                        close(fd)
                        n += 1
                    }
                    return n
                }
            }
            return await group.reduce(0, +)
        }
        #expect(opened >= 9_900, "only \(opened) connections could be opened")

        // Still serving, and nothing lost.
        #expect(try LoopbackHTTP.get(port: node.port, path: "/health").status == 200)
        let after = try await RPCConnection.with(node.url) { rpc -> ([String], Int) in
            let ack = try await rpc.call("submit", ["device": "keep", "payload": ["i": 20]])
            let page = try await rpc.call("readings", ["device": "keep", "limit": 100])
            return ((page["readings"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }, ack["seq"]?.int64Value.map { Int($0) } ?? 0)
        }
        #expect(after.1 == 21)
        let abused = try await RPCConnection.with(node.url) { rpc in
            try await rpc.call("readings", ["device": "abuse"])["readings"]?.arrayValue?.count
        }
        #expect(abused == 0, "nothing of the refused or oversize frames was stored")
        #expect(Set(before).isSubset(of: Set(after.0)) && after.0.count == 21)
        #expect(try await node.stop() == 0)
        #expect(node.process.output.contains("node stopped cleanly"))
    }

    @Test func sigtermWithOpenConnectionsExitsCleanlyKeepingEveryAcknowledgedReading() async throws {
        let node = try await RunningNode(["--demo", "--demo-rate", "50"])
        let viewer = Task { try await withWebSocket("\(node.url)/object/demo-0/viewer") { ws in await ws.next(1_000_000, timeout: .seconds(60)).count } }
        let subscriber = Task { try await RPCConnection.with(node.url) { rpc in
            _ = try await rpc.call("subscribe", ["topic": "blocks"])
            for await _ in rpc.notifications {}
        } }
        // The ids come from the acknowledgements themselves: each must be on disk after SIGTERM.
        let acked = try await RPCConnection.with(node.url) { rpc -> [String] in
            var ids: [String] = []
            for i in 0..<50 {
                ids.append(try await rpc.call("submit", ["device": "last-words", "payload": ["i": .int(i)]])["id"]?.stringValue ?? "")
            }
            return ids
        }
        let started = ContinuousClock.now
        #expect(try await node.stop() == 0, "\(node.process.output.suffix(1500))")
        #expect(ContinuousClock.now - started < .seconds(15), "shutdown took \(ContinuousClock.now - started)")
        _ = try? await viewer.value
        _ = try? await subscriber.value
        let store = try LedgerStore(path: node.dataDir + "/ledger.sqlite", owner: nil, readOnly: true)
        #expect(acked.count == 50 && Set(acked).count == 50)
        for id in acked { #expect(try Digest32(hex: id).flatMap { try store.reading(id: $0) } != nil, "acknowledged \(id) is not stored") }
        #expect(try store.counts().pending == 0)
        try store.verifyAll()
    }

    @Test func configurationPrecedenceIsFlagsThenEnvironmentThenFile() async throws {
        let dir = TemporaryDirectory("config")
        let (filePort, envPort, flagPort) = (LoopbackHTTP.freePort(), LoopbackHTTP.freePort(), LoopbackHTTP.freePort())
        let config = dir.file("flowchain.json")
        try "{\"port\": \(filePort), \"blockInterval\": 250}".write(toFile: config, atomically: true, encoding: .utf8)
        func listeningPort(_ args: [String], env: [String: String]) async throws -> Int? {
            let p = try FlowchainProcess(["node", "--data-dir", dir.file("data"), "--config", config] + args,
                                         outputPath: dir.file("log-\(UUID().uuidString.prefix(6)).txt"), environment: env)
            let port = try await p.waitForPort()
            p.signal(SIGTERM)
            try await p.wait()
            return port
        }
        #expect(try await listeningPort([], env: [:]) == filePort)
        #expect(try await listeningPort([], env: ["PORT": "\(envPort)"]) == envPort)
        #expect(try await listeningPort(["--port", "\(flagPort)"], env: ["PORT": "\(envPort)"]) == flagPort)
        try "{\"prot\": 1}".write(toFile: config, atomically: true, encoding: .utf8)
        let typo = try await runFlowchain(["node", "--data-dir", dir.file("data"), "--config", config])
        #expect(typo.status != 0 && typo.output.contains("unknown key 'prot'"), "\(typo.output)")
    }

    /// A board without a real-time clock: what the node time-stamps says whether its clock was
    /// synchronised, and the log says why not.
    @Test func readingsTheNodeStampsSayWhetherItsClockIsSynchronised() async throws {
        let untrusted = try await RunningNode(["--clock-sync", "untrusted"], label: "clock-untrusted")
        let trusted = try await RunningNode(["--clock-sync", "trusted"], label: "clock-trusted")
        let a = try await RPCConnection.with(untrusted.url) { try await $0.call("submit", ["device": "rtc-less", "payload": ["t": 1]]) }
        let b = try await RPCConnection.with(trusted.url) { try await $0.call("submit", ["device": "gps-clock", "payload": ["t": 1]]) }
        let ra = try await RPCConnection.with(untrusted.url) { try await $0.call("reading", ["id": a["id"] ?? .null]) }
        let rb = try await RPCConnection.with(trusted.url) { try await $0.call("reading", ["id": b["id"] ?? .null]) }
        #expect(ra["timeSynced"] == .bool(false) && rb["timeSynced"] == .bool(true))
        #expect(try await untrusted.process.waitForOutput("the system clock is not synchronised (--clock-sync untrusted)"), "\(untrusted.process.output)")
        // A time the client gives keeps the client's word.
        let given = try await RPCConnection.with(untrusted.url) {
            try await $0.call("submit", ["device": "rtc-less", "payload": ["t": 2], "time": 1_764_000_000_000, "timeSynced": true])
        }
        #expect(try await RPCConnection.with(untrusted.url) { try await $0.call("reading", ["id": given["id"] ?? .null]) }["timeSynced"] == .bool(true))
        _ = try await untrusted.stop()
        _ = try await trusted.stop()
        let bad = try await runFlowchain(["node", "--data-dir", TemporaryDirectory("clock-bad").file("data"), "--clock-sync", "sometimes"])
        #expect(bad.status != 0 && bad.output.contains("--clock-sync must be kernel, trusted, untrusted"), "\(bad.output)")
    }

    /// A second node on a port the first one holds says which address and what to do, and exits.
    @Test func aPortInUseIsNamed() async throws {
        let first = try await RunningNode(label: "holder")
        let second = try await runFlowchain(["node", "--data-dir", TemporaryDirectory("second").file("d"), "--port", "\(first.port)"], timeout: .seconds(60))
        _ = try await first.stop()
        #expect(second.status == 1, "\(second.output)")
        #expect(second.stderr.contains("cannot listen on 127.0.0.1:\(first.port): the address is in use"), "\(second.output)")
    }

    /// Under systemd (stderr connected to the journal) log lines carry their syslog priority and
    /// no time stamp of their own; elsewhere they keep the usual format.
    @Test func underSystemdLogLinesCarryTheirPriorityForTheJournal() async throws {
        let dir = TemporaryDirectory("journal")
        let log = dir.file("node.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        var st = stat()
        #expect(stat(log, &st) == 0)
        let node = try FlowchainProcess(["node", "--data-dir", dir.file("data"), "--port", "0", "--clock-sync", "untrusted"], outputPath: log,
                                        environment: ["JOURNAL_STREAM": "\(st.st_dev):\(st.st_ino)"])
        #expect(try await node.waitForPort() != nil, "\(node.output)")
        node.signal(SIGTERM)
        _ = try await node.wait()
        let lines = node.output.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("<6>[FlowchainNode] node ready: key ") }, "\(node.output.prefix(600))")
        #expect(lines.contains { $0.hasPrefix("<4>[FlowchainNode] the system clock is not synchronised") }, "a warning is priority 4")
        #expect(!lines.contains { $0.first?.isNumber == true }, "no time stamps of its own")
    }
}
