import FlowchainTesting
import Foundation
import MQTTBridge
import Testing

/// The libmosquitto client against a real mosquitto broker started for each test.
@Suite("MQTT client over libmosquitto, against a real broker", .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed (scripts/deps test installs it)"))
struct MQTTClientTests {
    static func config(_ broker: MosquittoBroker, _ id: String = "flowchain-test-\(UUID().uuidString.prefix(8))") -> MQTTConfiguration {
        var c = MQTTConfiguration(host: "127.0.0.1", port: broker.port, clientID: id)
        c.keepalive = 5
        c.reconnectDelay = (1, 2)
        return c
    }

    @Test func publishesAndReceivesAtEveryQoSAndWaitsForTheBrokersAcknowledgement() async throws {
        let broker = try await MosquittoBroker()
        let client = try MQTTClient(Self.config(broker))
        let log = EventLog(client)
        defer { client.close() }
        try client.subscribe("t/#", qos: 2)
        client.start()
        #expect(await log.waitConnected())
        #expect(await log.wait { $0.contains { if case .subscribed(_, [2]) = $0 { true } else { false } } }, "\(log.all)")
        for qos: Int32 in [0, 1, 2] {
            try await client.publishAcknowledged(topic: "t/q\(qos)", payload: Array("m\(qos)".utf8), qos: qos)
        }
        let got = await log.waitMessages(3)
        #expect(got.map(\.topic) == ["t/q0", "t/q1", "t/q2"] && got.map(\.qos) == [0, 1, 2], "\(got)")
        #expect(got.map { String(decoding: $0.payload, as: UTF8.self) } == ["m0", "m1", "m2"])
    }

    @Test func talksWithIndependentClients() async throws {
        let broker = try await MosquittoBroker()
        let client = try MQTTClient(Self.config(broker))
        let log = EventLog(client)
        defer { client.close() }
        try client.subscribe("in/#", qos: 1)
        client.start()
        #expect(await log.wait { $0.contains { if case .subscribed = $0 { true } else { false } } })
        let pub = try await run("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(broker.port)", "-q", "1", "-t", "in/kitchen", "-m", #"{"t":21.5}"#])
        #expect(pub.status == 0, "\(pub.output)")
        #expect(await log.waitMessages(1).first == MQTTMessage(topic: "in/kitchen", payload: Array(#"{"t":21.5}"#.utf8), qos: 1, retain: false))

        try await client.publishAcknowledged(topic: "out/status", payload: Array("online".utf8), qos: 1, retain: true)
        let sub = try await run("/usr/bin/mosquitto_sub", ["-h", "127.0.0.1", "-p", "\(broker.port)", "-t", "out/status", "-C", "1", "-v", "-W", "10"])
        #expect(sub.output.trimmingCharacters(in: .whitespacesAndNewlines) == "out/status online", "a retained message: \(sub.output)")
    }

    @Test func aListPublishedTogetherArrivesInTheOrderGiven() async throws {
        let broker = try await MosquittoBroker()
        let client = try MQTTClient(Self.config(broker))
        let log = EventLog(client)
        defer { client.close() }
        client.start()
        #expect(await log.waitConnected())
        let dir = TemporaryDirectory("mqtt-order")
        let sub = try ChildProcess(executable: "/usr/bin/mosquitto_sub",
                                   ["-h", "127.0.0.1", "-p", "\(broker.port)", "-q", "1", "-t", "order/#", "-C", "500", "-W", "60"],
                                   outputPath: dir.file("sub.txt"))
        try await Task.sleep(for: .milliseconds(500))
        let messages = (1...500).map { (topic: "order/\($0 % 7)", payload: Array("\($0)".utf8)) }
        #expect(await client.publishAcknowledged(messages) == 500)
        #expect(try await sub.wait(timeout: .seconds(70)) == 0, "\(sub.output)")
        #expect(sub.output.split(separator: "\n").compactMap { Int($0) } == Array(1...500))
    }

    @Test(arguments: [MQTTConfiguration.ProtocolVersion.v311, .v5])
    func aPersistentSessionKeepsWhatWasPublishedWhileAway(version: MQTTConfiguration.ProtocolVersion) async throws {
        let broker = try await MosquittoBroker()
        var config = Self.config(broker, "persistent-\(version.rawValue)")
        config.protocolVersion = version
        do {
            let first = try MQTTClient(config)
            let log = EventLog(first)
            try first.subscribe("away/#", qos: 1)
            first.start()
            #expect(await log.wait { $0.contains { if case .subscribed = $0 { true } else { false } } })
            first.close()
        }
        for i in 1...5 {
            let pub = try await run("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(broker.port)", "-q", "1", "-t", "away/n", "-m", "\(i)"])
            #expect(pub.status == 0)
        }
        let again = try MQTTClient(config)
        let log = EventLog(again)
        defer { again.close() }
        try again.subscribe("away/#", qos: 1)
        again.start()
        #expect(await log.wait { $0.contains(.connected(sessionPresent: true)) }, "\(log.all)")
        let got = await log.waitMessages(5)
        #expect(got.map { String(decoding: $0.payload, as: UTF8.self) } == ["1", "2", "3", "4", "5"], "\(got)")
    }

    @Test func reconnectsByItselfAfterTheBrokerRestartsAndResubscribes() async throws {
        let broker = try await MosquittoBroker()
        let client = try MQTTClient(Self.config(broker))
        let log = EventLog(client)
        defer { client.close() }
        try client.subscribe("r/#", qos: 1)
        client.start()
        #expect(await log.waitConnected())
        try await broker.stop()
        #expect(await log.wait { $0.contains { if case .disconnected(.some) = $0 { true } else { false } } }, "\(log.all)")
        try await broker.start()
        #expect(await log.waitConnected(count: 2, timeout: .seconds(60)), "\(log.all)")
        try await client.publishAcknowledged(topic: "r/after", payload: [1], qos: 1)
        #expect(await log.waitMessages(1).first?.topic == "r/after")
    }

    @Test func aBrokerThatIsDownAtStartIsRetriedAndCloseDoesNotHang() async throws {
        let broker = try await MosquittoBroker()
        try await broker.stop()
        let client = try MQTTClient(Self.config(broker))
        let log = EventLog(client)
        client.start()
        try await Task.sleep(for: .milliseconds(1500))
        #expect(!client.isConnected)
        try await broker.start()
        #expect(await log.waitConnected(timeout: .seconds(60)), "\(log.all)")
        try await broker.stop()
        let closing = ContinuousClock.now
        client.close()
        #expect(ContinuousClock.now - closing < .seconds(10), "close() returns while the broker is down")
    }

    @Test func wrongCredentialsAreRefusedWithTheBrokersReason() async throws {
        let dir = TemporaryDirectory("mqtt-passwd")
        let passwd = dir.file("passwd")
        let made = try await run("/usr/bin/mosquitto_passwd", ["-b", "-c", passwd, "meter", "s3cret"])
        #expect(made.status == 0, "\(made.output)")
        let broker = try await MosquittoBroker(listener: "allow_anonymous false\npassword_file \(passwd)")
        var bad = Self.config(broker)
        bad.username = "meter"
        bad.password = "wrong"
        let refused = try MQTTClient(bad)
        let refusedLog = EventLog(refused)
        refused.start()
        #expect(await refusedLog.wait { $0.contains { if case let .refused(e) = $0 { e.message.contains("not authorised") } else { false } } }, "\(refusedLog.all)")
        refused.close()
        var good = bad
        good.password = "s3cret"
        let accepted = try MQTTClient(good)
        let goodLog = EventLog(accepted)
        defer { accepted.close() }
        accepted.start()
        #expect(await goodLog.waitConnected())
    }

    @Test func tlsVerifiesTheBrokersCertificate() async throws {
        let dir = TemporaryDirectory("mqtt-tls")
        let openssl = "/usr/bin/openssl"
        for args in [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=flowchain test CA", "-keyout", dir.file("ca.key"), "-out", dir.file("ca.crt")],
            ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", dir.file("server.key"), "-out", dir.file("server.csr")],
        ] {
            let r = try await run(openssl, args)
            #expect(r.status == 0, "\(r.output)")
        }
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: dir.file("san.ext"), atomically: true, encoding: .utf8)
        let signed = try await run(openssl, ["x509", "-req", "-in", dir.file("server.csr"), "-CA", dir.file("ca.crt"), "-CAkey", dir.file("ca.key"),
                                             "-CAcreateserial", "-days", "2", "-extfile", dir.file("san.ext"), "-out", dir.file("server.crt")])
        #expect(signed.status == 0, "\(signed.output)")
        let broker = try await MosquittoBroker(listener: """
            allow_anonymous true
            cafile \(dir.file("ca.crt"))
            certfile \(dir.file("server.crt"))
            keyfile \(dir.file("server.key"))
            """)
        var config = Self.config(broker)
        config.tls = .init(caFile: dir.file("ca.crt"))
        let client = try MQTTClient(config)
        let log = EventLog(client)
        client.start()
        #expect(await log.waitConnected(), "\(log.all)\n\(broker.log)")
        client.close()

        // Another CA did not sign the broker's certificate: the handshake fails, so no connection
        // (the right CA above connects within milliseconds).
        let other = try await run(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=stranger",
                                            "-keyout", dir.file("other.key"), "-out", dir.file("other.crt")])
        #expect(other.status == 0)
        config.tls = .init(caFile: dir.file("other.crt"))
        let stranger = try MQTTClient(config)
        defer { stranger.close() }
        let strangerLog = EventLog(stranger)
        stranger.start()
        #expect(await strangerLog.wait { $0.contains {
            switch $0 {
            case let .disconnected(e?), let .failed(e): e.message.contains("TLS") || e.message.contains("certificate verify failed")
            default: false
            }
        } }, "the failed handshake is named: \(strangerLog.all)")
        #expect(!strangerLog.all.contains { if case .connected = $0 { true } else { false } })
        #expect(!stranger.isConnected)
    }

    @Test func badArgumentsAreRefusedWithLibmosquittosWords() async throws {
        let broker = try await MosquittoBroker()
        let client = try MQTTClient(Self.config(broker))
        defer { client.close() }
        #expect(throws: MQTTError.self) { try client.subscribe("a/#/b", qos: 1) }
        #expect(throws: MQTTError.self) { try client.subscribe("a", qos: 3) }
        do {
            try client.publish(topic: "a/+", payload: [1], qos: 1)
            Issue.record("a wildcard topic was accepted for publishing")
        } catch {
            #expect(error.operation == "publish to a/+" && !error.message.isEmpty, "\(error)")
        }
        var tls = Self.config(broker)
        tls.tls = .init(caFile: "/nonexistent/ca.crt")
        #expect(throws: MQTTError.self) { try MQTTClient(tls) }
    }
}
