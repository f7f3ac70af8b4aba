import FlowchainClient
import FlowchainTesting
import Foundation
import Ledger
import Testing

/// A real node bridging a real mosquitto broker; messages published by mosquitto_pub.
@Suite("MQTT bridge: a node and a real broker", .serialized, .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
struct MQTTBridgeEndToEndTests {
    static func publish(_ port: Int, _ topic: String, _ message: String, qos: Int = 1) async throws {
        let dir = TemporaryDirectory("pub")
        let p = try ChildProcess(executable: "/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(port)", "-q", "\(qos)", "-t", topic, "-m", message],
                                 outputPath: dir.file("out"))
        #expect(try await p.wait(timeout: .seconds(60)) == 0, "\(p.output)")
    }

    static func startNode(_ dir: TemporaryDirectory, broker: MosquittoBroker, log: String = "node.log", extra: [String] = []) async throws -> (ChildProcess, Int) {
        let node = try FlowchainProcess(["node", "--data-dir", dir.file("data"), "--port", "0", "--block-interval", "100",
                                         "--mqtt", "mqtt://127.0.0.1:\(broker.port)", "--subscribe", "sensors/+/temperature", "--subscribe", "meters/#"] + extra,
                                        outputPath: dir.file(log))
        let port = try #require(try await node.waitForPort(), "\(node.output)")
        #expect(try await node.waitForOutput("MQTT bridge: connected"), "\(node.output)")
        return (node, port)
    }

    /// The first 12 hex digits of the node's key, as `{node}` becomes in topics.
    static func nodeKeyPrefix(_ port: Int) async throws -> String? {
        try await RPCConnection.with("ws://127.0.0.1:\(port)") { rpc in
            try await rpc.call("info")["publicKey"]?.stringValue.map { String($0.prefix(12)) }
        }
    }

    static func readings(_ port: Int, _ device: String) async throws -> [JSONValue] {
        try await RPCConnection.with("ws://127.0.0.1:\(port)") { rpc in
            try await rpc.call("readings", ["device": .string(device), "limit": 1000])["readings"]?.arrayValue ?? []
        }
    }

    @Test func messagesBecomeSignedReadingsBadOnesAreCountedAndNothingStopsTheBridge() async throws {
        let broker = try await MosquittoBroker()
        let dir = TemporaryDirectory("mqtt-node")
        let (node, port) = try await Self.startNode(dir, broker: broker, extra: ["--mqtt-dead-letter", "dl/{node}"])
        let letters = try Self.subscribe(broker.port, ["-q", "1", "-t", "dl/#", "-F", "%t", "-C", "3", "-W", "90"], dir: dir, name: "dl.txt")
        try await Task.sleep(for: .milliseconds(300))
        try await Self.publish(broker.port, "sensors/kitchen/temperature", "21.5")
        try await Self.publish(broker.port, "sensors/porch/temperature", #"{"c":19.25}"#)
        try await Self.publish(broker.port, "meters/floor1/m-7", "kwh=12.5 state=on")
        // Bad ones: nested too deep, too large, an id that is not a device id; and a good one after.
        try await Self.publish(broker.port, "sensors/attic/temperature", String(repeating: "[", count: 50) + String(repeating: "]", count: 50))
        try await Self.publish(broker.port, "sensors/attic/temperature", "{\"x\":\"" + String(repeating: "x", count: 20_000) + "\"}")
        try await Self.publish(broker.port, "sensors/bad id!/temperature", "1")
        try await Self.publish(broker.port, "sensors/kitchen/temperature", "21.75")

        var kitchen: [JSONValue] = []
        for _ in 0..<1200 {
            kitchen = try await Self.readings(port, "kitchen")
            if kitchen.count == 2 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(kitchen.map { $0["payload"]?["value"] } == [.number("21.5"), .number("21.75")], "\(kitchen)")
        #expect(kitchen.first?["source"] == "mqtt" && kitchen.first?["payload"]?["topic"] == "sensors/kitchen/temperature")
        #expect(kitchen.first?["signer"] == .string(try #require(kitchen.first?["signer"]?.stringValue)), "the node signs bridged readings")
        #expect(try await Self.readings(port, "porch").first?["payload"]?["c"] == .number("19.25"))
        #expect(try await Self.readings(port, "m-7").first?["payload"]?["kwh"] == .number("12.5"))
        #expect(try await Self.readings(port, "attic").isEmpty)

        let metrics = try LoopbackHTTP.get(port: port, path: "/metrics").text
        for reason in ["mqtt_bad_payload", "mqtt_too_large", "mqtt_bad_device"] {
            #expect(metrics.contains("kind=\"\(reason)\"} 1"), "\(reason) counted once:\n\(metrics.split(separator: "\n").filter { $0.contains("errors") }.joined(separator: "\n"))")
        }
        #expect(metrics.contains("flowchain_readings_ingested_total{source=\"mqtt\"} 4"))
        #expect(node.output.contains("was not ingested: too_large"), "refusals are logged")
        #expect(try await letters.wait(timeout: .seconds(100)) == 0, "\(letters.output)")
        let nodeID = try #require(try await Self.nodeKeyPrefix(port))
        #expect(Set(letters.output.split(separator: "\n").map(String.init)) == [
            "dl/\(nodeID)/bad_payload/sensors/attic/temperature", "dl/\(nodeID)/too_large/sensors/attic/temperature",
            "dl/\(nodeID)/bad_device/sensors/bad id!/temperature",
        ], "--mqtt-dead-letter, {node} filled in: \(letters.output)")
        #expect(try await node.stop() == 0, "\(node.output.suffix(2000))")
    }

    @Test func whatDevicesPublishWhileTheNodeIsDownIsIngestedWhenItReturns() async throws {
        let broker = try await MosquittoBroker()
        let dir = TemporaryDirectory("mqtt-away")
        var (node, port) = try await Self.startNode(dir, broker: broker)
        try await Self.publish(broker.port, "sensors/cellar/temperature", "10")
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await node.stop() == 0)
        for i in 1...20 { try await Self.publish(broker.port, "sensors/cellar/temperature", "\(10 + i)") }
        (node, port) = try await Self.startNode(dir, broker: broker, log: "node-again.log")
        var got: [JSONValue] = []
        for _ in 0..<1200 {
            got = try await Self.readings(port, "cellar")
            if got.count >= 21 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(got.compactMap { $0["payload"]?["value"]?.int64Value } == Array(10...30), "every QoS 1 message, in order: \(got.count)")
        #expect(node.output.contains("session resumed"), "the broker kept our persistent session")
        #expect(try await node.stop() == 0)
    }
}

