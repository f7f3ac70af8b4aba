import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
import Logging
import Sensors
import Synchronization
import Testing

@Suite("The sampler: sensors become signed readings; failures are counted and retried")
struct SamplerTests {
    static let node = Fixtures.key(41)

    final class Failures: Sendable {
        let kinds = Mutex<[String]>([])
        var all: [String] { kinds.withLock { $0 } }
    }

    static func readings(_ store: LedgerStore, _ device: String) throws -> [StoredReading] {
        try store.readings(afterCursor: 0, device: device, limit: 1000)
    }

    @Test func readingsAreSignedByTheNodeAndAFailingSensorRecoversWithoutStoppingTheOthers() async throws {
        let sys = SysfsFixture()
        try sys.w1("28-000005e2fdc3", SysfsFixture.goodW1)
        try sys.iio("iio:device0", name: "dht11", ["in_temp_input": "21500", "in_humidityrelative_input": "40000"])
        let dir = TemporaryDirectory()
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.node.publicKey)
        let engine = try IngestEngine(store: store, key: Self.node).running()
        let failures = Failures()
        let sampler = SamplerService(
            sensors: [
                SensorConfiguration(name: "tank", kind: .w1(id: "28-000005e2fdc3", interval: .milliseconds(50))),
                SensorConfiguration(name: "greenhouse", kind: .iio(device: "dht11", channels: [], interval: .milliseconds(50))),
                SensorConfiguration(name: "door", kind: .gpioInput(chip: "flowchain-no-such-chip", line: "GPIO17", bias: .pullUp, activeLow: false, debounce: .zero)),
            ],
            engine: engine, sysfs: Sysfs(root: sys.root),
            counters: .init(failed: { kind in failures.kinds.withLock { $0.append(kind) } }),
            maxBackoff: .milliseconds(200), logger: Logger(label: "sampler-test"))
        let running = Task { try await sampler.run() }
        defer { running.cancel() }

        func waitFor(_ what: String, _ condition: () throws -> Bool) async throws {
            if try await eventually({ try condition() }) { return }
            Issue.record("timed out waiting for \(what); failures so far: \(failures.all); tank readings: \((try? Self.readings(store, "tank").count) ?? -1)")
        }
        try await waitFor("tank and greenhouse readings") { try Self.readings(store, "tank").count >= 3 && Self.readings(store, "greenhouse").count >= 3 }
        let tank = try #require(try Self.readings(store, "tank").first?.reading)
        #expect(tank.source == .w1 && tank.signer == Self.node.publicKey && tank.hasValidSignature)
        let payload = try JSONValue(parsing: tank.payload)
        #expect(payload["temperature"] == .number("23.125") && payload["unit"] == "°C" && payload["sensor"] == "28-000005e2fdc3")
        let greenhouse = try JSONValue(parsing: try #require(try Self.readings(store, "greenhouse").first?.reading.payload))
        #expect(greenhouse["temp"] == .number("21.5") && greenhouse["humidityrelative"] == .number("40") && greenhouse["units"]?["temp"] == "°C", "\(greenhouse)")

        // The missing GPIO chip is counted (and retried), and has not stopped the others.
        try await waitFor("the missing chip counted twice") { failures.all.filter { $0 == "missing" }.count >= 2 }

        // A bad CRC, then the device disappears: counted; then it is back and readings resume.
        try sys.w1("28-000005e2fdc3", SysfsFixture.badCRCW1)
        try await waitFor("the bad CRC counted") { failures.all.contains("garbage") }
        sys.remove("bus/w1/devices/28-000005e2fdc3")
        let missingBefore = failures.all.filter { $0 == "missing" }.count
        try await waitFor("the vanished thermometer counted") { failures.all.filter { $0 == "missing" }.count > missingBefore + 1 }
        let before = try Self.readings(store, "tank").count
        try sys.w1("28-000005e2fdc3", SysfsFixture.goodW1)
        try await waitFor("tank readings again") { try Self.readings(store, "tank").count > before }
        #expect(try Self.readings(store, "greenhouse").count >= 3)
        // Seqs stay consecutive across the failures: nothing was numbered and lost.
        let seqs = try Self.readings(store, "tank").map(\.reading.seq)
        #expect(seqs == Array(1...UInt64(seqs.count)))
    }
}
