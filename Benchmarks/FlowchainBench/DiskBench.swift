import FlowchainClient
import FlowchainCrypto
import Foundation
import Ledger
import LedgerModel
import ProcessSupport

/// What a node writes to its storage at the steady, low rates sensors produce (SD cards and eMMC
/// wear out by bytes written): a node process takes readings from several devices at 1, 16 and
/// 256 readings/s, each acknowledged before the next of its device is sent; the figures are the
/// bytes the process wrote (`/proc/PID/io` write_bytes) per reading and per store transaction,
/// transactions per second (each at least one fsync), acknowledgement latency, and the bytes the
/// ledger file grew per reading in the same run. The physical floor of a durable
/// acknowledgement is one filesystem block (4 KiB) per fsync.
public enum DiskBench {
    public static func run(seconds: Double, rates: [Int] = [1, 16, 256], devices: Int = 4, prefill: Int = 0, extra: [String] = [],
                           progress: (String) -> Void) async throws -> BenchReport {
        var report = BenchReport(scenario: "disk")
        let dir = try LedgerBench.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A ledger that already holds `prefill` readings (1,000 devices, blocks of 4,096): its
        // indexes are large, so the readings of the load land in leaves no other reading of the
        // load shares, as on a node that has run for months.
        let template = dir + "/template"
        if prefill > 0 {
            try FileManager.default.createDirectory(atPath: template, withIntermediateDirectories: true)
            let key = try KeyFile.create(at: template + "/node.key")
            let store = try LedgerStore(path: template + "/ledger.sqlite", owner: key.publicKey, tailCheck: 0)
            var stored = 0
            while stored < prefill {
                let n = min(200_000, prefill - stored)
                progress("disk: storing \(prefill) signed readings first: \(stored)/\(prefill)")
                let readings = LedgerBench.makeReadings(count: n, devices: 1000, key: key, firstSeq: UInt64(stored / 1000) + 1)
                for b in stride(from: 0, to: n, by: 4096) {
                    _ = try store.commitSync(Array(readings[b..<min(b + 4096, n)]))
                    _ = try store.cutBlockSync(signedBy: key, now: 1_764_000_000_000 + Int64(stored + b), maxReadings: 4096)
                }
                stored += n
            }
            try store.close()
            report.add("prefilled_readings", Double(prefill), "")
        }
        for rate in rates {
            // The node as it runs (acknowledgement journal), then the reference in the same run:
            // every acknowledgement its own fsynced SQLite transaction (FLOWCHAIN_ACK_JOURNAL=0).
            var perTransaction: [String: Double] = [:]
            for (mode, environment) in [("journal", [String: String]()), ("reference", ["FLOWCHAIN_ACK_JOURNAL": "0"])] {
                let suffix = mode == "journal" ? "at_\(rate)" : "at_\(rate)_reference"
                let data = dir + "/node-\(rate)-\(mode)"
                if prefill > 0 {
                    try FileManager.default.copyItem(atPath: template, toPath: data)
                    chmod(data + "/node.key", 0o600)
                }
                // Created, then stopped: the empty ledger's size is the baseline of its growth.
                let first = try await NodeProcess.start(dataDir: data, extra: ["--no-peers"] + extra, environment: environment)
                first.stop()
                let ledger = data + "/ledger.sqlite"
                let empty = fileSize(ledger) + fileSize(ledger + "-wal")
                let node = try await NodeProcess.start(dataDir: data, extra: ["--no-peers"] + extra, environment: environment)
                try await Task.sleep(for: .seconds(2))
                let idle0 = writeBytes(node.child.pid)
                try await Task.sleep(for: .seconds(10))
                let idle1 = writeBytes(node.child.pid)
                report.add("idle_bytes_written_per_s_\(suffix)", Double(idle1 - idle0) / 10, "B/s")
                progress("disk: \(rate) readings/s from \(devices) devices for \(Int(seconds)) s (\(mode))")
                let tx0 = try await transactions(node)
                let device = BlockDevice(holding: dir)
                let dev0 = device?.bytesWrittenAfterSync()
                let io0 = writeBytes(node.child.pid)
                let latencies = LatencyBox()
                let started = ContinuousClock.now
                let sent = try await load(node.url, rate: rate, devices: devices, seconds: seconds, latencies: latencies)
                let elapsed = (ContinuousClock.now - started).seconds
                // What the load left to write is counted too: the journal's batch is settled into
                // SQLite 5 s after the last commit (an idle node writes nothing else).
                try await Task.sleep(for: .seconds(7))
                let io1 = writeBytes(node.child.pid)
                let tx1 = try await transactions(node)
                // Stopped, the node checkpoints the WAL into the database file (what a running node
                // does every 8,192 WAL pages): counted from the exited process before it is reaped.
                node.child.signal(SIGTERM)
                let exited = node.child.waitForExitUnreaped()
                let io2 = exited ? writeBytes(node.child.pid) : 0
                node.stop()
                let dev1 = device?.bytesWrittenAfterSync()
                let grown = fileSize(ledger) + fileSize(ledger + "-wal") - empty
                let written = Double(io1 - io0), commits = Double(max(1, tx1 - tx0))
                let sorted = latencies.sorted
                perTransaction[mode] = written / commits
                report.add("readings_\(suffix)", Double(sent), "")
                report.add("bytes_written_per_reading_\(suffix)", written / Double(max(1, sent)), "B")
                report.add("bytes_written_per_transaction_\(suffix)", written / commits, "B")
                report.add("per_transaction_vs_4KiB_floor_\(suffix)", written / commits / 4096, "ratio")
                report.add("transactions_per_s_\(suffix)", commits / elapsed, "/s")
                report.add("ledger_growth_per_reading_\(suffix)", Double(grown) / Double(max(1, sent)), "B")
                report.add("written_vs_growth_\(suffix)", written / Double(max(1, grown)), "ratio")
                report.add("readings_per_transaction_\(suffix)", Double(sent) / commits, "")
                if io2 >= io1, io2 > 0 {
                    report.add("bytes_written_per_reading_with_checkpoint_\(suffix)", Double(io2 - io0) / Double(max(1, sent)), "B")
                    report.add("bytes_written_per_transaction_with_checkpoint_\(suffix)", Double(io2 - io0) / commits, "B")
                    report.add("written_vs_growth_with_checkpoint_\(suffix)", Double(io2 - io0) / Double(max(1, grown)), "ratio")
                }
                if let dev0, let dev1, dev1 >= dev0 {
                    report.add("device_bytes_written_per_transaction_with_checkpoint_\(suffix)", Double(dev1 - dev0) / commits, "B")
                }
                if mode == "journal", grown > 0 {
                    // No design does better with this load: each device waits for its
                    // acknowledgement, so one fsync (at least one 4 KiB block) covers at most
                    // `devices` readings, and the ledger's growth is written at least once.
                    let perReading = Double(grown) / Double(max(1, sent))
                    report.add("written_vs_growth_least_possible_\(suffix)", (4096 / Double(min(devices, max(1, sent))) + perReading) / perReading, "ratio")
                }
                report.add("ack_p50_ms_\(suffix)", percentile(sorted, 50), "ms")
                report.add("ack_p99_ms_\(suffix)", percentile(sorted, 99), "ms")
            }
            if let j = perTransaction["journal"], let r = perTransaction["reference"], r > 0 {
                report.add("per_transaction_journal_vs_reference_at_\(rate)", j / r, "ratio")
            }
        }
        report.note("bytes written: /proc/PID/io write_bytes of the node process (what it sent to the block layer), during the load and the 7 s after it (the journal settles every 300 s, after 60 s idle and when half full: at low rates a short run settles only as the node stops, which with_checkpoint counts)")
        report.note("transactions: durable commits (flowchain_store_transactions): with the journal, each fdatasyncs one journal record; in the reference (FLOWCHAIN_ACK_JOURNAL=0) each is a SQLite transaction that fsyncs the WAL")
        report.note("ledger growth: ledger.sqlite and its -wal (the journal's file has a fixed size, 2 MiB)")
        report.note("with_checkpoint: also what the node wrote stopping, which checkpoints the WAL into the database file (read from the exited process before it is reaped); a running node checkpoints every 8,192 WAL pages")
        report.note("device_bytes_written: what the block device holding the data reported written (/sys/dev/block/M:m/stat, after sync(), from the load's start to the node's exit): the file system's own journal included, and anything else writing to that device, so meaningful on a quiet machine; /proc/PID/io counts a whole cached large folio for a small write into it, the device only the blocks written")
        report.note("written_vs_growth_least_possible: (4 KiB / \(devices) devices + growth) / growth: with each device waiting for its acknowledgement no commit holds more than \(devices) readings")
        return report
    }

