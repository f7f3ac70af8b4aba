import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
import Testing

/// Starts a real `flowchain node --demo`, SIGKILLs it at random moments, restarts it, and checks
/// that every reading it acknowledged is still stored and that the chain verifies.
@Suite("Crash safety of a real node process", .serialized)
struct CrashSafetyTests {
    static func acknowledged(_ path: String) -> Set<String> {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return Set(text.split(separator: "\n").map(String.init).filter { $0.count == 64 })
    }

    /// Opened as the next start of the node opens it: what the acknowledgement journal holds
    /// beyond the ledger file is applied first.
    static func missing(_ acked: Set<String>, in dataDir: String) throws -> [String] {
        let store = try LedgerStore(path: dataDir + "/ledger.sqlite", owner: nil, tailCheck: 0)
        defer { try? store.close() }
        return try acked.filter { try store.reading(id: Digest32(hex: $0)!) == nil }.sorted()
    }

    @Test(.timeLimit(.minutes(10)))
    func everyAcknowledgedReadingSurvivesSIGKILL() async throws {
        let dir = TemporaryDirectory("crash")
        let data = dir.file("data")
        let ackLog = dir.file("acks.txt")
        let args = ["node", "--data-dir", data, "--port", "0", "--demo", "--demo-rate", "50", "--block-interval", "100",
                    "--demo-ack-log", ackLog]
        var rng = SeededRandom(seed: UInt64(ProcessInfo.processInfo.environment["FLOWCHAIN_CRASH_SEED"] ?? "") ?? 20_261_125)
        let cycles = 24
        var killedBeforeReady = 0
        for cycle in 0..<cycles {
            let node = try FlowchainProcess(args, outputPath: dir.file("node-\(cycle).log"))
            if cycle % 6 == 5 {
                // Some kills land while the node is still opening and checking its store (the
                // first of them at once, so at least one surely does).
                try await Task.sleep(for: .milliseconds(cycle == 5 ? 0 : Int.random(in: 0...150, using: &rng)))
                if !node.output.contains("node ready") { killedBeforeReady += 1 }
            } else {
                let ready = try await node.waitForOutput("node ready")
                #expect(ready, "cycle \(cycle): the node did not come back after a SIGKILL:\n\(node.output.suffix(2000))")
                if !ready { return }
                try await Task.sleep(for: .milliseconds(Int.random(in: 20...1200, using: &rng)))
            }
            node.signal(SIGKILL)
            let status = try await node.wait()
            #expect(status == 128 + SIGKILL || status == 0, "cycle \(cycle) exited \(status)")

            let acked = Self.acknowledged(ackLog)
            let lost = try Self.missing(acked, in: data)
            #expect(lost.isEmpty, "cycle \(cycle): \(lost.count) of \(acked.count) acknowledged readings lost, e.g. \(lost.prefix(3))")
        }

        // A last, clean run: it must start on what the kills left, seal everything and exit 0.
        let node = try FlowchainProcess(args, outputPath: dir.file("node-final.log"))
        #expect(try await node.waitForOutput("sealed", timeout: .seconds(60)))
        node.signal(SIGTERM)
        #expect(try await node.wait() == 0, "SIGTERM must exit 0:\n\(node.output.suffix(2000))")
        #expect(node.output.contains("node stopped cleanly"))

        let acked = Self.acknowledged(ackLog)
        #expect(acked.count > 200, "the demo should have acknowledged readings across the cycles, got \(acked.count)")
        #expect(try Self.missing(acked, in: data).isEmpty)
        let store = try LedgerStore(path: data + "/ledger.sqlite", owner: nil, readOnly: true, tailCheck: 0)
        try store.verifyAll()
        let counts = try store.counts()
        #expect(counts.pending == 0, "a clean shutdown seals every pending reading")
        #expect(counts.readings >= acked.count)
        #expect(killedBeforeReady >= 1, "no kill landed before the node was ready")
        // And the CLI agrees.
        let check = try await runFlowchain(["check", "--data-dir", data])
        #expect(check.status == 0, "\(check.output)")
    }
}
