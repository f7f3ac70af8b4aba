import Consensus
import Foundation
import Ledger
import Logging
import PeerNetwork
import ServiceLifecycle

/// Checks the Proof-of-Stake kernel once a second for this node's key and mints when it wins.
struct AnchorMinter: Service {
    let anchor: AnchorNode
    let clock: WallClock
    let logger: Logger
    /// In a ring: where other nodes' heads and stake records come from and minted blocks go.
    var gossip: AnchorGossip? = nil

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let now = Double(clock.milliseconds()) / 1000
            let second = Int64(now.rounded(.down))
            do {
                // In a ring, mint only on the chain caught up from a peer.
                let ready = gossip?.synced ?? true
                // Alone, a win with nothing new to commit mints (and writes) nothing: an idle node
                // leaves its SD card alone. In a ring every win mints, so commits become final.
                let alone = await gossip?.alone ?? true
                let block = ready ? try await anchor.tick(now: second, otherHeads: gossip?.heads ?? [], records: gossip?.records ?? [], skipEmpty: alone) : nil
                if let block {
                    gossip?.announce(block)
                    let heads = block.heads.map { "segment \($0.height)" }.joined(separator: ", ")
                    logger.info("anchor block \(block.height) minted: \(heads.isEmpty ? "no new heads" : "commits " + heads), target \(block.target.hex.prefix(12))…")
                }
            } catch {
                logger.error("minting failed; retrying next second", metadata: ["error": "\(error)"])
            }
            // Wake just after the next whole second.
            let wait = Double(second + 1) - now + 0.01
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(wait)) } } catch { break }
        }
    }
}
