import Consensus
import FlowchainCrypto
import Foundation
import Ledger

/// Proof-of-Stake costs: kernel checks, validating a long anchor chain, and an idle node's CPU.
public enum PoSBench {
    public static func run(blocks: Int = 10_000, idleSeconds: Int = 20, progress: (String) -> Void) async throws -> BenchReport {
        var report = BenchReport(scenario: "pos")
        let key = try PrivateKey()
        let modifier = SHA256.hash([1, 2, 3])
        let target = UInt256.max.divided(by: 1000)
        progress("kernel checks, one core")
        var t: Int64 = 0
        let (n, secs) = timed(maxIterations: 50_000_000) {
            _ = Kernel.check(modifier: modifier, key: key.publicKey, time: t, target: target, stake: 1)
            t += 1
        }
        report.add("kernel_checks_per_s_1core", Double(n) / secs, "/s")

        progress("minting \(blocks) anchor blocks (10 stakers, each block committing a signed segment head)")
        let keys = try (0..<10).map { _ in try PrivateKey() }
        let genesis = Genesis(chainID: "bench", time: 1_700_000_000, accounts: keys.enumerated().map { .init(key: $1.publicKey, stake: UInt64($0 + 1)) })
        let minting = AnchorChain(genesis: genesis)
        var now = genesis.time
        var chainBlocks: [AnchorBlock] = []
        var segment: [Int: BlockHeader] = [:]
        while chainBlocks.count < blocks {
            now += 1
            for (i, k) in keys.enumerated() {
                let prev = segment[i]
                guard let probe = minting.mint(key: k, at: now) else { continue }
                _ = probe
                let head = try BlockHeader(height: prev.map { $0.height + 1 } ?? 0, prev: prev?.hash ?? .zero, time: now * 1000,
                                           merkleRoot: SHA256.hash(Array("\(i)-\(now)".utf8)), count: 1, signedBy: k)
                guard let block = minting.mint(key: k, at: now, heads: [head]) else { continue }
                try minting.accept(block, now: now)
                segment[i] = head
                chainBlocks.append(block)
                break
            }
        }
        progress("validating \(blocks) anchor blocks from scratch")
        let fresh = AnchorChain(genesis: genesis)
        let start = ContinuousClock.now
        for b in chainBlocks { try fresh.accept(b, now: now) }
        let validation = (ContinuousClock.now - start).seconds
        report.add("validate_\(blocks)_blocks_s", validation, "s")
        report.add("validate_blocks_per_s", Double(blocks) / validation, "/s")
        report.add("ed25519_verifies_per_block", 2, "")

        progress("an idle node's CPU over \(idleSeconds) s (the minter checks the kernel every second)")
        let dir = try LedgerBench.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let node = try await NodeProcess.start(dataDir: dir + "/node")
        defer { node.stop() }
        try await Task.sleep(for: .seconds(2))
        let cpu0 = node.cpuSeconds(), wall0 = ContinuousClock.now
        try await Task.sleep(for: .seconds(idleSeconds))
        let share = (node.cpuSeconds() - cpu0) / (ContinuousClock.now - wall0).seconds
        report.add("idle_node_cpu_percent_of_one_core", share * 100, "%")
        report.note("the idle figure is the whole node process (minter, block cutter, server), so it bounds the minter's share")
        return report
    }
}

extension NodeProcess {
    /// User + system CPU seconds of the process so far, from /proc/PID/stat.
    func cpuSeconds() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return .nan }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command name: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
        guard fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) else { return .nan }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
