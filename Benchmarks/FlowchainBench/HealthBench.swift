import FlowchainClient
import FlowchainCrypto
import ProcessSupport
import Foundation
import Ledger
import NodeServer
import Synchronization

/// Does polling `/health` slow ingest down? A real node process holding `preload` readings takes
/// device-signed RPC submits at a fixed offered rate, first alone (the reference), then while
/// `/health` is fetched `healthRate` times a second; the acknowledgement p99 of both phases is
/// compared in the same run.
public enum HealthBench {
    public static func run(preload: Int = 200_000, rate: Int = 500, healthRate: Int = 100, seconds: Int = 10,
                           progress: (String) -> Void) async throws -> BenchReport {
        var report = BenchReport(scenario: "health")
        let dir = try LedgerBench.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/node"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let nodeKey = try KeyFile.create(at: data + "/node.key")
        progress("preloading \(preload) readings (the old /health counted them on every request)")
        let deviceKey = try PrivateKey()
        do {
            let store = try LedgerStore(path: data + "/ledger.sqlite", owner: nodeKey.publicKey)
            var done = 0
            while done < preload {
                let n = min(50_000, preload - done)
                _ = try store.commitSync(LedgerBench.makeReadings(count: n, devices: 100, key: deviceKey, firstSeq: UInt64(done / 100 + 1)))
                while try store.cutBlockSync(signedBy: nodeKey, now: 1, maxReadings: 4096) != nil {}
                done += n
            }
            try store.close()
        }
        let node = try await NodeProcess.start(dataDir: data)
        defer { node.stop() }
        let total = rate * seconds * 3 + rate * 2
        let readings = LedgerBench.makeReadings(count: total, devices: 64, key: deviceKey, firstSeq: UInt64(preload / 100 + 10), start: 1_800_000_000_000)

        func phase(_ name: String, _ slice: ArraySlice<Reading>, polling: Bool) async throws -> (p50: Double, p99: Double, health: Int) {
            progress("\(name): \(slice.count) submits at \(rate)/s\(polling ? ", /health at \(healthRate)/s" : "")")
            let latencies = LatencyBox()
            let stop = StopFlag()
            let poller = Task.detached { () -> Int in
                guard polling else { return 0 }
                var n = 0
                let start = ContinuousClock.now
                while !stop.isSet {
                    _ = try? LoopbackHTTP.get(port: node.port, path: "/health")
                    n += 1
                    let next = start + .milliseconds(1000 * n / healthRate)
                    let wait = next - ContinuousClock.now
                    if wait > .zero { try? await Task.sleep(for: wait) }
                }
                return n
            }
            try await RPCConnection.with(node.url) { rpc in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    let start = ContinuousClock.now
                    for (i, r) in slice.enumerated() {
                        let due = start + .microseconds(Int64(i) * 1_000_000 / Int64(rate))
                        let wait = due - ContinuousClock.now
                        if wait > .zero { try await Task.sleep(for: wait) }
                        let encoded = Hex.encode(r.encoded)
                        group.addTask {
                            let t = ContinuousClock.now
                            _ = try await rpc.call("submit", ["encoded": .string(encoded)])
                            latencies.add((ContinuousClock.now - t).seconds * 1000)
                        }
                    }
                    try await group.waitForAll()
                }
            }
            stop.set()
            let polls = await poller.value
            let sorted = latencies.sorted
            return (percentile(sorted, 50), percentile(sorted, 99), polls)
        }

        // A short warm-up first (connections, caches, the node's first blocks), not measured; then
        // the two phases, alone / polled / alone again, and the reference is the better of the two.
        let warm = rate * 2
        _ = try await phase("warm-up", readings[..<warm], polling: false)
        let third = (readings.count - warm) / 3
        let quiet1 = try await phase("reference: ingest alone", readings[warm..<(warm + third)], polling: false)
        let busy = try await phase("ingest while /health is polled", readings[(warm + third)..<(warm + 2 * third)], polling: true)
        let quiet2 = try await phase("reference again: ingest alone", readings[(warm + 2 * third)...], polling: false)
        let quiet = quiet1.p99 <= quiet2.p99 ? quiet1 : quiet2
        report.add("preloaded_readings", Double(preload), "")
        report.add("offered_submits_per_s", Double(rate), "/s")
        report.add("ack_p50_ms_alone", quiet.p50, "ms")
        report.add("ack_p99_ms_alone", quiet.p99, "ms")
        report.add("ack_p50_ms_with_health", busy.p50, "ms")
        report.add("ack_p99_ms_with_health", busy.p99, "ms")
        report.add("p99_with_health_vs_alone", busy.p99 / quiet.p99, "ratio")
        report.add("health_requests_per_s", Double(busy.health) / Double(seconds), "/s")
        report.add("ack_p99_ms_alone_runs", quiet1.p99, "ms")
        report.add("ack_p99_ms_alone_runs_2", quiet2.p99, "ms")
        report.note("one node, phases alone / with /health / alone; the reference is the better alone run; the ratio is what matters on a shared machine")
        return report
    }
}

final class StopFlag: Sendable {
    private let value = Atomic(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}
