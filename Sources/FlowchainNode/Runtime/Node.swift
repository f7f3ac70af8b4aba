import FlowchainCrypto
import Foundation
import Ledger
import Logging
import ServiceLifecycle

/// One running node: its key, its store, its ingest engine and the services around them.
public final class Node: Sendable {
    public let configuration: NodeConfiguration
    public let key: PrivateKey
    public let store: LedgerStore
    public let engine: IngestEngine
    let logger: Logger

    /// Opens the data directory (creating the key on first run) and verifies the store's tail.
    public init(configuration: NodeConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let dir = configuration.dataDirectory
        try dir.create()
        let (key, created) = try KeyFile.loadOrCreate(at: dir.keyPath)
        if created { logger.info("created node key \(dir.keyPath): public key \(key.publicKey)") }
        self.key = key
        store = try LedgerStore(path: dir.ledgerPath, owner: key.publicKey, tailCheck: configuration.tailCheck)
        engine = try IngestEngine(store: store, key: key, configuration: configuration.ingest, onBlock: { [logger] header in
            logger.info("block \(header.height) sealed: \(header.count) readings, hash \(header.hash.hex.prefix(16)), root \(header.merkleRoot.hex.prefix(16))")
        })
    }

    /// Runs until SIGTERM or SIGINT, then stops the feeds, seals pending readings and returns.
    public func run() async throws {
        let counts = try store.counts()
        let tip = try store.tip()
        logger.info("node ready: key \(key.publicKey), data dir \(configuration.dataDirectory.path), tip \(tip.map { "block \($0.height)" } ?? "none"), \(counts.readings) readings (\(counts.pending) pending)")
        // Shut down in reverse order: feeds stop first, then the cutter seals what they left.
        var services: [any Service] = [BlockCutter(engine: engine, interval: configuration.blockInterval, logger: logger)]
        if let demo = configuration.demo {
            services.append(DemoFeeder(engine: engine, configuration: demo, logger: logger))
        }
        var groupLogger = logger
        groupLogger.logLevel = max(logger.logLevel, .notice)
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: groupLogger))
        try await group.run()
        let final = try store.counts()
        logger.info("node stopped cleanly: \(final.blocks) blocks, \(final.readings) readings, \(final.pending) pending")
    }
}