extension MQTTBridgeEndToEndTests {
    static func subscribe(_ port: Int, _ args: [String], dir: TemporaryDirectory, name: String) throws -> ChildProcess {
        try ChildProcess(executable: "/usr/bin/mosquitto_sub", ["-h", "127.0.0.1", "-p", "\(port)", "-v"] + args, outputPath: dir.file(name))
    }

    static func submit(_ port: Int, _ device: String, _ values: ClosedRange<Int>) async throws {
        try await RPCConnection.with("ws://127.0.0.1:\(port)") { rpc in
            for v in values { _ = try await rpc.call("submit", ["device": .string(device), "payload": ["v": .int(v)]]) }
        }
    }

    @Test func readingsAndBlocksGoOutInOrderThroughBrokerOutagesAndTheStatusSaysWhenTheNodeIsGone() async throws {
        let broker = try await MosquittoBroker()
        let dir = TemporaryDirectory("mqtt-out")
        // A watcher with a persistent session of its own, registered before anything is published.
        let register = try Self.subscribe(broker.port, ["-c", "-i", "watcher", "-q", "1", "-t", "test/node/readings/#", "-W", "1"], dir: dir, name: "reg.txt")
        _ = try await register.wait(timeout: .seconds(30))
        let node = try FlowchainProcess(["node", "--data-dir", dir.file("data"), "--port", "0", "--block-interval", "100",
                                         "--mqtt", "mqtt://127.0.0.1:\(broker.port)", "--subscribe", "sensors/+/temperature",
                                         "--mqtt-publish", "--mqtt-prefix", "test/node"], outputPath: dir.file("node.log"))
        let port = try #require(try await node.waitForPort(), "\(node.output)")
        #expect(try await node.waitForOutput("publishing readings after position"), "\(node.output)")
        let status = try Self.subscribe(broker.port, ["-t", "test/node/status", "-C", "1", "-W", "60"], dir: dir, name: "status.txt")
        #expect(try await status.wait(timeout: .seconds(70)) == 0 && status.output.contains("test/node/status online"), "\(status.output)")

        try await Self.submit(port, "out-dev", 1...5)
        try await broker.stop()
        try await Self.submit(port, "out-dev", 6...10)        // while the broker is away
        try await Task.sleep(for: .seconds(2))
        try await broker.start()
        let watcher = try Self.subscribe(broker.port, ["-c", "-i", "watcher", "-q", "1", "-t", "test/node/readings/#", "-C", "10", "-W", "90"], dir: dir, name: "watch.txt")
        #expect(try await watcher.wait(timeout: .seconds(100)) == 0, "\(watcher.output)\n\(node.output.suffix(1500))")
        let values = watcher.output.split(separator: "\n").compactMap { line -> Int64? in
            guard line.hasPrefix("test/node/readings/out-dev ") else { return nil }
            return (try? JSONValue(parsing: Array(line.dropFirst("test/node/readings/out-dev ".count).utf8)))?["payload"]?["v"]?.int64Value
        }
        #expect(values == Array(1...10), "every reading once, in order, the outage only delayed them: \(values)")
        let blocks = try Self.subscribe(broker.port, ["-t", "test/node/blocks", "-C", "1", "-W", "30"], dir: dir, name: "blocks.txt")
        try await Self.submit(port, "out-dev", 11...11)
        #expect(try await blocks.wait(timeout: .seconds(40)) == 0 && blocks.output.contains("\"merkleRoot\""), "\(blocks.output)")

        // Killed without a word: the broker publishes the node's will.
        node.signal(SIGKILL)
        _ = try await node.wait()
        let gone = try Self.subscribe(broker.port, ["-t", "test/node/status", "-C", "1", "-W", "30"], dir: dir, name: "gone.txt")
        #expect(try await gone.wait(timeout: .seconds(40)) == 0 && gone.output.contains("test/node/status offline"), "\(gone.output)")
    }
}

