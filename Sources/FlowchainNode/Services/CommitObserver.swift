import Ledger
import Logging
import NodeServer
import ServiceLifecycle
import CoreMetrics
import FlowchainCrypto

/// Hears every commit through the ledger's feed, like any other listener: counts readings by
/// source and blocks in the metrics, and logs each sealed block.
struct CommitObserver: Service {
    let feed: CommitFeed
    let metrics: NodeMetrics
    let logger: Logger

    func run() async throws {
        let readings = feed.subscribeInternal(.readings(device: nil))
        let blocks = feed.subscribeInternal(.blocks)
        // On shutdown the subscriptions end; what they had buffered is still handled.
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await case let .reading(r) in readings.events { metrics.readingIngested(source: r.reading.source.description) }
                }
                group.addTask {
                    for await case let .block(header) in blocks.events {
                        metrics.blocks.increment()
                        logger.info("block \(header.height) sealed: \(header.count) readings, hash \(header.hash.hex.prefix(16)), root \(header.merkleRoot.hex.prefix(16))")
                    }
                }
            }
        } onGracefulShutdown: {
            feed.unsubscribe(readings)
            feed.unsubscribe(blocks)
        }
    }
}
