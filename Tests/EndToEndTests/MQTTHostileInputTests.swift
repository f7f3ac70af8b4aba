import FlowchainClient
import FlowchainTesting
import Foundation
import Ledger
import Testing

/// One node bridging two real brokers through a YAML config; hostile payloads published by
/// mosquitto_pub, dead letters read by mosquitto_sub.
@Suite("MQTT bridge: hostile payloads and several brokers", .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
struct MQTTHostileInputTests {
    static func publishFile(_ port: Int, _ topic: String, _ bytes: [UInt8], dir: TemporaryDirectory) async throws {
        let file = dir.file("payload-\(UUID().uuidString.prefix(8))")
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let p = try ChildProcess(executable: "/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-t", topic, "-f", file],
                                 outputPath: dir.file("pub-\(UUID().uuidString.prefix(8))"))
        #expect(try await p.wait(timeout: .seconds(60)) == 0, "\(p.output)")
    }

    @Test func hostilePayloadsAreCountedAndDeadLetteredUnchangedAndNothingStopsEitherBridge() async throws {
        let home = try await MosquittoBroker(), site = try await MosquittoBroker()
        let dir = TemporaryDirectory("mqtt-hostile")
        let config = dir.file("node.yaml")
        try """
            blockInterval: 100
            mqtt:
              - broker: mqtt://127.0.0.1:\(home.port)
                name: home
                deadLetter: dead
                rules:
                  - topic: sensors/+/temperature
              - broker: mqtt://127.0.0.1:\(site.port)
                name: site
                rules:
                  - topic: site/+/power
                    format: json
                    timeField: ts
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let node = try FlowchainProcess(["node", "--data-dir", dir.file("data"), "--port", "0", "--config", config], outputPath: dir.file("node.log"))
        let port = try #require(try await node.waitForPort(), "\(node.output)")
        #expect(try await node.waitForOutput("MQTT bridge: connected to 127.0.0.1:\(home.port)"), "\(node.output)")
        #expect(try await node.waitForOutput("MQTT bridge: connected to 127.0.0.1:\(site.port)"), "\(node.output)")

        // An independent subscriber to the dead letters: topic and payload length of each.
        let dead = try ChildProcess(executable: "/usr/bin/mosquitto_sub",
                                    ["-h", "127.0.0.1", "-p", "\(home.port)", "-q", "1", "-t", "dead/#", "-F", "%t %l", "-C", "5", "-W", "120"],
                                    outputPath: dir.file("dead.txt"))
        try await Task.sleep(for: .milliseconds(500))

        let tenMB = [UInt8](repeating: UInt8(ascii: "7"), count: 10 * 1024 * 1024)
        let nested = Array((String(repeating: "{\"a\":", count: 2000) + "1" + String(repeating: "}", count: 2000)).utf8)
        try await Self.publishFile(home.port, "sensors/cellar/temperature", [0xff, 0xfe, 0x41, 0xc3, 0x28], dir: dir)   // not UTF-8
        try await Self.publishFile(home.port, "sensors/cellar/temperature", [0x00, 0x01, 0x02, 0x7b, 0x00, 0x7d], dir: dir) // binary
        try await Self.publishFile(home.port, "sensors/cellar/temperature", tenMB, dir: dir)                          // 10 MB
        try await Self.publishFile(home.port, "sensors/cellar/temperature", nested, dir: dir)                         // 2,000 levels deep
        try await Self.publishFile(home.port, "sensors/no such device!/temperature", Array("1".utf8), dir: dir)       // not a device id
        // Wrong types on the other broker: a time that is text, and an array where an object belongs.
        try await Self.publishFile(site.port, "site/pump/power", Array(#"{"ts":"yesterday","w":5}"#.utf8), dir: dir)
        try await Self.publishFile(site.port, "site/pump/power", Array(#"[1,2,3]"#.utf8), dir: dir)
        // And good ones after all that, on both.
        try await Self.publishFile(home.port, "sensors/cellar/temperature", Array("12.5".utf8), dir: dir)
        try await Self.publishFile(site.port, "site/pump/power", Array(#"{"ts":1767225600000,"w":740}"#.utf8), dir: dir)

        #expect(try await dead.wait(timeout: .seconds(130)) == 0, "\(dead.output)\n\(node.output.suffix(2000))")
        let letters = Set(dead.output.split(separator: "\n").map(String.init))
        #expect(letters == [
            "dead/not_utf8/sensors/cellar/temperature 5",
            "dead/bad_payload/sensors/cellar/temperature 6",
            "dead/too_large/sensors/cellar/temperature \(tenMB.count)",
            "dead/bad_payload/sensors/cellar/temperature \(nested.count)",
            "dead/bad_device/sensors/no such device!/temperature 1",
        ], "each refused message, unchanged, under its reason: \(dead.output)")

        var cellar: [JSONValue] = [], pump: [JSONValue] = []
        for _ in 0..<1200 {
            cellar = try await MQTTBridgeEndToEndTests.readings(port, "cellar")
            pump = try await MQTTBridgeEndToEndTests.readings(port, "pump")
            if !cellar.isEmpty && !pump.isEmpty { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(cellar.map { $0["payload"]?["value"] } == [.number("12.5")], "\(cellar)")
        #expect(pump.map { $0["time"]?.int64Value } == [1767225600000], "the time from the payload's ts: \(pump)")

        let metrics = try LoopbackHTTP.get(port: port, path: "/metrics").text
        let expected = ["mqtt_not_utf8": 1, "mqtt_bad_payload": 3, "mqtt_too_large": 1, "mqtt_bad_device": 1, "mqtt_bad_time": 1]
        for (kind, n) in expected {
            #expect(metrics.contains("kind=\"\(kind)\"} \(n)"), "\(kind): \(n)\n\(metrics.split(separator: "\n").filter { $0.contains("errors") }.joined(separator: "\n"))")
        }
        #expect(metrics.contains("flowchain_readings_ingested_total{source=\"mqtt\"} 2"))
        #expect(node.output.contains("republished to dead/too_large/sensors/cellar/temperature"), "the log says where it went")
        #expect(try await node.stop() == 0, "\(node.output.suffix(2000))")
    }
}

extension MQTTHostileInputTests {
    /// A broker that wants a client certificate: the node presents the one its config names; the
    /// same node without it is refused and says why, and keeps running.
    @Test func aBrokerThatRequiresAClientCertificateGetsTheOneTheConfigNames() async throws {
        let pki = try await TestCertificates()
        let broker = try await MosquittoBroker(listener: pki.brokerListener(requireClientCertificate: true))
        let dir = TemporaryDirectory("mqtt-mtls")
        func node(_ name: String, withCertificate: Bool) throws -> ChildProcess {
            let config = dir.file("\(name).yaml")
            try """
                mqtt:
                  broker: mqtts://127.0.0.1:\(broker.port)
                  clientId: \(name)
                  ca: \(pki.ca)
                \(withCertificate ? "  certificate: \(pki.clientCertificate)\n  key: \(pki.clientKey)" : "")
                  rules:
                    - topic: tls/+
                """.write(toFile: config, atomically: true, encoding: .utf8)
            return try FlowchainProcess(["node", "--data-dir", dir.file(name), "--port", "0", "--config", config], outputPath: dir.file("\(name).log"))
        }
        let good = try node("with-cert", withCertificate: true)
        let port = try #require(try await good.waitForPort(), "\(good.output)")
        #expect(try await good.waitForOutput("MQTT bridge: connected"), "\(good.output)\n\(broker.log)")
        // An independent client with the same CA and a client certificate publishes over TLS.
        let pub = try ChildProcess(executable: "/usr/bin/mosquitto_pub",
                                   ["-h", "127.0.0.1", "-p", "\(broker.port)", "--cafile", pki.ca, "--cert", pki.clientCertificate, "--key", pki.clientKey,
                                    "-q", "1", "-t", "tls/vault", "-m", "7.5"], outputPath: dir.file("pub.log"))
        #expect(try await pub.wait(timeout: .seconds(60)) == 0, "\(pub.output)")
        var got: [JSONValue] = []
        for _ in 0..<600 {
            got = try await MQTTBridgeEndToEndTests.readings(port, "vault")
            if !got.isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(got.first?["payload"]?["value"] == .number("7.5"), "\(got)")

        let refused = try node("without-cert", withCertificate: false)
        let refusedPort = try #require(try await refused.waitForPort(), "\(refused.output)")
        // Said by OpenSSL's alert when it reaches the node, else by the bridge's hint.
        let complained = try await refused.waitForOutput("certificate required", timeout: .seconds(60))
            || refused.output.contains("if the broker requires one, configure certificate and key")
        try await Task.sleep(for: .seconds(2))
        #expect(complained && !refused.output.contains("MQTT bridge: connected"), "\(refused.output)")
        #expect(try LoopbackHTTP.get(port: refusedPort, path: "/health").status == 200, "the node runs on without the broker")
        #expect(try await refused.stop() == 0)
        #expect(try await good.stop() == 0)
    }
}
