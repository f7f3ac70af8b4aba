import Consensus
import FlowchainCrypto
import Foundation
import Logging
import PeerNetwork

extension Node {
    /// A node told to join a ring that has no genesis of its own yet adopts its first reachable
    /// peer's: it fetches the file over `/peer` (after the handshake), checks that it hashes to
    /// what the peer's hello named, saves it as `<data-dir>/genesis.json` and keeps it. From then
    /// on a peer with another genesis is refused. Does nothing when a genesis is configured or
    /// already saved, or when there is nobody to join.
    public static func adoptGenesisIfNeeded(_ configuration: NodeConfiguration, logger: Logger) async throws {
        guard let peers = configuration.peers, !peers.join.isEmpty, configuration.genesisPath == nil else { return }
        let dir = configuration.dataDirectory
        let path = (dir.path as NSString).appendingPathComponent("genesis.json")
        if FileManager.default.fileExists(atPath: path) { return }
        try dir.create()
        let (key, _) = try KeyFile.loadOrCreate(at: dir.keyPath)
        let transport = PeerTransport(key: key, genesis: nil, chainID: nil, configuration: peers.transport, logger: logger)
        defer { transport.shutdown() }
        var failures: [String] = []
        var delay = Duration.milliseconds(500)
        for attempt in 1...8 {
            for address in peers.join {
                do {
                    let c = try await transport.connection(to: address)
                    guard let expected = c.peer.genesis else { throw NodeError.configuration("peer \(address) has no genesis either") }
                    let file = try await c.request(.genesis, [], timeout: .seconds(10)).get()
                    let temporary = path + ".adopting"
                    try Data(file).write(to: URL(fileURLWithPath: temporary))
                    defer { try? FileManager.default.removeItem(atPath: temporary) }
                    let genesis = try Genesis.load(temporary)
                    guard genesis.hash == expected else {
                        throw NodeError.configuration("peer \(address) sent a genesis hashing to \(genesis.hash.hex.prefix(16)), not the \(expected.hex.prefix(16)) it announced")
                    }
                    try genesis.write(to: path)
                    logger.notice("adopted the genesis of ring \(genesis.chainID) from peer \(address): hash \(genesis.hash.hex), saved as \(path)")
                    return
                } catch {
                    failures.append("\(address): \(error)")
                }
            }
            if attempt == 8 { break }
            logger.info("no peer could give a genesis yet (\(failures.last ?? "")); trying again in \(delay)")
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(10))
        }
        throw NodeError.configuration("this node has no genesis and none of --join's peers gave one: \(failures.suffix(peers.join.count).joined(separator: "; ")). Start it with --genesis FILE, or make a peer reachable")
    }
}
