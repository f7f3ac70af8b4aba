import FlowchainClient
import FlowchainCrypto
import FlowchainWire
import Foundation
import Ledger
import ProcessSupport
import Synchronization

/// A ring of real node processes on loopback: readings/s the ring accepts at each acknowledgement
/// level beside one node without the peer network (the reference, same run, same load), Chord
/// lookup hops, CPU per reading, and how long a joining node takes to copy a chain it takes keys
/// from.
public enum ClusterBench {
    public static func run(nodes: Int = 5, seconds: Double = 10, clients: Int = 8, takeover: Int = 100_000,
                           progress: (String) -> Void) async throws -> BenchReport {
        var report = BenchReport(scenario: "cluster")
        let dir = try LedgerBench.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }

        progress("reference: one node without the peer network, \(clients) connections × batches of 100 for \(seconds) s")
        let single = try await NodeProcess.start(dataDir: dir + "/single", extra: ["--no-peers", "--no-mint"])
        let cpu0 = single.cpuSeconds()
        let reference = try await load([single.url], seconds: seconds, clients: clients, prefix: "single")
        let singleCPU = (single.cpuSeconds() - cpu0) / Double(max(reference.acked, 1))
        single.stop()
        report.add("single_node_readings_per_s", reference.rate, "/s")
        report.add("single_node_cpu_us_per_reading", singleCPU * 1e6, "µs")

        for ack in ["owner", "replica"] {
            progress("a ring of \(nodes) nodes (r = 3, ack = \(ack)): starting and waiting for it to converge")
            let ring = try await startRing(nodes, dir: dir + "/ring-\(ack)", extra: ["--ack", ack, "--no-mint"])
            defer { for n in ring { n.stop() } }
            let cpuBefore = ring.map { $0.cpuSeconds() }
            progress("load at every node: \(clients) connections × batches of 100 for \(seconds) s")
            let result = try await load(ring.map(\.url), seconds: seconds, clients: clients, prefix: "ring-\(ack)")
            let cpu = zip(ring, cpuBefore).map { $0.cpuSeconds() - $1 }
            report.add("ring_\(ack)_readings_per_s", result.rate, "/s")
            report.add("ring_\(ack)_vs_single_node", result.rate / reference.rate, "ratio")
            report.add("ring_\(ack)_batch_latency_p50_ms", percentile(result.latencies, 50), "ms")
            report.add("ring_\(ack)_batch_latency_p99_ms", percentile(result.latencies, 99), "ms")
            report.add("ring_\(ack)_cpu_us_per_reading_all_nodes", cpu.reduce(0, +) / Double(max(result.acked, 1)) * 1e6, "µs")
            if ack == "owner" {
                progress("forwarding: load at node 0 only, for devices other nodes own")
                var ids: [String] = []
                for n in ring { ids.append(Hex.encode(SHA1.hash(Hex.decode((try? await RPCConnection.with(n.url) { try await $0.call("info") })?["publicKey"]?.stringValue ?? "") ?? []))) }
                let sorted = ids.sorted()
                func owner(_ device: String) -> String {
                    let key = Hex.encode(SHA1.hash(Array(device.utf8)))
                    return sorted.first { $0 >= key } ?? sorted[0]
                }
                let foreign = (0..<5000).map { "fwd-\($0)" }.filter { owner($0) != ids[0] }
                let before = ring.map { $0.cpuSeconds() }
                let fwd = try await load([ring[0].url], seconds: seconds, clients: clients, prefix: "fwd", devices: foreign)
                let spent = zip(ring, before).map { $0.cpuSeconds() - $1 }
                report.add("forwarding_readings_per_s", fwd.rate, "/s")
                report.add("forwarding_node_cpu_us_per_reading", spent[0] / Double(max(fwd.acked, 1)) * 1e6, "µs")
                report.add("owners_and_replicas_cpu_us_per_reading", spent.dropFirst().reduce(0, +) / Double(max(fwd.acked, 1)) * 1e6, "µs")
                var hops = 0.0, lookups = 0.0
                var buckets: [Double: Double] = [:]
                for n in ring {
                    let text = (try? LoopbackHTTP.get(port: n.port, path: "/metrics").text) ?? ""
                    hops += metric(text, "flowchain_lookup_hops_sum") ?? 0
                    lookups += metric(text, "flowchain_lookup_hops_count") ?? 0
                    for (le, count) in histogram(text, "flowchain_lookup_seconds") { buckets[le, default: 0] += count }
                }
                report.add("lookups", lookups, "")
                report.add("lookup_mean_hops", lookups > 0 ? hops / lookups : 0, "")
                report.add("lookup_p50_ms_at_most", quantile(buckets, 0.5) * 1000, "ms")
                report.add("lookup_p99_ms_at_most", quantile(buckets, 0.99) * 1000, "ms")
            }
        }

