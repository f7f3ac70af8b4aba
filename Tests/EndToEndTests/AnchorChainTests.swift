import FlowchainCrypto
import FlowchainTesting
import Consensus
import Foundation
import Ledger
import Testing

/// The anchor chain inside a real node: minting, proofs to the anchor, replay on restart.
@Suite("Anchor chain in a running node", .serialized)
struct AnchorChainTests {
    @Test func aNodeMintsProvesToTheAnchorAndRefusesATamperedChainOnRestart() async throws {
        let dir = TemporaryDirectory("anchor")
        let data = dir.file("data")
        let args = ["node", "--data-dir", data, "--port", "0", "--demo", "--block-interval", "300", "--anchor-interval", "1"]
        let node = try FlowchainProcess(args, outputPath: dir.file("node.log"))
        #expect(try await node.waitForOutput("anchor block 4 minted"), "\(node.output.suffix(2000))")
        node.signal(SIGTERM)
        #expect(try await node.wait() == 0)
        #expect(FileManager.default.fileExists(atPath: data + "/genesis.json"), "a single-node genesis was created")

        // A reading from early on is committed by an anchor block.
        let store = try LedgerStore(path: data + "/ledger.sqlite", owner: nil, readOnly: true)
        let first = try #require(try store.readings(device: "demo-0", limit: 1).items.first)
        try store.close()
        let verified = try await runFlowchain(["verify", "--data-dir", data, first.reading.id.hex])
        #expect(verified.status == 0 && verified.output.contains("committed by anchor block"), "\(verified.output)")
        let proof = try await runFlowchain(["proof", "--data-dir", data, first.reading.id.hex])
        #expect(proof.output.contains("\"anchor\":{"), "the portable proof carries the anchor part")
        try proof.output.write(toFile: dir.file("proof.json"), atomically: true, encoding: .utf8)
        // Offline, with nothing trusted to check the anchor against, the proof says just that.
        let offline = try await runFlowchain(["verify", "--proof", dir.file("proof.json"), "--data-dir", dir.file("elsewhere")])
        #expect(offline.status == 0 && offline.output.contains("anchor not verified") && !offline.output.contains("committed by"), "\(offline.output)")
        // On the node's own machine, its data directory's anchor chain is the trusted one.
        let local = try await runFlowchain(["verify", "--proof", dir.file("proof.json"), "--data-dir", data])
        #expect(local.status == 0 && local.output.contains("verified against this data directory's anchor chain"), "\(local.output)")
        #expect(offline.output.contains("owner not pinned"))
        // With the genesis and the anchor blocks the proof carries, the anchor is verified.
        let chained = try await runFlowchain(["proof", "--anchor-chain", "--data-dir", data, first.reading.id.hex])
        try chained.output.write(toFile: dir.file("chained.json"), atomically: true, encoding: .utf8)
        let trusted = try await runFlowchain(["verify", "--proof", dir.file("chained.json"), "--genesis", data + "/genesis.json", "--owner", String(try #require(offline.output.range(of: #"signed by [0-9a-f]{64}"#, options: .regularExpression).map { offline.output[$0].suffix(64) }))])
        #expect(trusted.status == 0 && trusted.output.contains("committed by anchor block") && trusted.output.contains("verified against the genesis"), "\(trusted.output)")
        #expect(!trusted.output.contains("not pinned"))

        // An anchor block forged by a key without stake, committing the reading's segment: refused.
        let portable = try JSONDecoder().decode(ReadingProof.Portable.self, from: Data(chained.output.utf8))
        let genesis = try Genesis.load(data + "/genesis.json")
        let segment = try BlockHeader(encoded: Hex.decode(try #require(portable.block))!)
        let forger = try PrivateKey()
        let root = AnchorChain(genesis: genesis)
        let forged = try AnchorBlock(chain: genesis.hash, height: 1, prev: genesis.hash, time: genesis.time + 1, target: genesis.initialTarget,
                                     stakeModifier: AnchorChain.childModifier(of: root.tip), heads: [segment], records: [], signedBy: forger)
        var fake = portable
        fake.anchor = .init(block: Hex.encode(forged.encoded), segments: [], chain: [Hex.encode(forged.encoded)])
        let encoder = JSONEncoder()
        try encoder.encode(fake).write(to: URL(fileURLWithPath: dir.file("forged.json")))
        let refusedProof = try await runFlowchain(["verify", "--proof", dir.file("forged.json"), "--genesis", data + "/genesis.json"])
        #expect(refusedProof.status == 1 && refusedProof.output.contains("unknown staker \(forger.publicKey.hex)"), "\(refusedProof.output)")
        let unchecked = try await runFlowchain(["verify", "--proof", dir.file("forged.json"), "--data-dir", dir.file("elsewhere")])
        #expect(unchecked.status == 0 && unchecked.output.contains("not verified"), "without a trusted genesis nothing is claimed: \(unchecked.output)")

        // Restart: the stored chain is replayed and re-validated, and the node carries on from it.
        let again = try FlowchainProcess(args, outputPath: dir.file("node2.log"))
        // "listening on" comes once the services run, so SIGTERM is handled from then on.
        #expect(try await again.waitForPort() != nil)
        let height = again.output.range(of: #"at height (\d+)"#, options: .regularExpression).map { again.output[$0].split(separator: " ").last.map(String.init) ?? "" }
        #expect(Int(height ?? "0") ?? 0 >= 4, "the anchor chain came back at height \(height ?? "?")")
        again.signal(SIGTERM)
        #expect(try await again.wait() == 0)

        // Tamper with one stored anchor block: the node refuses to start and names its height.
        let path = data + "/ledger.sqlite"
        let db = try LedgerStore(path: path, owner: nil, readOnly: true)
        let (tamperedHeight, encoded) = try #require(try db.anchorBlocks().first { $0.height == 2 })
        try db.close()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let signature = Array(encoded.suffix(64))
        let at = try #require(bytes.firstRange(of: signature)?.lowerBound)
        bytes[at + 10] ^= 0x04
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let refused = try await runFlowchain(["node", "--data-dir", data, "--port", "0"])
        #expect(refused.status == 1)
        #expect(refused.output.contains("anchor block at height \(tamperedHeight)") && refused.output.contains("refusing to run"), "\(refused.output)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(bytes), "refusing, the node wrote nothing")
        // `flowchain check` finds it too, by its height.
        let check = try await runFlowchain(["check", "--data-dir", data])
        #expect(check.status == 1 && check.output.contains("broken: anchor chain: anchor block at height \(tamperedHeight)"), "\(check.output)")
    }
}
