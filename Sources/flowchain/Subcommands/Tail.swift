import ArgumentParser
import FlowchainClient
import FlowchainWire
import Foundation
import Ledger

struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Follow a running node's readings as they are committed.",
        discussion: """
            Prints each reading as it is stored (one JSON object per line with --json, as RPC \
            `readings` gives it). Every reading carries a cursor; pass the last one to --cursor \
            to resume without gaps or repeats after a disconnect.
            """
    )

    @OptionGroup var remote: NodeOption
    @Option(help: "Only this device.") var device: String?
    @Option(help: "Resume after this cursor (replays what was missed first).") var cursor: Int64?
    @Option(help: "Exit after this many readings.") var count: Int?
    @OptionGroup var output: JSONOption

    func validate() throws {
        guard remote.node != nil else { throw ValidationError("--node is required: the node to follow") }
        if let device, let why = DeviceID.problem(with: device) { throw ValidationError("--device: \(why)") }
        if let cursor, cursor < 0 { throw ValidationError("--cursor must not be negative") }
    }

    func run() async throws {
        var params: [String: JSONValue] = ["topic": "readings"]
        if let device { params["device"] = .string(device) }
        if let cursor { params["cursor"] = .int(cursor) }
        let (json, count) = (output.json, self.count)
        do {
            try await RPCConnection.with(remote.node!, token: remote.resolvedToken) { [params] rpc in
                _ = try await rpc.call("subscribe", params)
                var seen = 0
                for await note in rpc.notifications {
                    guard let p = note["params"] else { continue }
                    if let dropped = p["dropped"] {
                        FileHandle.standardError.write(Data("tail: fell behind; \(dropped.jsonText) live readings re-read from the store\n".utf8))
                        continue
                    }
                    guard let wire = p["reading"] else { continue }
                    let r = try ReadingRecord(wire: wire)
                    emit(json ? jsonLine { ReadingWire.write(r, into: &$0) } : "\(ReadingTable.row(r, device: true))  cursor \(r.cursor)")
                    seen += 1
                    if let count, seen >= count { return }
                }
            }
        } catch {
            throw failure("\(error)")
        }
    }
}