        report.add("nodes", Double(nodes), "")
        report.note("every reading is stored r = 3 times on one machine, so the ideal ring rate is about 1/3 of the single node's")
        guard takeover > 0 else { return report }
        progress("take-over: a ring of 2 holding \(takeover) readings; a third node joins")
        let pair = try await startRing(2, dir: dir + "/takeover", extra: ["--no-mint"])
        defer { for n in pair { n.stop() } }
        var stored = 0
        while stored < takeover {
            stored += try await load([pair[0].url, pair[1].url], seconds: 2, clients: clients, prefix: "takeover-\(stored)").acked
        }
        let joinStart = ContinuousClock.now
        let third = try await NodeProcess.start(dataDir: dir + "/takeover/n2", logLevel: "info", extra: ["--no-mint", "--join", "127.0.0.1:\(pair[0].port)"])
        defer { third.stop() }
        let copied = try await third.child.waitForOutput("took over keys from", timeout: .seconds(300))
        let elapsed = (ContinuousClock.now - joinStart).seconds
        let line = third.child.output.split(separator: "\n").first { $0.contains("took over keys from") } ?? ""
        let count = line.split(separator: " ").compactMap { Double($0) }.last ?? 0
        report.add("takeover_readings_in_ring", Double(stored), "")
        report.add("takeover_readings_copied", count, "")
        report.add("takeover_seconds", copied ? elapsed : -1, "s")
        report.add("takeover_readings_per_s", copied && elapsed > 0 ? count / elapsed : 0, "/s")
        report.note("the joining node copies its successor's whole chain (not only its range): takeover_readings_copied says how much")
        return report
    }

    /// A Prometheus histogram's cumulative buckets: upper bound → count.
    static func histogram(_ text: String, _ name: String) -> [(Double, Double)] {
        text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix(name + "_bucket{"), let le = line.range(of: #"le="([^"]+)""#, options: .regularExpression) else { return nil }
            let bound = line[le].dropFirst(4).dropLast()
            guard let count = Double(line.split(separator: " ").last ?? "") else { return nil }
            return (bound == "+Inf" ? .infinity : Double(bound) ?? .infinity, count)
        }
    }

    /// The upper bound of the bucket holding quantile `q` (a histogram only bounds it).
    static func quantile(_ buckets: [Double: Double], _ q: Double) -> Double {
        let sorted = buckets.sorted { $0.key < $1.key }
        guard let total = sorted.last?.value, total > 0 else { return 0 }
        return sorted.first { $0.value >= q * total }?.key ?? 0
    }

    static func metric(_ text: String, _ name: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    /// Starts `count` nodes, the first alone and the others joining it, and waits until each
    /// knows a predecessor and the whole ring.
    static func startRing(_ count: Int, dir: String, extra: [String]) async throws -> [NodeProcess] {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var nodes = [try await NodeProcess.start(dataDir: dir + "/n0", extra: extra)]
        for i in 1..<count {
            nodes.append(try await NodeProcess.start(dataDir: dir + "/n\(i)", extra: extra + ["--join", "127.0.0.1:\(nodes[0].port)"]))
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            var ready = true
            for n in nodes {
                let ring = try? await RPCConnection.with(n.url) { try await $0.call("ring") }
                if ring?["predecessor"] == nil || ring?["predecessor"] == .null || (ring?["ring"]?.arrayValue?.count ?? 0) < count { ready = false; break }
            }
            if ready { return nodes }
            try await Task.sleep(for: .milliseconds(300))
        }
        for n in nodes { n.stop() }
        throw BenchError.nodeDidNotStart("the ring of \(count) did not converge within 60 s")
    }

    struct LoadResult {
        let acked: Int
        let rate: Double
        let latencies: [Double]
    }

    /// `clients` connections spread over `urls`, each sending `submit {"readings": 100}` in a loop
    /// for `seconds` (bounded in time), 64 devices per connection.
    static func load(_ urls: [String], seconds: Double, clients: Int, prefix: String, devices: [String]? = nil) async throws -> LoadResult {
        let acked = AckCount()
        let latencies = LatencyBox()
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int64(seconds * 1000))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in 0..<clients {
                group.addTask {
                    try await RPCConnection.with(urls[c % urls.count]) { rpc in
                        var round = 0
                        while ContinuousClock.now < deadline {
                            var batch: [JSONValue] = []
                            for i in 0..<100 {
                                let device = devices.map { $0[(c * 64 + i % 64) % $0.count] } ?? "\(prefix)-\(c)-\(i % 64)"
                                batch.append(["device": .string(device), "payload": ["v": .int(Int64(round * 100 + i))]])
                            }
                            let t = ContinuousClock.now
                            let result = try await rpc.call("submit", ["readings": .array(batch)])
                            latencies.add((ContinuousClock.now - t).seconds * 1000)
                            acked.add((result.arrayValue ?? []).filter { $0["ack"] != nil }.count)
                            round += 1
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let n = acked.value
        return LoadResult(acked: n, rate: Double(n) / (ContinuousClock.now - start).seconds, latencies: latencies.sorted)
    }
}

final class AckCount: Sendable {
    private let count = Mutex(0)
    func add(_ n: Int) { count.withLock { $0 += n } }
    var value: Int { count.withLock { $0 } }
}
