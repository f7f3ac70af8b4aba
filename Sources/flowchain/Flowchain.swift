import ArgumentParser

@main
struct Flowchain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowchain",
        abstract: "An edge ledger for IoT sensor readings: signed readings in hash-linked, provable blocks.",
        discussion: """
            Start with `flowchain node --demo`: it creates a node key and a ledger under \
            ./flowchain-data and feeds synthetic readings so you can watch blocks being sealed. \
            The read commands (readings, blocks, verify, check) work while the node runs, on the \
            data directory or, with --node URL, on a running node.
            """,
        subcommands: [NodeCommand.self, SendCommand.self, TailCommand.self, ReadingsCommand.self, BlocksCommand.self, RingCommand.self],
        groupedSubcommands: [
            CommandGroup(name: "Proofs and integrity", subcommands: [VerifyCommand.self, ProofCommand.self, CheckCommand.self, ExportCommand.self, PruneCommand.self]),
            CommandGroup(name: "Keys, devices and networks", subcommands: [KeygenCommand.self, DevicesCommand.self, SensorsCommand.self, BoardsCommand.self, GenesisCommand.self, StakeCommand.self]),
            CommandGroup(name: "For developers", subcommands: [SimCommand.self, BenchCommand.self]),
        ]
    )
}
