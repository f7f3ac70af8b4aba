import ArgumentParser
import FlowchainClient
import FlowchainWire
import Ledger

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
            while let line = readLine() { if !line.allSatisfy(\.isWhitespace) { lines.append(line) } }
        }
        var items: [JSONValue] = []
        for (i, line) in lines.enumerated() {
            let object: JSONValue
            do { object = try StrictJSON.parse(Array(line.utf8)) } catch { throw failure("line \(i + 1) is not JSON (\(error)): \(line.prefix(80))") }
            guard case .object = object else { throw failure("line \(i + 1) is not a JSON object: \(line.prefix(80))") }
            items.append(["device": .string(device), "payload": object])
        }
        let device = self.device
        let batches = stride(from: 0, to: items.count, by: 500).map { Array(items[$0..<min($0 + 500, items.count)]) }
        let refused: Int
        do {
            refused = try await RPCConnection.with(remote.node!, token: remote.resolvedToken) { rpc in
                var refused = 0
                for batch in batches {
                    let results = try await rpc.call("submit", ["readings": .array(batch)]).arrayValue ?? []
                    for r in results {
                        if let ack = r["ack"] {
                            print("stored \(ack["id"]?.stringValue ?? "?") seq \(ack["seq"]?.int64Value.map(String.init) ?? "?") (device \(device))")
                        } else {
                            refused += 1
                            print("refused: \(r["error"]?["message"]?.stringValue ?? "unknown error")")
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
