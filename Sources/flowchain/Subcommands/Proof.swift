import ArgumentParser
import FlowchainCrypto
import FlowchainNode
import Foundation
import Ledger

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

    @OptionGroup var source: SourceOptions
    @Flag(help: "Carry the anchor blocks from height 1 to the committing one.") var anchorChain = false
    @Argument(help: "The reading id (64 hex digits).") var readingID: String

    func run() async throws {
        guard let id = Digest32(hex: readingID) else { throw failure("'\(readingID)' is not a reading id (64 hex digits)") }
        let anchorChain = self.anchorChain
        let portable = try await source.withSource { try await $0.proof(of: id, anchorChain: anchorChain) }
        guard let portable else {
            throw failure("no reading with id \(id) in \(source.remote.node ?? DataDirectory(source.data.dataDir).ledgerPath)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(portable), as: UTF8.self))
    }
}