import MQTTBridge
import Synchronization

extension MQTTBridgeEndToEndTests {
    /// The delivery window measured: numbered QoS 1 messages at a steady rate while the node is
    /// SIGKILLed 20 times and restarted. Whatever is lost must be recorded as a gap.
    @Test func killedTwentyTimesWhilePublishingEveryLossIsRecordedAsAGap() async throws {
        let broker = try await MosquittoBroker()
        let dir = TemporaryDirectory("mqtt-crash")
        let config = dir.file("node.yaml")
        try """
            blockInterval: 100
            mqtt:
              broker: mqtt://127.0.0.1:\(broker.port)
              clientId: crash-test-node
              rules:
                - topic: crash/+
                  seqField: n
            """.write(toFile: config, atomically: true, encoding: .utf8)
        func start(_ i: Int) async throws -> (ChildProcess, Int) {
            let node = try FlowchainProcess(["node", "--data-dir", dir.file("data"), "--port", "0", "--config", config], outputPath: dir.file("node-\(i).log"))
            let port = try #require(try await node.waitForPort(), "\(node.output)")
            #expect(try await node.waitForOutput("MQTT bridge: connected"), "\(node.output)")
            return (node, port)
        }
        var (node, port) = try await start(0)

        // An independent publisher: numbered messages, 200 a second, until told to stop (bounded).
        var pubConfig = MQTTConfiguration(host: "127.0.0.1", port: broker.port, clientID: "crash-publisher")
        pubConfig.cleanSession = true
        let publisher = try MQTTClient(pubConfig)
        let connected = Atomic<Bool>(false)
        let pubEvents = Task { for await e in publisher.events { if case .connected = e { connected.store(true, ordering: .relaxed) } } }
        publisher.start()
        let connecting = ContinuousClock.now
        while !connected.load(ordering: .relaxed), ContinuousClock.now - connecting < .seconds(60) { try await Task.sleep(for: .milliseconds(10)) }
        let stop = Atomic<Bool>(false)
        let published = Task {
            var n = 0
            let start = ContinuousClock.now
            while !stop.load(ordering: .relaxed), n < 40_000, ContinuousClock.now - start < .seconds(300) {
                n += 1
                try await publisher.publishAcknowledged(topic: "crash/meter", payload: Array("{\"n\":\(n)}".utf8), qos: 1)
                try await Task.sleep(for: .milliseconds(5))
            }
            return n
        }
        // A loss is recorded as a gap after a counter the bridge has seen: the kills start once the
        // device's first message is stored (a loss before it would have no counter to follow).
        let firstPort = port
        let firstStored = ContinuousClock.now
        while ContinuousClock.now - firstStored < .seconds(30) {
            if !(try await Self.readings(firstPort, "meter")).isEmpty { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        var rng = SystemRandomNumberGenerator()
        for cycle in 1...20 {
            try await Task.sleep(for: .milliseconds(Int.random(in: 150...700, using: &rng)))
            node.signal(SIGKILL)
            _ = try await node.wait()
            (node, port) = try await start(cycle)
        }
        try await Task.sleep(for: .milliseconds(500))
        stop.store(true, ordering: .relaxed)
        let last = try await published.value
        publisher.close()
        pubEvents.cancel()

        // Let the node take in what the broker still holds, then read everything back.
        let finalPort = port
        func stored() async throws -> [Int64] {
            try await RPCConnection.with("ws://127.0.0.1:\(finalPort)") { rpc in
                var out: [Int64] = []
                var cursor: String? = nil
                repeat {
                    var p: [String: JSONValue] = ["device": "meter", "limit": 1000]
                    if let c = cursor { p["cursor"] = .string(c) }
                    let page = try await rpc.call("readings", p)
                    out += (page["readings"]?.arrayValue ?? []).compactMap { $0["payload"]?["n"]?.int64Value }
                    cursor = page["nextCursor"]?.stringValue
                } while cursor != nil
                return out
            }
        }
        var seen: [Int64] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            seen = try await stored()
            if seen.last == Int64(last) { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let gaps = try await Self.readings(port, "mqtt-bridge").compactMap { g -> (Int64, Int64)? in
            guard let a = g["payload"]?["after"]?.int64Value, let b = g["payload"]?["next"]?.int64Value else { return nil }
            return (a, b)
        }
        #expect(seen == seen.sorted() && Set(seen).count == seen.count, "stored once each, in order")
        let recorded = Set(gaps.flatMap { ($0.0 + 1)..<$0.1 })
        let missing = Set(1...Int64(last)).subtracting(seen)
        #expect(missing == recorded, "every lost message is recorded as a gap: unrecorded \(missing.subtracting(recorded).sorted().prefix(10)), recorded but stored \(recorded.subtracting(missing).sorted().prefix(10))")
        let largest = gaps.map { $0.1 - $0.0 - 1 }.max() ?? 0
        print("MQTT crash test: \(last) messages published, 20 SIGKILLs, \(missing.count) lost (largest loss at one kill: \(largest)), \(gaps.count) gap(s) recorded")
        #expect(try await node.stop() == 0)
    }
}
