import FlowchainCrypto
import Foundation
import Ledger
import ProcessSupport

/// `bench start`: how long a node takes from its start to listening ("node ready") and its RSS
/// after start, for an empty ledger (the reference) and for ledgers of growing size, built here
/// (real signed readings in blocks of 4,096, as a node seals them). Nothing a start does may
/// grow with the ledger: it re-verifies a bounded tail and reads counts from indexes.
public enum StartBench {
    public static func run(sizes: [Int], progress: (String) -> Void) async throws -> BenchReport {
        var report = BenchReport(scenario: "start")
        let dir = try LedgerBench.tempDir()
        // FLOWCHAIN_BENCH_KEEP=1 leaves the ledgers for a closer look (the path is printed).
        let keep = ProcessInfo.processInfo.environment["FLOWCHAIN_BENCH_KEEP"] == "1"
        defer { if keep { progress("kept \(dir)") } else { try? FileManager.default.removeItem(atPath: dir) } }

        func measure(_ data: String) async throws -> (seconds: Double, rssMB: Double, uniqueMB: Double) {
            // The best of three starts: the first also warms the page cache.
            var best = (seconds: Double.infinity, rssMB: 0.0, uniqueMB: 0.0)
            for _ in 0..<3 {
                let t0 = ContinuousClock.now
                let node = try await NodeProcess.start(dataDir: data, logLevel: "info", extra: ["--no-mint"], timeout: .seconds(600))
                let seconds = (ContinuousClock.now - t0).seconds
                try await Task.sleep(for: .seconds(2))
                let rss = node.rssMB(), unique = node.memory().map { Double($0.unique) / 1_048_576 } ?? 0
                node.stop()
                if seconds < best.seconds { best = (seconds, rss, unique) }
            }
            return best
        }

        progress("reference: a node on an empty data directory")
        let empty = try await measure(dir + "/empty")
        report.add("start_s_empty", empty.seconds, "s")
        report.add("rss_MB_empty", empty.rssMB, "MB")

        let data = dir + "/big"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let key = try KeyFile.create(at: data + "/node.key")
        let devices = 1000
        var stored = 0
        for size in sizes.sorted() {
            let store = try LedgerStore(path: data + "/ledger.sqlite", owner: key.publicKey, tailCheck: 0)
            let started = ContinuousClock.now
            while stored < size {
                let n = min(200_000, size - stored)
                progress("storing signed readings: \(stored)/\(size) (\(Int(Double(stored) / max(0.001, (ContinuousClock.now - started).seconds)))/s)")
                let readings = LedgerBench.makeReadings(count: n, devices: devices, key: key, firstSeq: UInt64(stored / devices) + 1)
                for b in stride(from: 0, to: n, by: 4096) {
                    _ = try store.commitSync(Array(readings[b..<min(b + 4096, n)]))
                    _ = try store.cutBlockSync(signedBy: key, now: 1_764_000_000_000 + Int64(stored + b), maxReadings: 4096)
                }
                stored += n
            }
            try store.close()
            let bytes = ((try? FileManager.default.attributesOfItem(atPath: data + "/ledger.sqlite"))?[.size] as? Int) ?? 0
            progress("starting a node on \(size) readings (\(bytes / 1_048_576) MB)")
            let m = try await measure(data)
            let label = size % 1_000_000 == 0 ? "\(size / 1_000_000)M" : "\(size)"
            report.add("ledger_MB_\(label)", Double(bytes) / 1_048_576, "MB")
            report.add("start_s_\(label)", m.seconds, "s")
            report.add("start_\(label)_vs_empty", m.seconds / empty.seconds, "ratio")
            report.add("rss_MB_\(label)", m.rssMB, "MB")
            report.add("rss_\(label)_vs_empty", m.rssMB / empty.rssMB, "ratio")
            report.add("unique_MB_\(label)", m.uniqueMB, "MB")
        }
        report.note("targets: under 2 s and under 64 MB RSS whatever the ledger's size; best of 3 starts each; 1,000 devices; anchor chains: bench pos --anchor-blocks")
        return report
    }
}
