import Dispatch
import FlowchainCrypto
import Foundation
import Ledger
import Synchronization

/// Store, ingest and query scenarios, each on a fresh SQLite file in a temporary directory.
public enum LedgerBench {
    static func tempDir() throws -> String {
        let path = NSTemporaryDirectory() + "flowchain-bench-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Signs `count` readings over `devices` devices on all cores.
    static func makeReadings(count: Int, devices: Int, key: PrivateKey, firstSeq: UInt64 = 1, start: Int64 = 1_764_000_000_000, spacing: Int64 = 1000) -> [Reading] {
        let slots = ReadingSlots(count: count)
        let chunk = 4096
        DispatchQueue.concurrentPerform(iterations: (count + chunk - 1) / chunk) { c in
            for i in (c * chunk)..<min(count, (c + 1) * chunk) {
                let device = i % devices
                let seq = UInt64(i / devices) + firstSeq
                let payload = "{\"temperature\":\(20 + i % 10),\"humidity\":\(40 + i % 30)}"
                slots.set(i, try? Reading(device: "bench-\(device)", seq: seq, time: start + Int64(seq) * spacing,
                                          source: .rpc, payload: Array(payload.utf8), signedBy: key))
            }
        }
        return slots.all
    }

    /// Durable readings per second: one transaction per engine batch vs one per reading.
    public static func store(progress: (String) -> Void) throws -> BenchReport {
        var report = BenchReport(scenario: "store")
        let key = try PrivateKey()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let readings = makeReadings(count: 40_000, devices: 100, key: key)

        progress("group commit: 40,000 readings in transactions of \(IngestEngine.Configuration().maxBatch) (the engine's largest batch)")
        let grouped = try LedgerStore(path: dir + "/grouped.sqlite", owner: key.publicKey)
        let clock = ContinuousClock()
        var t0 = clock.now
        let batchSize = IngestEngine.Configuration().maxBatch
        for batch in stride(from: 0, to: readings.count, by: batchSize) {
            _ = try grouped.commitSync(Array(readings[batch..<min(batch + batchSize, readings.count)]))
        }
        let groupRate = Double(readings.count) / (clock.now - t0).seconds
        report.add("group_commit_readings_per_s", groupRate, "/s")

        progress("one commit per reading (at most 2,000 or 10 s)")
        let single = try LedgerStore(path: dir + "/single.sqlite", owner: key.publicKey)
        t0 = clock.now
        var n = 0
        while n < 2_000, clock.now - t0 < .seconds(10) {
            _ = try single.commitSync([readings[n]])
            n += 1
        }
        let singleRate = Double(n) / (clock.now - t0).seconds
        report.add("single_commit_readings_per_s", singleRate, "/s")
        report.add("group_vs_single_ratio", groupRate / singleRate, "x")
        report.note("both with synchronous=FULL in WAL mode: every commit is fsynced before it returns")
        return report
    }

    /// Engine throughput with signature checks, against the all-core verify rate of the same run,
    /// and acknowledgement latency at a fixed offered load.
    public static func ingest(rate: Int = 1000, seconds: Int = 5, progress: (String) -> Void) async throws -> BenchReport {
        var report = BenchReport(scenario: "ingest")
        let key = try PrivateKey()
        let message = [UInt8](repeating: 1, count: 200)
        let signature = try key.sign(message)
        progress("reference: Ed25519 verify on all cores")
        let verifyRate = try CryptoBench.allCores { precondition(key.publicKey.isValidSignature(signature, for: message)) }
        report.add("reference_verify_per_s_allcores", verifyRate, "/s")
        progress("reference: OpenSSL's Ed25519 verify on all cores (the verifier used before libsodium)")
        let openSSLRate = try CryptoBench.allCores { precondition(key.publicKey.isValidSignatureOpenSSL(signature, for: message)) }
        report.add("reference_openssl_verify_per_s_allcores", openSSLRate, "/s")

        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let total = 60_000
        // Readings in flight at once, as from that many devices; FLOWCHAIN_BENCH_PRODUCERS overrides.
        let producers = Int(ProcessInfo.processInfo.environment["FLOWCHAIN_BENCH_PRODUCERS"] ?? "") ?? 1024
        // As many devices as producers: reading i is device i % producers's, and producer p
        // submits readings p, p + producers, …, so each device's readings go in order.
        let readings = makeReadings(count: total + rate * seconds, devices: producers, key: key)
        progress("throughput: \(total) readings from \(producers) concurrent producers")
        let engine = try IngestEngine(store: LedgerStore(path: dir + "/throughput.sqlite", owner: key.publicKey), key: key).runningForBench()
        let clock = ContinuousClock()
        let t0 = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for p in 0..<producers {
                group.addTask {
                    // Each producer owns whole devices so per-device seq order is kept.
                    var i = p
                    while i < total {
                        _ = try await engine.submit(readings[i])
                        i += producers
                    }
                }
            }
            try await group.waitForAll()
        }
        let ingestRate = Double(total) / (clock.now - t0).seconds
        report.add("ingest_readings_per_s", ingestRate, "/s")
        report.add("ingest_vs_openssl_verify_allcores", ingestRate / openSSLRate, "ratio")
        report.add("ingest_vs_verify_allcores", ingestRate / verifyRate, "ratio")
        report.add("ingest_producers", Double(producers), "")

        progress("latency: \(rate) readings/s offered for \(seconds) s")
        let latencyEngine = try IngestEngine(store: LedgerStore(path: dir + "/latency.sqlite", owner: key.publicKey), key: key).runningForBench()
        let offered = Array(readings[total...])
        let latencies = LatencyBox()
        let reordered = LatencyBox()
        let start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, reading) in offered.enumerated() {
                let due = start + .microseconds(i * 1_000_000 / rate)
                try await clock.sleep(until: due)
                group.addTask {
                    do {
                        _ = try await latencyEngine.submit(reading)
                        latencies.add((clock.now - due).seconds * 1000)
                    } catch IngestError.seqNotIncreasing {
                        // Each reading is its own task here: when one waits longer than its
                        // device's next (200 ms later), the next is stored first and it is refused.
                        reordered.add(1)
                    }
                }
            }
            try await group.waitForAll()
        }
        report.add("ack_latency_refused_as_overtaken", Double(reordered.sorted.count), "")
        let sorted = latencies.sorted
        report.add("ack_latency_p50_ms", percentile(sorted, 50), "ms")
        report.add("ack_latency_p99_ms", percentile(sorted, 99), "ms")
        report.add("ack_latency_max_ms", sorted.last ?? .nan, "ms")
        report.add("offered_per_s", Double(rate), "/s")
        return report
    }

    /// A device/time-range query over `count` stored readings, with the plan SQLite chose.
    public static func query(count: Int = 1_000_000, progress: (String) -> Void) throws -> BenchReport {
        var report = BenchReport(scenario: "query")
        let key = try PrivateKey()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let devices = 1000
        let store = try LedgerStore(path: dir + "/query.sqlite", owner: key.publicKey)
        let chunk = 50_000
        var stored = 0
        while stored < count {
            let n = min(chunk, count - stored)
            progress("storing readings: \(stored)/\(count)")
            // Each chunk continues every device's seq and time where the last left off.
            let base = stored / devices
            let readings = makeReadings(count: n, devices: devices, key: key, firstSeq: UInt64(base) + 1)
            for b in stride(from: 0, to: n, by: 5000) { _ = try store.commitSync(Array(readings[b..<min(b + 5000, n)])) }
            stored += n
        }
        progress("querying")
        let span = Int64(count / devices) * 1000
        var rng = SystemRandomNumberGenerator()
        var latencies: [Double] = []
        var returned = 0
        let clock = ContinuousClock()
        for _ in 0..<2000 {
            let device = "bench-\(Int.random(in: 0..<devices, using: &rng))"
            let from = 1_764_000_000_000 + Int64.random(in: 0..<span, using: &rng)
            let t0 = clock.now
            let page = try store.readings(device: device, from: from, to: from + 60_000, limit: 100)
            latencies.append((clock.now - t0).seconds * 1000)
            returned += page.items.count
        }
        latencies.sort()
        report.add("stored_readings", Double(count), "")
        report.add("query_p50_ms", percentile(latencies, 50), "ms")
        report.add("query_p99_ms", percentile(latencies, 99), "ms")
        report.add("mean_rows_returned", Double(returned) / 2000, "")
        for line in try store.readingsQueryPlan() { report.note("plan: \(line)") }
        return report
    }
}

/// Slots filled by parallel producers, one writer per index.
final class ReadingSlots: Sendable {
    private let values: Mutex<[Reading?]>
    init(count: Int) { values = Mutex(Array(repeating: nil, count: count)) }
    func set(_ i: Int, _ r: Reading?) { values.withLock { $0[i] = r } }
    var all: [Reading] { values.withLock { $0.compactMap { $0 } } }
}

final class LatencyBox: Sendable {
    private let values = Mutex<[Double]>([])
    func add(_ v: Double) { values.withLock { $0.append(v) } }
    var sorted: [Double] { values.withLock { $0.sorted() } }
}
