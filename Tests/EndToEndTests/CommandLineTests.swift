import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
import Testing

@Suite("The flowchain command line", .serialized)
struct CommandLineTests {
    @Test func helpExplainsEveryCommand() async throws {
        let top = try await runFlowchain(["--help"])
        #expect(top.status == 0)
        for command in ["node", "keygen", "readings", "blocks", "verify", "check", "bench"] {
            #expect(top.output.contains(command), "--help does not mention \(command)")
            let help = try await runFlowchain([command, "--help"])
            #expect(help.status == 0 && help.output.contains("USAGE"), "\(command) --help:\n\(help.output)")
        }
    }

    @Test func simChordPrintsTheExperimentAndReplaysItsSeedInAnotherProcess() async throws {
        // Two processes, each with its own hash seed: identical tables mean nothing in the
        // simulator depends on dictionary order or on the clock.
        let args = ["sim", "chord", "fail", "--nodes", "64", "--fail", "0.5", "--lookups", "300", "--rounds", "5",
                    "--loss", "0.02", "--latency", "exp:5:20", "--seed", "3"]
        let a = try await runFlowchain(args), b = try await runFlowchain(args)
        #expect(a.status == 0, "\(a.output)")
        #expect(a.output.contains("SIMULTANEOUS FAILURES (N = 64, successor lists of 12)"), "\(a.output)")
        #expect(a.output.contains("sim: failures: p = 0.5"))
        let table = { (s: String) in s.split(separator: "\n").filter { !$0.hasPrefix("sim:") } }
        #expect(table(a.output) == table(b.output))
        #expect(table(a.output).contains { $0.hasPrefix("  0.50       32") }, "\(a.output)")
    }

    @Test func simChordRefusesBadArgumentsByName() async throws {
        for (args, message) in [(["--fail", "1.5"], "--fail: '1.5' is not a fraction in [0, 1)"),
                                (["--latency", "5-x"], "--latency '5-x' is not MS, LO-HI or exp:MIN:MEAN"),
                                (["--nodes", "1"], "--nodes must be 2…100000"),
                                (["--successors", "65"], "--successors must be 1…64")] {
            let r = try await runFlowchain(["sim", "chord", "path"] + args)
            #expect(r.status != 0)
            #expect(r.output.contains(message), "\(args): \(r.output)")
        }
    }

    @Test func keygenCreatesOnceAndRefusesToOverwrite() async throws {
        let dir = TemporaryDirectory("cli")
        let first = try await runFlowchain(["keygen", "--data-dir", dir.path])
        #expect(first.status == 0 && first.output.contains("public key:"))
        let key = try KeyFile.load(from: dir.file("node.key"))
        #expect(first.output.contains(key.publicKey.hex))
        let second = try await runFlowchain(["keygen", "--data-dir", dir.path])
        #expect(second.status == 1)
        #expect(second.output.contains("refusing to overwrite"))
        #expect(try KeyFile.load(from: dir.file("node.key")).publicKey == key.publicKey)
    }

    @Test func aNodeRunsReadsVerifiesAndStopsCleanly() async throws {
        let dir = TemporaryDirectory("cli")
        let data = dir.file("data")
        let node = try FlowchainProcess(["node", "--data-dir", data, "--port", "0", "--demo", "--demo-rate", "20", "--block-interval", "200"],
                                        outputPath: dir.file("node.log"))
        #expect(try await node.waitForOutput("block 2 sealed"), "\(node.output)")

        // Read commands work while the node runs.
        let blocks = try await runFlowchain(["blocks", "--data-dir", data, "--json"])
        #expect(blocks.status == 0, "\(blocks.output)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(blocks.output.utf8)) as? [String: Any])
        #expect(((json["blocks"] as? [[String: Any]])?.count ?? 0) >= 3)

        let readings = try await runFlowchain(["readings", "--data-dir", data, "--device", "demo-2", "--from", "-1h", "--json"])
        #expect(readings.status == 0, "\(readings.output)")
        let list = try #require((try JSONSerialization.jsonObject(with: Data(readings.output.utf8)) as? [String: Any])?["readings"] as? [[String: Any]])
        let sealed = try #require(list.first { !($0["block"] is NSNull) }, "no sealed reading of demo-2")
        #expect((sealed["payload"] as? [String: Any])?["temperature"] != nil)
        let id = try #require(sealed["id"] as? String)

        let valid = try await runFlowchain(["verify", "--data-dir", data, id])
        #expect(valid.status == 0 && valid.stdout.hasPrefix("valid:"), "\(valid.output)")
        let short = try await runFlowchain(["verify", "--data-dir", data, String(id.prefix(12))])
        #expect(short.status == 0, "\(short.output)")
        let unknown = try await runFlowchain(["verify", "--data-dir", data, String(repeating: "ab", count: 32)])
        #expect(unknown.status == 1 && unknown.stdout.hasPrefix("invalid: no reading"), "\(unknown.output)")
        let garbage = try await runFlowchain(["verify", "--data-dir", data, "xyz"])
        #expect(garbage.status == 1 && garbage.stdout.hasPrefix("invalid:"))
        let badTime = try await runFlowchain(["readings", "--data-dir", data, "--device", "demo-2", "--from", "yesterday"])
        #expect(badTime.status != 0 && badTime.output.contains("is not a time"))

        node.signal(SIGTERM)
        #expect(try await node.wait() == 0)
        #expect(node.output.contains("node stopped cleanly"))
        let check = try await runFlowchain(["check", "--data-dir", data])
        // Progress ("checked N/M blocks") goes to stderr; the verdict is stdout's first line.
        #expect(check.status == 0 && check.stdout.hasPrefix("ok:"), "\(check.output)")
        // The anchor chain the node minted replays from the genesis and its heads are this ledger's.
        #expect(check.output.contains("ok: anchor chain: ") && check.output.contains("verify from the genesis"), "\(check.output)")
    }

    @Test func aNodeRefusesADamagedLedgerWithoutTouchingIt() async throws {
        let dir = TemporaryDirectory("cli")
        let data = dir.file("data")
        // No anchor blocks: one committing the tip would hold a copy of its signature, and the
        // damage below must land in the segment block itself.
        let node = try FlowchainProcess(["node", "--data-dir", data, "--port", "0", "--demo", "--block-interval", "100", "--no-mint"], outputPath: dir.file("node.log"))
        #expect(try await node.waitForOutput("block 3 sealed"))
        node.signal(SIGINT)
        #expect(try await node.wait() == 0)

        let store = try LedgerStore(path: data + "/ledger.sqlite", owner: nil, readOnly: true)
        let header = try #require(try store.tip())
        try store.close()
        let path = data + "/ledger.sqlite"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let at = try #require(bytes.firstRange(of: header.signature)?.lowerBound)
        bytes[at + 1] ^= 0x80
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let refused = try await runFlowchain(["node", "--data-dir", data])
        #expect(refused.status == 1)
        #expect(refused.output.contains("block \(header.height)") && refused.output.contains("refusing to run"), "\(refused.output)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(bytes))
        let check = try await runFlowchain(["check", "--data-dir", data])
        #expect(check.status == 1 && check.stdout.hasPrefix("broken:"), "\(check.output)")
    }

    @Test func badOptionsAreExplained() async throws {
        let result = try await runFlowchain(["node", "--block-interval", "1"])
        #expect(result.status != 0 && result.output.contains("--block-interval must be at least 10 ms"))
        let missing = try await runFlowchain(["blocks", "--data-dir", "/nonexistent/flowchain"])
        #expect(missing.status == 1 && missing.output.contains("no ledger at"))
    }
}
