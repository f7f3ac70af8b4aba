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

    /// A node whose anchor chain holds `count` blocks: how long it takes to start and how much
    /// memory it holds, against a node with an empty chain started in the same run.
    public static func longChain(count: Int = 1_000_000, progress: (String) -> Void) async throws -> BenchReport {
        var report = BenchReport(scenario: "pos-long-chain")
        let dir = try LedgerBench.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }

        progress("reference: starting a node with an empty anchor chain")
        let empty = try await startTimed(dataDir: dir + "/empty")
        try await Task.sleep(for: .seconds(2))
        let emptyRSS = empty.node.rssMB()
        empty.node.stop()

        let data = dir + "/long"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let key = try KeyFile.create(at: data + "/node.key")
        let genesis = Genesis(chainID: "bench-long", time: Int64(Date().timeIntervalSince1970) - Int64(count) * 2 - 100, anchorInterval: 1,
                              accounts: [.init(key: key.publicKey, stake: 1_000_000)])
        try genesis.write(to: data + "/genesis.json")
        let store = try LedgerStore(path: data + "/ledger.sqlite", owner: key.publicKey)
        let chain = AnchorChain(genesis: genesis)
        progress("minting and storing \(count) anchor blocks (one staker, 1 s interval)")
        var t = genesis.time
        var batch: [(hash: Digest32, height: UInt64, encoded: [UInt8])] = []
        let started = ContinuousClock.now
        var lastReport = started
        while chain.tip.height < UInt64(count) {
            t += 1
            guard let block = chain.mint(key: key, at: t) else { continue }
            try chain.accept(block, now: t)
            batch.append((block.hash, block.height, block.encoded))
            if batch.count == 20_000 || chain.tip.height == UInt64(count) {
                try store.saveAnchorBlocks(batch)
                batch = []
                let finals = chain.finalized()
                if !finals.isEmpty {
                    try store.saveFinalAnchors(finals.map { LedgerStore.FinalAnchor(height: $0.height, hash: $0.hash, commits: []) },
                                               checkpoint: AnchorCheckpoint.encode(chain.base))
                }
            }
            if ContinuousClock.now - lastReport > .seconds(10) {
                lastReport = ContinuousClock.now
                progress("  \(chain.tip.height) of \(count) blocks (\(Int(Double(chain.tip.height) / (ContinuousClock.now - started).seconds)) /s)")
            }
        }
        try store.close()
        let size = ((try? FileManager.default.attributesOfItem(atPath: data + "/ledger.sqlite"))?[.size] as? Int) ?? 0
        report.add("anchor_blocks", Double(count), "")
        report.add("ledger_file_MB", Double(size) / 1_048_576, "MB")

        progress("starting a node on the \(count)-block chain")
        let long = try await startTimed(dataDir: data)
        try await Task.sleep(for: .seconds(2))
        let longRSS = long.node.rssMB()
        let log = (try? String(contentsOfFile: long.node.log, encoding: .utf8)) ?? ""
        long.node.stop()
        report.add("start_s_empty_chain", empty.seconds, "s")
        report.add("start_s_long_chain", long.seconds, "s")
        report.add("start_long_vs_empty", long.seconds / empty.seconds, "ratio")
        report.add("rss_MB_empty_chain", emptyRSS, "MB")
        report.add("rss_MB_long_chain", longRSS, "MB")
        report.add("rss_long_vs_empty", longRSS / emptyRSS, "ratio")
        let height = log.range(of: #"at height (\d+)"#, options: .regularExpression).map { String(log[$0].split(separator: " ").last ?? "") } ?? "?"
        report.note("the node came up with its anchor chain at height \(height); it replays only the blocks above its checkpoint")
        return report
    }

    static func startTimed(dataDir: String) async throws -> (node: NodeProcess, seconds: Double) {
        let t0 = ContinuousClock.now
        let node = try await NodeProcess.start(dataDir: dataDir, logLevel: "info", timeout: .seconds(600))
        return (node, (ContinuousClock.now - t0).seconds)
    }
}
