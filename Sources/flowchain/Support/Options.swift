import ArgumentParser
import Foundation

/// `--data-dir`: the node's files on this machine.
struct DataDirOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The node's data directory (key and ledger).", valueName: "dir"))
    var dataDir: String = "./flowchain-data"
}

/// `--node URL` and `--token` for the commands that talk to a running node over JSON-RPC.
struct NodeOption: ParsableArguments {
    @Option(help: ArgumentHelp("A running node: ws://host:port or http://host:port.", valueName: "url"))
    var node: String?

    @Option(help: ArgumentHelp("The node's token, when it requires one (env FLOWCHAIN_TOKEN).", valueName: "token"))
    var token: String?

    var resolvedToken: String? { token ?? ProcessInfo.processInfo.environment["FLOWCHAIN_TOKEN"] }
}

/// `--json`: machine-readable output, the same shapes as the node's JSON-RPC answers.
struct JSONOption: ParsableArguments {
    @Flag(help: "Print JSON (the shapes of docs/rpc.md) instead of text.") var json = false
}

/// Where a read command looks: the data directory, or the node given with `--node`.
struct SourceOptions: ParsableArguments {
    @OptionGroup var data: DataDirOption
    @OptionGroup var remote: NodeOption
}
