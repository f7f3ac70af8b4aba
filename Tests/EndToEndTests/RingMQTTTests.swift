import FlowchainClient
import FlowchainTesting
import Foundation
import Ledger
import MQTTBridge
import Synchronization
import Testing

@Suite("Ring: one node's MQTT bridge feeding devices other nodes own", .serialized)
struct RingMQTTTests {
    /// A device's own message counter (`seqField`) is checked against its newest reading wherever
    /// the ring stores it: after the bridging node restarts, a repeated message is not stored twice
    /// at the device's owner.
    @Test func aRepeatedCounterIsRecognisedWhereverTheDeviceIsStored() async throws {
        let broker = try await MosquittoBroker()
        let owner = try await RunningNode(label: "ring-mqtt-owner")
        let dir = TemporaryDirectory("ring-mqtt-bridge")
        let config = dir.file("node.yaml")
        try """
            blockInterval: 200
            mqtt:
              broker: mqtt://127.0.0.1:\(broker.port)
              clientId: ring-mqtt-bridge
              rules:
                - topic: meters/+
                  seqField: n
            """.write(toFile: config, atomically: true, encoding: .utf8)
        func startBridge(_ i: Int) async throws -> RunningNode {
            let process = try FlowchainProcess(["node", "--data-dir", dir.file("data"), "--port", "0", "--config", config,
                                                "--join", "127.0.0.1:\(owner.port)"], outputPath: dir.file("node-\(i).log"))
            guard let port = try await process.waitForPort() else { throw RingError("the bridging node did not start: \(process.output)") }
            #expect(try await process.waitForOutput("MQTT bridge: connected"), "\(process.output)")
            return RunningNode(adopting: process, port: port, dir: dir)
        }
        var bridge = try await startBridge(0)
        let ring = try await TestRing(adopting: [owner, bridge])
        defer { Task { await ring.stopAll() } }
        try await ring.converge()
        let device = try #require((0..<100_000).lazy.map { "m\($0)" }.first { ring.owner(of: $0) == 0 })

        var settings = MQTTConfiguration(host: "127.0.0.1", port: broker.port, clientID: "ring-mqtt-publisher")
        settings.cleanSession = true
        let publisher = try MQTTClient(settings)
        let connected = Atomic<Bool>(false)
        let events = Task { for await e in publisher.events { if case .connected = e { connected.store(true, ordering: .relaxed) } } }
        defer { events.cancel(); publisher.close() }
        publisher.start()
        let connecting = ContinuousClock.now
        while !connected.load(ordering: .relaxed), ContinuousClock.now - connecting < .seconds(30) { try await Task.sleep(for: .milliseconds(20)) }

        func counters() async throws -> [Int64] {
            let page = try await TestRing.call(owner.url, "readings", ["device": .string(device)])
            return page["readings"]?.arrayValue?.compactMap { $0["payload"]?["n"]?.int64Value } ?? []
        }
        func waitFor(_ want: [Int64]) async throws {
            let deadline = ContinuousClock.now + .seconds(30)
            while try await counters() != want, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
        }
        for n in 1...2 { try await publisher.publishAcknowledged(topic: "meters/\(device)", payload: Array(#"{"n":\#(n)}"#.utf8), qos: 1) }
        try await waitFor([1, 2])
        #expect(try await counters() == [1, 2], "stored at the device's owner, not at the bridging node")

        // The bridging node restarts (its memory of counters is gone); the device repeats n = 2.
        _ = try await bridge.stop()
        bridge = try await startBridge(1)
        ring.nodes[1] = bridge
        try await ring.converge()
        for n in [2, 3] { try await publisher.publishAcknowledged(topic: "meters/\(device)", payload: Array(#"{"n":\#(n)}"#.utf8), qos: 1) }
        try await waitFor([1, 2, 3])
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await counters() == [1, 2, 3], "the repeated n = 2 was recognised at the bridging node and not stored again")
        let port = bridge.port
        let metrics = try await offPool { try LoopbackHTTP.get(port: port, path: "/metrics").text }
        #expect(metrics.contains(#"flowchain_errors_total{kind="mqtt_duplicate"} 1"#), "\(metrics.split(separator: "\n").filter { $0.contains("mqtt") })")
        await ring.stopAll()
    }
}
