import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
import Testing

/// Power cuts, not just SIGKILL: the node's data directory sits on a FUSE filesystem of ours
/// (`Python/powercut_fs.py`) that throws away every write not fsynced when the "power" is cut, so a
/// missing fsync loses acknowledged readings here (SIGKILL keeps the OS page cache and cannot tell).
@Suite("Power loss", .serialized)
struct PowerLossTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Python/powercut_fs.py").path

    /// A mounted power-cut filesystem over `disk` at `mount`, stopped by PID.
    final class PowerCutMount {
        let process: Process
        let mount: String

        init(disk: String, mount: String, log: String) async throws {
            self.mount = mount
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let out = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            out.seekToEndOfFile()
            process = Process()
            // /usr/bin/env execs python3 in place, so this PID is the filesystem's.
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", PowerLossTests.script, disk, mount]
            process.standardOutput = out
            process.standardError = out
            try process.run()
            let deadline = ContinuousClock.now + .seconds(20)
            while !Self.isMounted(mount) {
                guard ContinuousClock.now < deadline, process.isRunning else {
                    throw MountError(log: (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        struct MountError: Error, CustomStringConvertible {
            let log: String
            var description: String { "the power-cut filesystem did not mount (needs /dev/fuse, libfuse2 and the Python module fusepy; scripts/deps test installs them):\n\(log.suffix(2000))" }
        }

        static func isMounted(_ path: String) -> Bool {
            ((try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? "").split(separator: "\n").contains { $0.split(separator: " ").dropFirst().first == Substring(path) }
        }

        /// Cuts the power: every write not fsynced is lost, and the filesystem unmounts.
        func cut() async throws { try await end(".powercut") }
        /// Unmounts after writing everything back.
        func shutdown() async throws { try await end(".shutdown") }

        private func end(_ control: String) async throws {
            var st = stat()
            _ = stat(mount + "/" + control, &st)
            let deadline = ContinuousClock.now + .seconds(20)
            while process.isRunning || Self.isMounted(mount) {
                if ContinuousClock.now > deadline {
                    kill(process.processIdentifier, SIGKILL)
                    _ = try? await runProcess("/bin/umount", ["-l", mount])
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        deinit {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }

    static func runProcess(_ path: String, _ args: [String]) async throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        try p.run()
        while p.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        return p.terminationStatus
    }

    static func acknowledged(_ path: String) -> Set<String> {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return Set(text.split(separator: "\n").map(String.init).filter { $0.count == 64 })
    }

    /// `cuts` power cuts of a node under load; returns (acknowledged, lost) after each cut.
    static func cycles(_ cuts: Int, environment: [String: String], dir: TemporaryDirectory, seed: UInt64) async throws -> [(acked: Int, lost: [String])] {
        let disk = dir.file("disk"), mount = dir.file("mnt"), ackLog = dir.file("acks.txt")
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        var rng = SeededRandom(seed: seed)
        var results: [(acked: Int, lost: [String])] = []
        for cut in 0..<cuts {
            let fs = try await PowerCutMount(disk: disk, mount: mount, log: dir.file("fs.log"))
            let node = try FlowchainProcess(
                ["node", "--data-dir", mount + "/data", "--port", "0", "--demo", "--demo-rate", "50", "--block-interval", "100",
                 "--anchor-interval", "1", "--demo-ack-log", ackLog],
                outputPath: dir.file("node-\(cut).log"), environment: environment)
            let ready = try await node.waitForOutput("node ready")
            #expect(ready, "cut \(cut): the node did not start on what the last cut left:\n\(node.output.suffix(2000))")
            if !ready {
                node.signal(SIGKILL); _ = try await node.wait(); try await fs.cut()
                results.append((0, ["node did not start"]))
                return results
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 400...1500, using: &rng)))
            node.signal(SIGKILL)          // the power goes: the process stops…
            _ = try await node.wait()
            try await fs.cut()            // …and nothing it had not fsynced reaches the disk
            let acked = acknowledged(ackLog)
            let store: LedgerStore
            do {
                // Opened as the node opens it: what the acknowledgement journal holds beyond the
                // ledger file is applied again (durable means there when the node comes back).
                store = try LedgerStore(path: disk + "/data/ledger.sqlite", owner: nil, tailCheck: 0)
            } catch StoreError.notInitialised {
                // Not even the schema reached the disk: everything acknowledged is lost.
                results.append((acked.count, acked.sorted()))
                continue
            }
            let lost = try acked.filter { try store.reading(id: Digest32(hex: $0)!) == nil }.sorted()
            try store.close()
            results.append((acked.count, lost))
        }
        // Power back on, a clean run: the chain that survived verifies, every reading sealed.
        let fs = try await PowerCutMount(disk: disk, mount: mount, log: dir.file("fs.log"))
        let node = try FlowchainProcess(["node", "--data-dir", mount + "/data", "--port", "0"], outputPath: dir.file("node-final.log"), environment: environment)
        // Listening comes once the services run, so SIGTERM is handled from then on.
        #expect(try await node.waitForPort() != nil, "\(node.output.suffix(2000))")
        node.signal(SIGTERM)
        #expect(try await node.wait() == 0, "\(node.output.suffix(2000))")
        try await fs.shutdown()
        return results
    }

    @Test(.timeLimit(.minutes(10)))
    func everyAcknowledgedReadingSurvivesTwelvePowerCuts() async throws {
        let dir = TemporaryDirectory("powercut")
        let results = try await Self.cycles(12, environment: [:], dir: dir, seed: 20_261_130)
        #expect(results.count == 12)
        print("power cuts: acknowledged so far after each cut \(results.map(\.acked)), lost \(results.map(\.lost.count))")
        for (i, r) in results.enumerated() {
            #expect(r.lost.isEmpty, "cut \(i): \(r.lost.count) of \(r.acked) acknowledged readings lost, e.g. \(r.lost.prefix(3))")
        }
        #expect((results.last?.acked ?? 0) > 200, "the demo acknowledged readings across the cuts: \(results.last?.acked ?? 0)")
        let store = try LedgerStore(path: dir.file("disk") + "/data/ledger.sqlite", owner: nil, readOnly: true, tailCheck: 0)
        try store.verifyAll()
        #expect(try store.counts().pending == 0)
        let check = try await runFlowchain(["check", "--data-dir", dir.file("disk") + "/data"])
        #expect(check.status == 0, "\(check.output)")
    }

    /// The same cuts with fsync switched off must lose acknowledged readings: the test can fail.
    @Test(.timeLimit(.minutes(5)))
    func withoutFsyncTheSameCutsLoseAcknowledgedReadings() async throws {
        let dir = TemporaryDirectory("powercut-off")
        let results = try await Self.cycles(3, environment: ["FLOWCHAIN_UNSAFE_SYNCHRONOUS_OFF": "1"], dir: dir, seed: 7)
        let lost = results.reduce(0) { $0 + $1.lost.count }
        print("power-loss negative control (synchronous=OFF): lost after each cut \(results.map { "\($0.lost.count) of \($0.acked)" })")
        #expect(lost > 0, "with synchronous=OFF a power cut must lose acknowledged readings; it lost none of \(results.map(\.acked))")
    }
}
