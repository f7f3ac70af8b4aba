import FlowchainClient
import FlowchainTesting
import Foundation
import Ledger
import ProcessSupport
import Testing

/// The C sensor agent (boards/sensor-agent) publishing to a real mosquitto on loopback, and a real
/// `flowchain node` bridging the agent's topics with the rule boards/sensor-agent/README.md gives.
@Suite("C sensor agent → MQTT → node", .serialized)
struct SensorAgentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Builds the agent with its Makefile into .build/sensor-agent (once per run).
    static func agentBinary() async throws -> String {
        let out = root.appendingPathComponent(".build/sensor-agent").path
        let dir = TemporaryDirectory("agent-make")
        let make = try ChildProcess(executable: "/usr/bin/make", ["-s", "-C", root.appendingPathComponent("boards/sensor-agent").path, "OUT=\(out)"],
                                    outputPath: dir.file("make.log"))
        let status = try await make.wait(timeout: .seconds(300))
        guard status == 0 else { throw RingError("building the sensor agent failed:\n\(make.output)") }
        return out + "/flowchain-agent"
    }

    @Test func readingsTakenWhileTheBrokerIsAwayArriveInOrderAndARestartNeverRepeatsASeq() async throws {
        let agent = try await Self.agentBinary()
        let sys = SysfsFixture()
        try sys.w1("28-000005e2fdc3", SysfsFixture.goodW1)
        try sys.iio("iio:device0", name: "dht11", ["in_temp_input": "19250", "in_humidityrelative_input": "61000"])
        let broker = try await MosquittoBroker()
        let dir = TemporaryDirectory("sensor-agent")
        try """
            mqtt:
              broker: mqtt://127.0.0.1:\(broker.port)
              clientId: agent-bridge
              rules:
                - topic: flowchain/agent/+/+
                  deviceLevel: -1
                  timeField: time
                  seqField: seq
            """.write(toFile: dir.file("node.yaml"), atomically: true, encoding: .utf8)
        let node = try FlowchainProcess(["node", "--data-dir", dir.file("data"), "--port", "0", "--config", dir.file("node.yaml"), "--no-peers"],
                                        outputPath: dir.file("node.log"))
        let port = try #require(try await node.waitForPort(), "\(node.output)")
        #expect(try await node.waitForOutput("MQTT bridge: connected"), "\(node.output)")
        defer { node.signal(SIGTERM) }
        let url = "ws://127.0.0.1:\(port)"

        // The broker goes away (its persistence keeps the node's session), then the agent starts.
        try await broker.stop()
        try """
            broker mqtt://127.0.0.1:\(broker.port)
            client-id greenhouse-agent
            buffer 1000
            state \(dir.file("agent.state"))
            sysfs \(sys.root)
            w1 outdoor 28-000005e2fdc3 0.2
            iio climate dht11 0.5
            """.write(toFile: dir.file("agent.conf"), atomically: true, encoding: .utf8)
        var process = try ChildProcess(executable: agent, [dir.file("agent.conf")], outputPath: dir.file("agent-1.log"))
        defer { process.signal(SIGTERM) }
        try await Task.sleep(for: .seconds(2))
        #expect(process.isRunning, "the agent keeps running without a broker: \(process.output)")
        try await broker.start()
        let reconnected = try await process.waitForOutput("connected to 127.0.0.1:\(broker.port)")
        #expect(reconnected, "\(process.output)")

        func readings(_ device: String) async throws -> [JSONValue] {
            let page = try await RPCConnection.with(url) { try await $0.call("readings", ["device": .string(device), "limit": 1000]) }
            return page["readings"]?.arrayValue ?? []
        }
        func seqs(_ device: String) async throws -> [Int64] { try await readings(device).compactMap { $0["payload"]?["seq"]?.int64Value } }
        let deadline = ContinuousClock.now + .seconds(30)
        while try await seqs("outdoor").count < 12, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(300)) }
        let first = try await seqs("outdoor")
        #expect(first.count >= 12 && first == Array(1...Int64(first.count)), "every reading, buffered ones first, in order: \(first)")
        let sample = try await readings("outdoor").first
        #expect(sample?["payload"]?["temperature"] == .number("23.125"), "\(String(describing: sample))")
        #expect(try await readings("climate").first?["payload"]?["temp"] == .number("19.25"))

        // Restarted, the agent continues after the seqs it reserved: never a repeat.
        _ = try await process.stop(timeout: .seconds(10))
        let before = try await seqs("outdoor").max() ?? 0
        process = try ChildProcess(executable: agent, [dir.file("agent.conf")], outputPath: dir.file("agent-2.log"))
        let later = ContinuousClock.now + .seconds(30)
        while try await (seqs("outdoor").max() ?? 0) <= before + 3, ContinuousClock.now < later { try await Task.sleep(for: .milliseconds(300)) }
        let all = try await seqs("outdoor")
        #expect(Set(all).count == all.count && all == all.sorted(), "no seq twice, in order: \(all)")
        #expect((all.max() ?? 0) > before + 3, "new readings after the restart")
        let metrics = try await offPool { try LoopbackHTTP.get(port: port, path: "/metrics").text }
        #expect(!metrics.contains(#"kind="mqtt_duplicate""#), "nothing the bridge took for a repeat")
        _ = try await process.stop(timeout: .seconds(10))
        #expect(process.output.contains("stopped"), "\(process.output)")
    }

    @Test func aBadConfigIsRefusedNamingTheLine() async throws {
        let agent = try await Self.agentBinary()
        let dir = TemporaryDirectory("agent-bad")
        try "broker mqtt://127.0.0.1:1\nw1 outdoor\n".write(toFile: dir.file("bad.conf"), atomically: true, encoding: .utf8)
        let p = try ChildProcess(executable: agent, [dir.file("bad.conf")], outputPath: dir.file("out.log"))
        #expect(try await p.wait(timeout: .seconds(10)) == 2)
        #expect(p.output.contains("bad.conf: line 2: too few fields for 'w1'"), "\(p.output)")
    }

    /// The LinkIt's example config is one the agent takes (`--check` reads it and exits).
    @Test func theLinkItExampleIsAValidAgentConfig() async throws {
        let agent = try await Self.agentBinary()
        let dir = TemporaryDirectory("agent-check")
        let example = Self.root.appendingPathComponent("boards/linkit-smart-7688/agent.conf").path
        let p = try ChildProcess(executable: agent, ["--check", example], outputPath: dir.file("out.log"))
        #expect(try await p.wait(timeout: .seconds(10)) == 0, "\(p.output)")
        #expect(p.output.contains("valid: broker 192.168.1.10:1883, prefix flowchain/agent/linkit, 3 sensor(s): door rain-gauge outdoor"), "\(p.output)")
        try "broker mqtt://x\n\nw1 outdoor\n".write(toFile: dir.file("bad.conf"), atomically: true, encoding: .utf8)
        let bad = try ChildProcess(executable: agent, ["--check", dir.file("bad.conf")], outputPath: dir.file("bad.log"))
        #expect(try await bad.wait(timeout: .seconds(10)) == 2)
        #expect(bad.output.contains("line 3: too few fields"), "a blank line counts: \(bad.output)")
    }
}
