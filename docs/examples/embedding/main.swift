// A program that runs a Flowchain node inside itself: it submits readings through the one ingest
// entry point and hears what the ledger commits through the commit feed. Build and run it with
// `swift run embedding-example [data-dir]`.
import FlowchainNode
import Ledger
import Logging

@main
struct EmbeddingExample {
    static func main() async throws {
        var configuration = NodeConfiguration()
        configuration.dataDirectory = DataDirectory(CommandLine.arguments.dropFirst().first ?? "./embedded-data")
        configuration.server = nil                      // no port: this program is the only client
        configuration.blockInterval = .milliseconds(200)
        let node = try Node(configuration: configuration, logger: Logger(label: "embedded"))

        // What the ledger commits: every reading, then the blocks that seal them.
        let blocks = node.feed.subscribe(.blocks)
        let running = Task { try await node.run() }

        // Submit readings: the node numbers, stamps and signs them for the device.
        for i in 1...5 {
            let ack = try await node.engine.ingest(.unsigned(device: "boiler", json: "{\"celsius\":\(60 + i)}", source: .rpc))
            print("stored \(ack.id) seq \(ack.seq)")
        }

        // Wait until a block seals them, then shut down cleanly (as SIGTERM would).
        var sealed = 0
        for await event in blocks.events {
            guard case let .block(header) = event else { continue }
            print("sealed block \(header.height): \(header.count) reading(s)")
            sealed += Int(header.count)
            if sealed >= 5 { break }
        }
        await node.shutdown()
        try await running.value
        print("stopped: \(try node.store.counts().readings) readings on disk")
    }
}
