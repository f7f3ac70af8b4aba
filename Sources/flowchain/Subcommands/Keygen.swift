import ArgumentParser
import FlowchainCrypto
import FlowchainNode

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Create the node's Ed25519 key in the data directory.",
        discussion: """
            Writes <data-dir>/node.key (mode 0600): one line `ed25519-seed:` followed by the 32-byte \
            seed in hex. The public key printed is the node's identity. Refuses to overwrite an \
            existing key, since replacing it orphans the node's chain. `flowchain node` creates the \
            key itself on first run, so this is only needed to know the identity in advance.
            """
    )

    @OptionGroup var data: DataDirOption

    func run() throws {
        let dir = DataDirectory(data.dataDir)
        do {
            try dir.create()
            let key = try KeyFile.create(at: dir.keyPath)
            print("created \(dir.keyPath)")
            print("public key: \(key.publicKey)")
        } catch {
            throw failure("\(error)")
        }
    }
}
