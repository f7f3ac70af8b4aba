import ArgumentParser
import Consensus
import FlowchainClient
import FlowchainCrypto
import FlowchainWire
import Foundation
import Ledger

struct StakeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stake",
        abstract: "Bond (or unbond) a key's anchor-chain stake through a running node.",
        discussion: """
            Signs a stake record with the key (a node's data directory, or a key file), with the \
            key's next nonce, and hands it to the node, which passes it to the ring's minters; \
            the first anchor block that carries it applies it. Bonding moves balance (from the \
            genesis) into stake: the key may mint after the genesis' bond delay, in blocks. \
            Unbonding moves stake back to balance. `flowchain stake --node URL --data-dir DIR` \
            with no amount shows the key's account.
            """
    )

    @OptionGroup var remote: NodeOption
    @Option(help: ArgumentHelp("The data directory whose node.key signs the record.", valueName: "dir")) var dataDir: String?
    @Option(help: ArgumentHelp("A key file (ed25519-seed:…) instead of a data directory.", valueName: "file")) var keyFile: String?
    @Option(help: "How much to bond (or unbond).") var amount: UInt64?
    @Flag(help: "Unbond instead of bond.") var unbond = false
    @OptionGroup var output: JSONOption

    func validate() throws {
        guard remote.node != nil else { throw ValidationError("--node is required: the node that passes the record on (e.g. ws://127.0.0.1:8000)") }
        guard (dataDir == nil) != (keyFile == nil) else { throw ValidationError("give the key: --data-dir DIR or --key-file FILE (one of them)") }
        if let amount, amount == 0 { throw ValidationError("--amount must be positive") }
    }

    func run() async throws {
        let path = keyFile ?? ((dataDir! as NSString).appendingPathComponent("node.key"))
        let key: PrivateKey
        do { key = try KeyFile.load(from: path) } catch { throw failure("\(error)") }
        let (amount, unbond, json) = (self.amount, self.unbond, output.json)
        do {
            try await RPCConnection.with(remote.node!, token: remote.resolvedToken) { rpc in
                let status = try await rpc.call("anchor", ["key": .string(key.publicKey.hex)])
                let account = status["account"]
                guard let amount else {
                    emit(json ? (account ?? .null).jsonText : "key \(key.publicKey.hex.prefix(16))…: stake \(account?["stake"]?.int64Value ?? 0), balance \(account?["balance"]?.int64Value ?? 0), nonce \(account?["nonce"]?.int64Value ?? 0) (anchor tip \(status["height"]?.int64Value ?? 0))")
                    return
                }
                guard let hex = status["genesis"]?.stringValue, let chain = Digest32(hex: hex) else { throw CLIError("the node did not say which chain it follows") }
                let nonce = UInt64(account?["nonce"]?.int64Value ?? 0) + 1
                let record = try StakeRecord(kind: unbond ? .unbond : .bond, chain: chain, amount: amount, nonce: nonce, signedBy: key)
                _ = try await rpc.call("stake", ["record": .string(Hex.encode(record.encoded))])
                emit(json ? #"{"submitted":true,"kind":"\#(unbond ? "unbond" : "bond")","amount":\#(amount),"nonce":\#(nonce)}"#
                    : "\(unbond ? "unbond" : "bond") of \(amount) for key \(key.publicKey.hex.prefix(16))… (nonce \(nonce)) handed to the ring's minters")
            }
        } catch {
            throw failure("\(error)")
        }
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
