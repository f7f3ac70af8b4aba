import ArgumentParser
import FlowchainCrypto
import Foundation
import Ledger
import Network
import Consensus
import FlowchainNode

/// `--node URL` and `--token` for the commands that talk to a running node over JSON-RPC.
struct NodeOption: ParsableArguments {
    @Option(help: ArgumentHelp("A running node: ws://host:port or http://host:port.", valueName: "url"))
    var node: String?

    @Option(help: ArgumentHelp("The node's token, when it requires one (env FLOWCHAIN_TOKEN).", valueName: "token"))
    var token: String?

    var resolvedToken: String? { token ?? ProcessInfo.processInfo.environment["FLOWCHAIN_TOKEN"] }
}

/// Turns JSON from the node back into text for `--json` output.
func jsonText(_ value: Any) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed]) else { return "null" }
    return String(decoding: data, as: UTF8.self)
}

struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send readings to a running node.",
        discussion: """
            Each reading is a JSON object, the payload; the node signs it for the device and gives \
            it the device's next seq. With no payload argument, reads one JSON object per line \
            from standard input. Prints one line per reading: `stored <id> seq <n>` or the reason \
            it was refused. Exit status 1 when any reading was refused.

              flowchain send --node ws://127.0.0.1:8000 --device kitchen '{"temperature":21.5}'
              sensor-reader | flowchain send --node ws://127.0.0.1:8000 --device kitchen
            """
    )

    @OptionGroup var remote: NodeOption
    @Option(help: "The device id.") var device: String
    @Argument(help: "The payload, a JSON object. Omit to read lines from standard input.") var payload: String?

    func validate() throws {
        guard remote.node != nil else { throw ValidationError("--node is required: the node to send to") }
        if let why = DeviceID.problem(with: device) { throw ValidationError("--device: \(why)") }
    }

    func run() async throws {
        var lines: [String] = []
        if let payload { lines = [payload] } else {
            while let line = readLine() { if !line.trimmingCharacters(in: .whitespaces).isEmpty { lines.append(line) } }
        }
        var items: [[String: Any]] = []
        for (i, line) in lines.enumerated() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)), object is [String: Any] else {
                throw failure("line \(i + 1) is not a JSON object: \(line.prefix(80))")
            }
            items.append(["device": device, "payload": object])
        }
        let device = self.device
        let batches = stride(from: 0, to: items.count, by: 500).map { UncheckedBox(Array(items[$0..<min($0 + 500, items.count)])) }
        let refused: Int
        do {
            refused = try await RPCConnection.with(remote.node!, token: remote.resolvedToken) { rpc in
                var refused = 0
                for batch in batches {
                    let results = try await rpc.call("submit", ["readings": batch.value]) as? [[String: Any]] ?? []
                    for r in results {
                        if let ack = r["ack"] as? [String: Any] {
                            print("stored \(ack["id"] as? String ?? "?") seq \(ack["seq"].map { "\($0)" } ?? "?") (device \(device))")
                        } else {
                            refused += 1
                            print("refused: \((r["error"] as? [String: Any])?["message"] as? String ?? "unknown error")")
                        }
                    }
                }
                return refused
            }
        } catch {
            throw failure("\(error)")
        }
        if refused > 0 { throw ExitCode(1) }
    }
}

struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Follow a running node's readings as they are committed.",
        discussion: """
            Prints each reading as it is stored (one JSON object per line with --json). Every \
            reading carries a cursor; pass the last one to --cursor to resume without gaps or \
            repeats after a disconnect.
            """
    )

    @OptionGroup var remote: NodeOption
    @Option(help: "Only this device.") var device: String?
    @Option(help: "Resume after this cursor (replays what was missed first).") var cursor: Int64?
    @Option(help: "Exit after this many readings.") var count: Int?
    @Flag(help: "One JSON object per line.") var json = false

    func validate() throws {
        guard remote.node != nil else { throw ValidationError("--node is required: the node to follow") }
        if let device, let why = DeviceID.problem(with: device) { throw ValidationError("--device: \(why)") }
    }

    func run() async throws {
        var params: [String: Any] = ["topic": "readings"]
        if let device { params["device"] = device }
        if let cursor { params["cursor"] = cursor }
        let json = self.json, count = self.count
        let box = UncheckedBox(params)
        do {
            try await RPCConnection.with(remote.node!, token: remote.resolvedToken) { rpc in
                _ = try await rpc.call("subscribe", box.value)
                var seen = 0
                for await note in rpc.notifications {
                    guard let p = note.value["params"] as? [String: Any] else { continue }
                    if let dropped = p["dropped"] { FileHandle.standardError.write(Data("tail: fell behind; \(dropped) live readings re-read from the store\n".utf8)); continue }
                    guard let r = p["reading"] as? [String: Any] else { continue }
                    let line: String
                    if json {
                        line = jsonText(r)
                    } else {
                        let time = (r["time"] as? NSNumber).map { isoTime($0.int64Value) } ?? "?"
                        line = "\(time)  \(r["device"] as? String ?? "?")  seq \(r["seq"] ?? "?")  \(jsonText(r["payload"] ?? NSNull()))  cursor \(r["cursor"] ?? "?")"
                    }
                    // Unbuffered, so a pipe sees each reading as it arrives.
                    FileHandle.standardOutput.write(Data((line + "\n").utf8))
                    seen += 1
                    if let count, seen >= count { return }
                }
            }
        } catch {
            throw failure("\(error)")
        }
    }
}

struct ProofCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proof",
        abstract: "Print the portable proof of a reading (JSON), for `flowchain verify --proof` anywhere.",
        discussion: """
            From a data directory, or from a running node with --node. With --anchor-chain the \
            proof also carries every anchor block from height 1 to the one committing the reading, \
            so that `flowchain verify --proof FILE --genesis GENESIS` can check the anchor was \
            minted with stake (the proof grows with the anchor chain: ~0.5 KB per anchor block).
            """
    )

    @OptionGroup var data: DataDirOption
    @OptionGroup var remote: NodeOption
    @Flag(help: "Carry the anchor blocks from height 1 to the committing one.") var anchorChain = false
    @Argument(help: "The reading id (64 hex digits).") var readingID: String

    func run() async throws {
        guard let id = Digest32(hex: readingID) else { throw failure("'\(readingID)' is not a reading id (64 hex digits)") }
        if let node = remote.node {
            do {
                let text = try await RPCConnection.with(node, token: remote.resolvedToken) { rpc in
                    jsonText(try await rpc.call("proof", ["id": id.hex, "anchorChain": anchorChain]))
                }
                print(text)
            } catch {
                throw failure("\(error)")
            }
            return
        }
        let store = try openReadOnly(data)
        guard let proof = try store.proof(for: id) else { throw failure("no reading with id \(id) in \(store.path)") }
        var portable = proof.portable
        do {
            if let node = try anchorObserver(data, store: store), let anchored = try await node.anchored(proof) {
                portable = anchored.portable(chain: anchorChain ? try await node.activeBlocks(through: anchored.anchor.height) : nil)
            }
        } catch {
            throw failure("\(error)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(portable), as: UTF8.self))
    }
}
