import FlowchainNode
import FlowchainTesting
import Foundation
import MQTTBridge
import Sensors
import Testing

@Suite("The configuration file: YAML or JSON, checked with lines and keys")
struct ConfigFileTests {
    static let yaml = """
        # A node on a Raspberry Pi bridging the local broker.
        port: 8000
        blockInterval: 500
        mqtt:
          broker: mqtt://meter:s3cret@127.0.0.1:1883
          protocolVersion: "5"
          rules:
            - topic: sensors/+/temperature        # device: the + level
            - topic: meters/#
              device: main-meter
              format: key-value
              timeField: ts
              qos: 2
        """

    @Test func yamlWithAnMQTTSectionBecomesABridge() throws {
        let file = try ConfigFile.parse(Self.yaml)
        #expect(file.port == 8000 && file.blockInterval == 500)
        let bridges = try #require(try file.mqtt?.bridgeConfigurations())
        #expect(bridges.count == 1)
        let bridge = try #require(bridges.first)
        #expect(bridge.broker.host == "127.0.0.1" && bridge.broker.username == "meter" && bridge.broker.password == "s3cret")
        #expect(bridge.broker.protocolVersion == .v5)
        #expect(bridge.rules.map(\.filter.text) == ["sensors/+/temperature", "meters/#"])
        #expect(bridge.rules[0].device == .topicLevel(1) && bridge.rules[1].device == .fixed("main-meter"))
        #expect(bridge.rules[1].format == .keyValue && bridge.rules[1].timeField == "ts" && bridge.rules[1].qos == 2)
    }

    @Test func todaysJSONFilesStillRead() throws {
        let json = #"{"port": 8000, "blockInterval": 500, "mqtt": {"broker": "mqtt://127.0.0.1", "rules": [{"topic": "a/+"}]}}"#
        let file = try ConfigFile.parse(json)
        #expect(file.port == 8000 && file.mqtt?.items.first?.rules.first?.topic == "a/+")
    }

    @Test(arguments: [
        ("port: 8000\nprot: 1\n", "line 2: unknown key 'prot'"),
        ("mqtt:\n  broker: mqtt://h\n  rules:\n    - topic: a\n      devise: x\n", "line 5: unknown key 'mqtt.rules[0].devise'"),
        ("port: eighty\n", "line 1: 'port' must be a whole number"),
        ("mqtt:\n  rules: []\n", "'mqtt.broker' is required"),
        ("port: [1\n", "not valid YAML or JSON"),
        ("mqtt:\n  - broker: mqtt://a\n    rules: [{topic: x}]\n  - broker: mqtt://b\n    rulez: []\n", "line 5: unknown key 'mqtt[1].rulez'"),
        ("- 1\n- 2\n", "must hold a mapping"),
        ("peers:\n  join: [a:1]\n  advertize: b:2\n", "line 3: unknown key 'peers.advertize'"),
    ])
    func mistakesAreNamedWithTheirLineAndKey(text: String, expected: String) {
        do {
            _ = try ConfigFile.parse(text, name: "node.yaml")
            Issue.record("\(text) was accepted")
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
        }
    }

    @Test func thePeersSectionReads() throws {
        let file = try ConfigFile.parse("peers:\n  join: [\"10.0.0.1:8000\", \"10.0.0.2:8000\"]\n  advertise: 10.0.0.3:8000\n  replicas: 2\n  ack: replica\n")
        #expect(file.peers?.join == ["10.0.0.1:8000", "10.0.0.2:8000"])
        #expect(file.peers?.advertise == "10.0.0.3:8000" && file.peers?.replicas == 2 && file.peers?.ack == "replica")
    }

    @Test(arguments: [
        (["--join", "nohost"], "--join 'nohost' is not host:port"),
        (["--join", "a:99999"], "is not host:port"),
        (["--ack", "sometimes"], "--ack must be 'owner' or 'replica'"),
        (["--replicas", "0"], "--replicas must be 1…8"),
        (["--no-peers", "--join", "a:1"], "contradict"),
    ])
    func badPeerFlagsAreNamed(args: [String], expected: String) async throws {
        let dir = TemporaryDirectory("peer-flags")
        let run = try await runFlowchain(["node", "--data-dir", dir.file("d"), "--port", "0"] + args, timeout: .seconds(30))
        #expect(run.status != 0, "\(args) was accepted")
        #expect(run.output.contains(expected), "\(run.output)")
    }

