import FlowchainClient
import FlowchainNode
import FlowchainTesting
import Foundation
import Ledger
import Testing

/// A node process reading sensors from a sysfs-shaped tree ($FLOWCHAIN_SYSFS), and the
/// `flowchain sensors` commands a user runs.
@Suite("Sensors in a real node process, and flowchain sensors")
struct SensorsEndToEndTests {
    static func config(_ dir: TemporaryDirectory) throws -> String {
        let path = dir.file("node.yaml")
        try """
            blockInterval: 100
            sensors:
              - name: tank                  # a DS18B20 on the 1-Wire bus
                type: w1
                id: 28-000005e2fdc3
                interval: 0.2
              - name: greenhouse            # a DHT22 through the kernel's dht11 driver
                type: iio
                device: dht11
                interval: 0.2
              - name: door                  # a reed switch on a chip this machine does not have
                type: gpio-input
                chip: pinctrl-bcm2711
                line: GPIO17
                bias: pull-up
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theNodeRecordsItsSensorsAndAMissingChipIsReportedCountedAndHarmless() async throws {
        let sys = SysfsFixture()
        try sys.w1("28-000005e2fdc3", SysfsFixture.goodW1)
        try sys.iio("iio:device0", name: "dht11", ["in_temp_input": "19250", "in_humidityrelative_input": "61000"])
        let dir = TemporaryDirectory("sensors-node")
        let node = try FlowchainProcess(["node", "--data-dir", dir.file("data"), "--port", "0", "--config", try Self.config(dir)],
                                        outputPath: dir.file("node.log"), environment: ["FLOWCHAIN_SYSFS": sys.root])
        let port = try #require(try await node.waitForPort(), "\(node.output)")
        var tank: [JSONValue] = [], greenhouse: [JSONValue] = []
        for _ in 0..<600 {
            tank = try await MQTTBridgeEndToEndTests.readings(port, "tank")
            greenhouse = try await MQTTBridgeEndToEndTests.readings(port, "greenhouse")
            if tank.count >= 2 && greenhouse.count >= 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(tank.first?["source"] == "w1" && tank.first?["payload"]?["temperature"] == .number("23.125"), "\(tank.prefix(1))")
        #expect(greenhouse.first?["source"] == "iio" && greenhouse.first?["payload"]?["temp"] == .number("19.25")
                && greenhouse.first?["payload"]?["units"]?["humidityrelative"] == "%", "\(greenhouse.prefix(1))")
        #expect(node.output.contains("sensor door (gpio-input): GPIO chip pinctrl-bcm2711 not found"), "\(node.output.suffix(1500))")
        let metrics = try LoopbackHTTP.get(port: port, path: "/metrics").text
        #expect(metrics.contains("flowchain_errors_total{kind=\"sensor_missing\"}"), "\(metrics.split(separator: "\n").filter { $0.contains("errors") })")
        #expect(try LoopbackHTTP.get(port: port, path: "/health").status == 200)
        #expect(try await node.stop() == 0, "\(node.output.suffix(1500))")
    }

    @Test func listReadAndWatchSayWhatIsThere() async throws {
        let sys = SysfsFixture()
        try sys.w1("28-000005e2fdc3", SysfsFixture.goodW1)
        try sys.iio("iio:device0", name: "dht11", ["in_temp_input": "19250", "in_humidityrelative_input": "61000"])
        let dir = TemporaryDirectory("sensors-cli")
        let config = try Self.config(dir)
        func run(_ args: [String]) async throws -> (Int32, String) {
            let p = try FlowchainProcess(args, outputPath: dir.file("out-\(UUID().uuidString.prefix(6))"), environment: ["FLOWCHAIN_SYSFS": sys.root])
            return (try await p.wait(timeout: .seconds(60)), p.output)
        }
        let (listed, list) = try await run(["sensors", "list"])
        #expect(listed == 0 && list.contains("GPIO chips (libgpiod ") && list.contains("iio:device0  dht11  channels: humidityrelative, temp")
                && list.contains("28-000005e2fdc3  thermometer"), "\(list)")
        let (read, reading) = try await run(["sensors", "read", "tank", "--config", config])
        let json = try JSONValue(parsing: Array(reading.trimmingCharacters(in: .whitespacesAndNewlines).utf8))
        #expect(read == 0 && json["temperature"] == .number("23.125"), "\(reading)")
        let (watched, lines) = try await run(["sensors", "watch", "greenhouse", "--config", config, "--count", "2"])
        #expect(watched == 0 && lines.split(separator: "\n").filter { $0.contains("\"temp\":19.25") }.count == 2, "\(lines)")
        let (failed, why) = try await run(["sensors", "read", "door", "--config", config])
        #expect(failed == 1 && why.contains("door (gpio-input): GPIO chip pinctrl-bcm2711 not found"), "\(why)")
        let (unknown, which) = try await run(["sensors", "read", "cellar", "--config", config])
        #expect(unknown != 0 && which.contains("configures no sensor named cellar") && which.contains("tank, greenhouse, door"), "\(which)")
    }

    @Test(arguments: [
        ("sensors:\n  - name: a\n    type: thermistor\n", "sensors[0].type: 'thermistor' is not one of gpio-input, pulse-counter, iio, w1"),
        ("sensors:\n  - name: a\n    type: w1\n", "sensors[0].id is required for type w1"),
        ("sensors:\n  - name: a\n    type: w1\n    id: x\n    line: 4\n", "sensors[0].line does not apply to type w1"),
        ("sensors:\n  - name: a b\n    type: w1\n    id: x\n", "sensors[0].name"),
        ("sensors:\n  - name: a\n    type: gpio-input\n    chip: c\n    line: 4\n    bias: up\n", "sensors[0].bias: 'up' is not one of"),
        ("sensors:\n  - name: a\n    type: pulse-counter\n    chip: c\n    line: 4\n    edge: none\n", "sensors[0].edge"),
        ("sensors:\n  - name: a\n    type: w1\n    id: x\n  - name: a\n    type: w1\n    id: y\n", "sensors[1].name: 'a' names two sensors"),
        ("sensors:\n  - name: a\n    type: w1\n    id: x\n    interval: 0\n", "sensors[0].interval"),
    ])
    func badSensorSettingsNameTheirEntryAndKey(text: String, expected: String) throws {
        let file = try ConfigFile.parse(text)
        do {
            _ = try file.sensors?.sensorConfigurations()
            Issue.record("accepted: \(text)")
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
        }
    }

    @Test func aTypoInTheSensorsSectionIsNamedWithItsLine() {
        do { _ = try ConfigFile.parse("sensors:\n  - name: a\n    type: w1\n    idd: x\n"); Issue.record("accepted") } catch {
            #expect("\(error)".contains("line 4: unknown key 'sensors[0].idd'"), "\(error)")
        }
    }
}
