import FlowchainCrypto
import Foundation
import Ledger
import Sensors

/// The sampler's CPU cost per 1,000 samples, on sysfs-shaped files (a DS18B20 and a DHT22 through
/// the dht11 driver's files), against the bare cost of reading the same files.
public enum SensorBench {
    public static func run(samples: Int = 5_000, progress: (String) -> Void) async throws -> BenchReport {
        var report = BenchReport(scenario: "sensors")
        let dir = try LedgerBench.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w1 = dir + "/bus/w1/devices/28-000005e2fdc3", iio = dir + "/bus/iio/devices/iio:device0"
        try FileManager.default.createDirectory(atPath: w1, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: iio, withIntermediateDirectories: true)
        try "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n".write(toFile: w1 + "/w1_slave", atomically: true, encoding: .utf8)
        for (f, v) in ["name": "dht11", "in_temp_input": "21500", "in_humidityrelative_input": "40000"] {
            try (v + "\n").write(toFile: iio + "/" + f, atomically: true, encoding: .utf8)
        }
        let sysfs = Sysfs(root: dir)

        progress("reference: reading the sensor files themselves, \(samples) times")
        let c0 = processCPUSeconds()
        for _ in 0..<samples {
            _ = try String(contentsOfFile: w1 + "/w1_slave", encoding: .utf8)
            _ = try String(contentsOfFile: iio + "/in_temp_input", encoding: .utf8)
            _ = try String(contentsOfFile: iio + "/in_humidityrelative_input", encoding: .utf8)
        }
        let bare = (processCPUSeconds() - c0) / Double(samples) * 1000 * 1000
        report.add("bare_file_reads_cpu_ms_per_1000", bare, "ms")

        progress("samples (parse, CRC, units, JSON): \(samples) 1-Wire + \(samples) IIO")
        let w1Reader = SensorReader(SensorConfiguration(name: "tank", kind: .w1(id: "28-000005e2fdc3", interval: .seconds(1))), sysfs: sysfs)
        let iioReader = SensorReader(SensorConfiguration(name: "greenhouse", kind: .iio(device: "dht11", channels: [], interval: .seconds(1))), sysfs: sysfs)
        let c1 = processCPUSeconds()
        for _ in 0..<samples {
            _ = try await w1Reader.readOnce()
            _ = try await iioReader.readOnce()
        }
        let sampled = (processCPUSeconds() - c1) / Double(samples) * 1000 * 1000
        report.add("samples_cpu_ms_per_1000", sampled / 2, "ms")

        progress("samples ingested: signed by the node and committed durably, one at a time")
        let key = try PrivateKey()
        let store = try LedgerStore(path: dir + "/ledger.sqlite", owner: key.publicKey)
        let engine = try IngestEngine(store: store, key: key)
        let running = Task { try await engine.run() }
        defer { running.cancel() }
        let n = min(samples, 2_000)
        let c2 = processCPUSeconds()
        for _ in 0..<n {
            let s = try await w1Reader.readOnce()
            _ = try await engine.ingest(.unsigned(device: "tank", payload: Array(s.json.utf8), time: s.time, timeQuality: .synced, source: .w1))
        }
        let ingested = (processCPUSeconds() - c2) / Double(n) * 1000 * 1000
        report.add("samples_ingested_cpu_ms_per_1000", ingested, "ms")
        report.add("sampling_vs_bare_reads", (sampled / 2) / (bare / 3 * 1.5), "ratio")
        report.note("bare reads: three small sysfs files per pair of samples; a sample reads one (1-Wire) or two (IIO) files and parses them")
        report.note("ingested: each sample awaited through the ledger (sign, fsync'd commit): CPU of the whole process")
        return report
    }
}
