import ArgumentParser
import FlowchainWire
import Ledger
import FlowchainCrypto

struct BlocksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blocks",
        abstract: "List the newest segment blocks.",
        discussion: """
            From the data directory, or from a running node with --node; both print the same. \
            With --json: {"owner","blocks":[…],"readings","pending"}, each block as RPC `blocks` gives it.
            """
    )

    @OptionGroup var source: SourceOptions
    @Option(help: "How many blocks to list (1–500).") var limit = 20
    @OptionGroup var output: JSONOption

    func validate() throws {
        guard (1...500).contains(limit) else { throw ValidationError("--limit must be 1…500") }
    }

    func run() async throws {
        let limit = self.limit
        let (blocks, summary) = try await source.withSource { ledger in
            (try await ledger.blocks(limit: limit), try await ledger.summary())
        }
        if output.json {
            print(jsonLine { w in
                w.beginObject()
                w.key("owner"); if let owner = summary.owner { w.string(owner.hex) } else { w.null() }
                w.key("blocks"); w.beginArray(); for b in blocks { ReadingWire.write(b, into: &w) }; w.endArray()
                w.field("readings", summary.readings)
                w.field("pending", summary.pending)
                w.endObject()
            })
            return
        }
        guard !blocks.isEmpty else {
            print("no blocks yet (\(summary.pending) reading(s) pending)")
            return
        }
        print(BlockTable.header)
        for b in blocks { print(BlockTable.row(b)) }
        print("\(summary.blocks) block(s), \(summary.readings) reading(s), \(summary.pending) pending, owner \(summary.owner?.hex ?? "?")")
    }
}
