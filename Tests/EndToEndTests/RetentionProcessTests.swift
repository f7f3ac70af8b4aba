import FlowchainCrypto
import FlowchainClient
import FlowchainTesting
import FlowchainWire
import Ledger
import Foundation
import Testing

/// Retention in a real node process: a node started with --retain-size prunes its ledger to the
/// limit, the file shrinks, `flowchain check` still verifies the whole chain and an archive taken
/// before, a pruned reading is answered as pruned and a kept reading's proof verifies offline.
@Suite("Retention in a running node")
struct RetentionProcessTests {
    @Test func aNodeWithASizeLimitPrunesTheFileToItAndEverythingKeptStillVerifies() async throws {
        // Small blocks: the newest 32, never pruned, stay far under the limit however slow the machine.
        let first = try await RunningNode(["--demo", "--demo-rate", "150", "--block-interval", "50", "--max-block-readings", "20", "--no-mint"], label: "retention")
        let ledger = first.dataDir + "/ledger.sqlite"
        func bytes(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }
        // Bounded: until the node holds 8,000 readings (about 3 MB), or 60 s; stopping checkpoints the WAL.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let held = try await RPCConnection.with(first.url) { rpc in try await rpc.call("info")["readings"]?.int64Value ?? 0 }
            if held >= 8000 { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(try await first.stop() == 0)
        let before = bytes(ledger)
        try #require(before > 2_000_000, "the demo filled \(before) bytes")
        // Half the file: well above what pruning keeps (headers, ids, the newest 32 blocks).
        let limit = before / 2

        // An archive of the oldest 40 blocks, taken before pruning.
        let export = try await runFlowchain(["export", "--data-dir", first.dataDir, "--below-block", "40"])
        #expect(export.status == 0, "\(export.output.suffix(500))")
        let archiveLines = export.output.split(separator: "\n").filter { $0.hasPrefix("{\"block\"") }
        try #require(!archiveLines.isEmpty)
        let archive = first.dir.file("archive.jsonl")
        try (archiveLines.joined(separator: "\n") + "\n").write(toFile: archive, atomically: true, encoding: .utf8)
        let oldest = try #require(try StrictJSON.parse(Array(archiveLines[0].utf8))["id"]?.stringValue)

        // The same data directory with that limit (in bytes): pruned on its first pass (5 s after start).
        let process = try FlowchainProcess(["node", "--data-dir", first.dataDir, "--port", "0", "--no-mint", "--retain-size", "\(limit)"],
                                           outputPath: first.dir.file("node2.log"))
        let port = try #require(try await process.waitForPort(), "\(process.output)")
        let node = RunningNode(adopting: process, port: port, dir: first.dir)
        let until = ContinuousClock.now + .seconds(60)
        while !process.output.contains("retention: pruned"), ContinuousClock.now < until { try await Task.sleep(for: .milliseconds(200)) }
        #expect(process.output.contains("retention: pruned the payloads of"), "\(process.output.suffix(2000))")

        let (pruned, proofRefusal, keptProof) = try await RPCConnection.with(node.url) { rpc -> (JSONValue, String, String) in
            let pruned = try await rpc.call("reading", ["id": .string(oldest)])
            var refusal = ""
            do { _ = try await rpc.call("proof", ["id": .string(oldest)]) } catch let e as RPCConnection.RemoteError { refusal = "\(e.kind ?? "") \(e.message)" }
            let newest = try await rpc.call("readings", ["device": "demo-1", "limit": 1000])
            let sealed = newest["readings"]?.arrayValue?.last { $0["block"] != nil && $0["block"] != .null }
            let id = sealed?["id"]?.stringValue ?? ""
            return (pruned, refusal, try await rpc.call("proof", ["id": .string(id)]).jsonText)
        }
        #expect(pruned["pruned"]?.boolValue == true && pruned["block"]?.int64Value == 0 && pruned["leaf"]?.int64Value == 0, "\(pruned.jsonText)")
        #expect(proofRefusal.hasPrefix("pruned reading \(oldest) was pruned by retention"), "\(proofRefusal)")
        // /metrics says how far pruning went and how large the file is.
        let metrics = try LoopbackHTTP.get(port: node.port, path: "/metrics").text.split(separator: "\n")
        func gauge(_ name: String) -> Double? { metrics.first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") } }
        #expect((gauge("flowchain_pruned_below_height") ?? 0) > 0, "\(metrics.joined(separator: "\n").prefix(600))")
        #expect(gauge("flowchain_ledger_bytes").map { $0 > 0 && $0 <= Double(limit) } == true)
        #expect(try await node.stop() == 0)

        let after = bytes(ledger)
        #expect(after <= limit && after >= limit * 9 / 10, "the file shrank from \(before) to \(after) bytes for a limit of \(limit)\n\(process.output.suffix(1500))")
        let proofFile = first.dir.file("proof.json")
        try keptProof.write(toFile: proofFile, atomically: true, encoding: .utf8)
        let verify = try await runFlowchain(["verify", "--proof", proofFile])
        #expect(verify.status == 0 && verify.stdout.hasPrefix("valid:"), "\(verify.output)")
        let prunedVerify = try await runFlowchain(["verify", "--data-dir", first.dataDir, oldest])
        #expect(prunedVerify.status == 1 && prunedVerify.output.contains("was pruned by retention"), "\(prunedVerify.output)")
        let check = try await runFlowchain(["check", "--data-dir", first.dataDir, "--archive", archive])
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.contains("ok: the archive's \(archiveLines.count) reading(s) in 40 block(s) verify against the ledger's block headers"), "\(check.output)")
        #expect(check.output.contains("are pruned: their headers verify"), "\(check.output)")
        // A tampered archive does not verify.
        let tampered = try String(contentsOfFile: archive, encoding: .utf8).replacingOccurrences(of: "\"leaf\":1,", with: "\"leaf\":2,")
        try tampered.write(toFile: archive, atomically: true, encoding: .utf8)
        let bad = try await runFlowchain(["check", "--data-dir", first.dataDir, "--archive", archive])
        #expect(bad.status == 1 && bad.output.contains("not each once"), "\(bad.output)")
    }

    /// `flowchain prune` by hand, on a stopped node's data directory: the file ends under the
    /// limit, the chain still verifies, and a second run has nothing to do.
    @Test func pruneByHandFitsTheFileUnderItsLimit() async throws {
        let dir = TemporaryDirectory("prune-cli")
        let data = dir.file("data")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let key = Fixtures.key(71)
        let store = try LedgerStore(path: data + "/ledger.sqlite", owner: key.publicKey)
        let pad = String(repeating: "p", count: 450)
        for b in 0..<300 {
            let readings = try (0..<20).map { i in
                try Fixtures.reading(key, device: "meter-\(i % 4)", seq: UInt64(b * 5 + i / 4 + 1), time: Int64(b * 1000 + i), payload: "{\"pad\":\"\(pad)\"}")
            }
            _ = try store.commitSync(readings)
            _ = try store.cutBlockSync(signedBy: key, now: Int64(b * 1000 + 20), maxReadings: 100)
        }
        try store.close()
        let size = { (try? FileManager.default.attributesOfItem(atPath: data + "/ledger.sqlite")[.size] as? Int) ?? 0 }
        let before = size()
        try #require(before > 3_000_000, "\(before) bytes")
        let pruned = try await runFlowchain(["prune", "--data-dir", data, "--max-size", "2MB"])
        #expect(pruned.status == 0 && pruned.output.contains("pruned ") && pruned.output.contains("blocks below"), "\(pruned.output)")
        let after = size()
        #expect(after <= 2_000_000 && after >= 1_800_000, "\(before) → \(after) bytes for a limit of 2 MB\n\(pruned.output)")
        let check = try await runFlowchain(["check", "--data-dir", data])
        #expect(check.status == 0 && check.output.contains("are pruned: their headers verify"), "\(check.output)")
        let again = try await runFlowchain(["prune", "--data-dir", data, "--max-size", "2MB"])
        #expect(again.status == 0 && again.stdout.hasPrefix("pruned 0 reading(s)"), "\(again.output)")
    }
}