    /// Sends `rate` readings a second in all, spread over the devices, one connection and one
    /// reading in flight per device; returns how many were acknowledged.
    static func load(_ url: String, rate: Int, devices: Int, seconds: Double, latencies: LatencyBox) async throws -> Int {
        let perDevice = Double(rate) / Double(devices)
        let count = Int(perDevice * seconds)
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for d in 0..<devices {
                group.addTask {
                    try await RPCConnection.with(url) { rpc in
                        let start = ContinuousClock.now
                        // Devices start at different moments, as independent sensors do.
                        let offset = Double(d) / Double(devices) / perDevice
                        var acked = 0
                        for i in 0..<count {
                            let due = start + .seconds(offset + Double(i) / perDevice)
                            if due > ContinuousClock.now { try await Task.sleep(until: due, clock: .continuous) }
                            let t = ContinuousClock.now
                            let payload: JSONValue = .object(["t": .number(String(21 + i % 10)), "i": .number(String(i))])
                            let ack = try await rpc.call("submit", ["device": .string("disk-\(d)"), "payload": payload])
                            latencies.add((ContinuousClock.now - t).seconds * 1000)
                            if ack["id"] != nil { acked += 1 }
                        }
                        return acked
                    }
                }
            }
            return try await group.reduce(0, +)
        }
    }

    /// The block device a directory is on, as the kernel counts what was written to it.
    struct BlockDevice {
        let statPath: String
        init?(holding path: String) {
            guard let number = (try? FileManager.default.attributesOfItem(atPath: path))?[.systemNumber] as? NSNumber else { return nil }
            let dev = number.uint64Value
            let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
            let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
            statPath = "/sys/dev/block/\(major):\(minor)/stat"
            guard major != 0, bytesWritten() != nil else { return nil }
        }
        /// Bytes written to the device so far (sectors of 512 bytes, field 7 of its stat file).
        func bytesWritten() -> Int? {
            guard let text = try? String(contentsOfFile: statPath, encoding: .utf8) else { return nil }
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 6, let sectors = Int(fields[6]) else { return nil }
            return sectors * 512
        }
        /// After every dirty page of the system went to its device.
        func bytesWrittenAfterSync() -> Int? {
            sync()
            return bytesWritten()
        }
    }

    static func writeBytes(_ pid: Int32) -> Int {
        guard let io = try? String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8),
              let line = io.split(separator: "\n").first(where: { $0.hasPrefix("write_bytes:") }) else { return 0 }
        return Int(line.split(separator: " ").last ?? "") ?? 0
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    static func transactions(_ node: NodeProcess) async throws -> Int {
        let port = node.port
        let text = try await Task.detached { try LoopbackHTTP.get(port: port, path: "/metrics").text }.value
        let line = text.split(separator: "\n").first { $0.hasPrefix("flowchain_store_transactions ") }
        return Int(Double(line?.split(separator: " ").last ?? "") ?? 0)
    }
}
