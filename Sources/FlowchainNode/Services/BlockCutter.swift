import Ledger
import Logging
import ServiceLifecycle

/// Cuts a segment block every interval while readings are pending; on shutdown seals what is left.
struct BlockCutter: Service {
    let engine: IngestEngine
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { [interval] in try await Task.sleep(for: interval) }
            } catch {
                break
            }
            do {
                try await engine.cutBlock()
            } catch {
                logger.error("cutting a block failed; the readings stay pending and are retried next interval", metadata: ["error": "\(error)"])
            }
        }
        logger.info("sealing pending readings before shutdown")
        try await engine.drain()
    }
}
