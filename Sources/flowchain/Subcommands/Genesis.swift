import ArgumentParser
import Consensus
import FlowchainCrypto
import FlowchainNode
import Foundation

struct GenesisCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "genesis",
        abstract: "Create a genesis file for an anchor chain shared by several nodes.",
        discussion: """
            Every node of one network starts from the same genesis file: chain id, the initial \
            stake (and free balance) of each staker's public key, the anchor interval and the \
            bond delay. Nodes with different genesis files refuse each other's blocks. A node \
            started without one makes a single-node genesis that gives all stake to its own key.

              flowchain genesis --chain-id farm --stake <key1>=100 --stake <key2>=50 > genesis.json
            Format: docs/consensus.md.
            """
    )

    @Option(help: "The chain id (1–64 bytes).") var chainID: String
    @Option(help: ArgumentHelp("A staker: PUBLIC-KEY-HEX=STAKE[:BALANCE]. Repeat for each.", valueName: "key=stake")) var stake: [String] = []
    @Option(help: "Target seconds between anchor blocks.") var anchorInterval: UInt32 = 10
    @Option(help: "Blocks before a bond mints or an unbond is released.") var bondDelay: UInt32 = 10
    @Option(help: "Genesis time, seconds since the epoch (default: now).") var time: Int64?
    @Option(help: ArgumentHelp("Write here instead of standard output.", valueName: "file")) var output: String?

    func run() throws {
        guard !stake.isEmpty else { throw ValidationError("give at least one --stake KEY=AMOUNT") }
        var accounts: [Genesis.FileAccount] = []
        for s in stake {
            let parts = s.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw ValidationError("--stake '\(s)' is not KEY=STAKE[:BALANCE]") }
            let amounts = parts[1].split(separator: ":")
            guard let amount = UInt64(amounts[0]), amounts.count <= 2 else { throw ValidationError("--stake '\(s)': the stake is not a whole number") }
            let balance = amounts.count == 2 ? UInt64(amounts[1]) : 0
            guard let balance else { throw ValidationError("--stake '\(s)': the balance is not a whole number") }
            accounts.append(.init(key: String(parts[0]), stake: amount, balance: balance))
        }
        let file = Genesis.File(chainID: chainID, time: time ?? Int64(Date().timeIntervalSince1970), anchorInterval: anchorInterval,
                                bondDelay: bondDelay, accounts: accounts, initialTarget: nil)
        let genesis: Genesis
        do { genesis = try Genesis(file: file) } catch { throw failure("\(error)") }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(genesis.file)
        if let output {
            try data.write(to: URL(fileURLWithPath: output))
            FileHandle.standardError.write(Data("wrote \(output): chain \(genesis.chainID), genesis hash \(genesis.hash)\n".utf8))
        } else {
            print(String(decoding: data, as: UTF8.self))
        }
    }
}