    /// A value out of range in the file is named by the file, its line and its key; the same
    /// value given as a flag is named by the flag.
    @Test(arguments: [
        ("blockInterval: 5\n", [String](), "node.yaml, line 1: 'blockInterval' must be at least 10 ms"),
        ("blockInterval: 5\n", ["--block-interval", "3"], "--block-interval must be at least 10 ms"),
        ("port: 0\nretention:\n  maxAge: 30d\n  maxSize: 500KB\n", [], "node.yaml, line 4: 'retention.maxSize' '500KB' is under 1 MB"),
        ("retention:\n  maxAge: soon\n", [], "node.yaml, line 2: 'retention.maxAge' 'soon' is not an age"),
        ("port: 0\npeers:\n  join: [\"a:1\"]\n  ack: sometimes\n", [], "node.yaml, line 4: 'peers.ack' must be 'owner' or 'replica'"),
        ("port: 0\npeers:\n  join: [nohost]\n", [], "node.yaml, line 3: 'peers.join' 'nohost' is not host:port"),
        ("port: 0\nlogLevel: loud\n", [], "node.yaml, line 2: 'logLevel' 'loud' is not one of"),
        ("port: 0\nclockSync: sometimes\n", [], "node.yaml, line 2: 'clockSync' must be kernel, trusted, untrusted"),
        ("port: 70000\n", [], "node.yaml, line 1: 'port' 70000 is outside 0…65535"),
        ("port: 0\nsensors:\n  - name: t1\n    type: thermometer\n", [], "node.yaml, line 4: sensors[0].type: 'thermometer' is not one of"),
        ("port: 0\nmqtt:\n  broker: http://x\n  rules: [{topic: a}]\n", [], "node.yaml, line 3: mqtt.broker: 'http://x' is not a broker URL"),
    ])
    func badValuesInTheFileAreNamedWithTheirLineAndKey(text: String, args: [String], expected: String) async throws {
        let dir = TemporaryDirectory("config-values")
        let path = dir.file("node.yaml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try await runFlowchain(["node", "--data-dir", dir.file("d"), "--config", path] + args, timeout: .seconds(30))
        #expect(run.status != 0, "\(text) was accepted")
        #expect(run.stderr.contains(expected), "\(run.output)")
    }

    @Test func badMQTTSettingsNameTheirKey() throws {
        let bad = try ConfigFile.parse("mqtt:\n  broker: mqtt://h\n  rules:\n    - topic: a/#/b\n")
        #expect(throws: (any Error).self) { try bad.mqtt?.bridgeConfigurations() }
        do { _ = try bad.mqtt?.bridgeConfigurations() } catch { #expect("\(error)".contains("mqtt.rules[0].topic")) }
        let qos = try ConfigFile.parse("mqtt:\n  broker: mqtt://h\n  rules:\n    - topic: a\n      qos: 3\n")
        do { _ = try qos.mqtt?.bridgeConfigurations(); Issue.record("qos 3 accepted") } catch { #expect("\(error)".contains("mqtt.rules[0].qos")) }
    }
}

extension ConfigFileTests {
    @Test func severalBrokersAreAListEachWithItsOwnRulesOutboxAndDeadLetters() throws {
        let file = try ConfigFile.parse("""
            mqtt:
              - broker: mqtt://127.0.0.1:1883
                rules: [{topic: "sensors/+/temperature"}]
                deadLetter: flowchain/{node}/rejected
              - broker: mqtts://hub.example.net
                name: hub
                publish: true
                rules:
                  - topic: "site/+/power"
            """)
        let bridges = try #require(try file.mqtt?.bridgeConfigurations())
        #expect(bridges.map(\.name) == ["127.0.0.1:1883", "hub"])
        #expect(bridges[0].deadLetter == "flowchain/{node}/rejected" && bridges[0].outbound == nil)
        #expect(bridges[1].outbound?.prefix == "flowchain/{node}" && bridges[1].broker.tls != nil)
        #expect(bridges[0].ownPrefixes == ["flowchain/{node}/rejected"])

        let bad = try ConfigFile.parse("mqtt:\n  - broker: mqtt://a\n    rules: [{topic: x}]\n  - broker: mqtt://b\n    rules: [{topic: 'a/#/b'}]\n")
        do { _ = try bad.mqtt?.bridgeConfigurations(); Issue.record("accepted") } catch { #expect("\(error)".contains("mqtt[1].rules[0].topic"), "\(error)") }
        let twice = try ConfigFile.parse("mqtt:\n  - broker: mqtt://a\n    rules: [{topic: x}]\n  - broker: mqtt://a\n    rules: [{topic: y}]\n")
        do { _ = try twice.mqtt?.bridgeConfigurations(); Issue.record("accepted") } catch { #expect("\(error)".contains("names two brokers"), "\(error)") }
        let wild = try ConfigFile.parse("mqtt:\n  broker: mqtt://a\n  deadLetter: dead/#\n  rules: [{topic: x}]\n")
        do { _ = try wild.mqtt?.bridgeConfigurations(); Issue.record("accepted") } catch { #expect("\(error)".contains("mqtt.deadLetter"), "\(error)") }
    }

    /// The examples in docs/configuration.md are read by the node as they are written.
    @Test func theDocumentedExamplesParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var blocks: [(String, String)] = []
        for doc in ["docs/configuration.md", "docs/sensors.md"] {
            let page = try String(contentsOf: root.appendingPathComponent(doc), encoding: .utf8)
            blocks += page.components(separatedBy: "```yaml\n").dropFirst().compactMap { $0.components(separatedBy: "```").first }.map { (doc, $0) }
        }
        #expect(blocks.count >= 5)
        for (doc, block) in blocks {
            let file = try ConfigFile.parse(block, name: doc)
            if let mqtt = file.mqtt { _ = try mqtt.bridgeConfigurations() }
            let board = try file.board.map { id throws(BoardError) in try Board.named(id) }
            if let sensors = file.sensors { _ = try sensors.sensorConfigurations(board: board) }
        }
    }

    /// Each Raspberry Pi's example config names pins and GPIOs that resolve through its board.
    @Test func theBoardExamplesResolveThroughTheirBoards() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for id in ["raspberry-pi-3", "raspberry-pi-4", "raspberry-pi-5", "raspberry-pi-zero-2-w"] {
            let file = try ConfigFile.load(root.appendingPathComponent("boards/\(id)/sensors.yaml").path)
            #expect(file.board == id)
            let board = try Board.named(id)
            let sensors = try file.sensors?.sensorConfigurations(board: board) ?? []
            let door = try #require(sensors.first { $0.name == "door" })
            guard case let .gpioInput(chip, line, _, activeLow, _) = door.kind else { Issue.record("door is \(door.kind)"); continue }
            #expect(chip == board.chips[0] && line == "17" && activeLow, "pin 11 is GPIO17 on \(id)")
            guard case let .pulseCounter(chip2, line2, _, _, _, _) = try #require(sensors.first { $0.name == "rain-gauge" }).kind else { continue }
            #expect(chip2 == board.chips[0] && line2 == "27")
        }
        // A pin without a board, a pin and a line together, a power pin: refused, naming the entry.
        let noBoard = try ConfigFile.parse("sensors:\n  - {name: a, type: gpio-input, pin: 11}\n")
        do { _ = try noBoard.sensors?.sensorConfigurations(); Issue.record("accepted") } catch { #expect("\(error)".contains("sensors[0].pin needs 'board:'"), "\(error)") }
        let pi = try Board.named("raspberry-pi-4")
        let both = try ConfigFile.parse("sensors:\n  - {name: a, type: gpio-input, pin: 11, line: GPIO17}\n")
        do { _ = try both.sensors?.sensorConfigurations(board: pi); Issue.record("accepted") } catch { #expect("\(error)".contains("give 'pin' or 'line', not both"), "\(error)") }
        let ground = try ConfigFile.parse("sensors:\n  - {name: a, type: pulse-counter, pin: 6}\n")
        do { _ = try ground.sensors?.sensorConfigurations(board: pi); Issue.record("accepted") } catch { #expect("\(error)".contains("sensors[0]: pin 6 of Raspberry Pi 4 Model B is GND"), "\(error)") }
    }
}
