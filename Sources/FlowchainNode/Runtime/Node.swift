import Consensus
import FlowchainCrypto
import FlowchainWire
import Foundation
import Ledger
import Logging
import MQTTBridge
import Sensors
import NodeServer
import PeerNetwork
import ServiceLifecycle
import CoreMetrics
import Synchronization
import UnixSignals

/// One running node: its key, its store, its ingest engine and the services around them.
public final class Node: Sendable {
    public static let version = "0.2.0"

    public let configuration: NodeConfiguration
    public let key: PrivateKey
    public let store: LedgerStore
    public let engine: IngestEngine
    public let feed: CommitFeed
    public let metrics: NodeMetrics
    public let genesis: Genesis
    public let anchor: AnchorNode
    /// The node's part in the ring (nil without the server or with the peer network off).
    public let peer: PeerNode?
    let logger: Logger
    /// The running service group, and whether `shutdown()` was asked for before it existed.
    private let running = Mutex<(group: ServiceGroup?, stopRequested: Bool)>((nil, false))

    /// Opens the data directory (creating the key on first run) and verifies the store's tail.
    public init(configuration: NodeConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let dir = configuration.dataDirectory
        try dir.create()
        let (key, created) = try KeyFile.loadOrCreate(at: dir.keyPath)
        if created { logger.info("created node key \(dir.keyPath): public key \(key.publicKey)") }
        self.key = key
        genesis = try Self.loadGenesis(configuration, key: key, logger: logger)
        var tailCheck = configuration.tailCheck
        if FileManager.default.fileExists(atPath: dir.ledgerPath) {
            // Verify the stored chains through read-only connections first: opening the writer
            // touches the file (SQLite's WAL set-up), and a damaged ledger must be left exactly as
            // it was found. The anchor replay here is the one the writer's start repeats below.
            do {
                let probe = try LedgerStore(path: dir.ledgerPath, owner: key.publicKey, readOnly: true, tailCheck: tailCheck)
                defer { try? probe.close() }
                _ = try AnchorNode(genesis: genesis, key: nil, store: probe, now: configuration.clock.seconds)
                tailCheck = 0
            } catch StoreError.notInitialised {
                // An empty or half-created file, or one of an earlier version: the writer migrates
                // it, then checks it.
                if let upgrade = LedgerStore.pendingUpgrades(path: dir.ledgerPath) {
                    logger.notice("upgrading \(dir.ledgerPath) to this version's schema (\(upgrade.migrations.joined(separator: ", "))) before the node starts: it holds \(upgrade.readings) reading(s); an upgrade that rebuilds the reading table reads and writes each of them once, which takes a while on a big ledger, once")
                }
            }
        }
        store = try LedgerStore(path: dir.ledgerPath, owner: key.publicKey, tailCheck: tailCheck)
        if let replay = store.journalReplay {
            logger.notice("applied \(replay.readings) acknowledged reading(s) and \(replay.blocks) block(s) again from the acknowledgement journal (\(replay.records) commit(s) the last run had not yet settled into the ledger)")
        }
        let metrics = NodeMetrics()
        let feed = CommitFeed(capacity: configuration.server?.subscriberBuffer ?? 1024) { metrics.droppedFrames.increment() }
        self.feed = feed
        self.metrics = metrics
        var ingest = configuration.ingest
        ingest.blockInterval = configuration.blockInterval
        engine = try IngestEngine(store: store, key: key, configuration: ingest, now: configuration.clock.milliseconds, feed: feed, logger: logger)
        anchor = try AnchorNode(genesis: genesis, key: key, store: store, now: configuration.clock.seconds)
        if var peers = configuration.peers, configuration.server != nil {
            peers.replicaDirectory = dir.replicasPath
            // The node's retention holds its copies too (RetentionService), and decides for them
            // when freed pages go back to the file system.
            peers.shrinkCopies = configuration.retention.isEmpty
            let path = configuration.genesisPath ?? (dir.path as NSString).appendingPathComponent("genesis.json")
            let file = Array(FileManager.default.contents(atPath: path) ?? Data())
            let engine = self.engine
            let box = ServicesBox()
            self.servicesBox = box
            peer = PeerNode(
                configuration: peers, key: key, engine: engine, anchor: anchor, genesis: genesis.hash, chainID: genesis.chainID, genesisFile: file,
                counters: .init(connected: { metrics.peerConnected() }, disconnected: { metrics.peerDisconnected() },
                                dialFailed: { metrics.error("peer_dial_failed") }, handshakeFailed: { metrics.error("peer_handshake_failed") }),
                routing: Self.routingCounters(metrics),
                logger: logger
            ) { method, params, stores in
                guard let services = box.services else { return .failure(.init(code: -32603, message: "the server is not running")) }
                return await services.answerLocally(method: method, params: params, stores: stores).mapError { .init(code: $0.code, message: $0.message) }
            }
            if let peer { engine.seqFloor.set { [weak peer] device in peer?.replicatedLastSeq(device) } }
        } else {
            peer = nil
            servicesBox = ServicesBox()
        }
    }

    static func routingCounters(_ metrics: NodeMetrics) -> RoutingCounters {
        var c = RoutingCounters(forwarded: { metrics.forwarded.increment(by: $0) }, forwardFailed: { metrics.error("forward_failed", count: $0) },
                                served: { metrics.servedForPeers.increment(by: $0) }, lookup: { metrics.lookupHops.record($0) },
                                queueDepth: { metrics.forwardQueue.record($0) })
        c.replicationLag = { metrics.replicationLag.record($0) }
        c.lookupTime = { metrics.lookupLatency.recordNanoseconds(Int64($0.components.seconds) * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000) }
        return c
    }

    /// The server's services, once `run` made them (forwarded queries are answered through them).
    private let servicesBox: ServicesBox
    final class ServicesBox: @unchecked Sendable {
        private let lock = NSLock()
        private var value: NodeServices?
        var services: NodeServices? {
            get { lock.withLock { value } }
            set { lock.withLock { value = newValue } }
        }
    }

    /// The configured genesis file, or `<data-dir>/genesis.json`, created on first run as a
    /// single-node genesis that gives all stake to this node's key.
    static func loadGenesis(_ configuration: NodeConfiguration, key: PrivateKey, logger: Logger) throws -> Genesis {
        if let path = configuration.genesisPath { return try Genesis.load(path) }
        let path = (configuration.dataDirectory.path as NSString).appendingPathComponent("genesis.json")
        if FileManager.default.fileExists(atPath: path) { return try Genesis.load(path) }
        let genesis = Genesis.singleNode(key: key.publicKey, time: configuration.clock.seconds - 1, anchorInterval: configuration.anchorInterval)
        try genesis.write(to: path)
        logger.info("created single-node genesis \(path): chain \(genesis.chainID), anchor interval \(genesis.anchorInterval) s")
        return genesis
    }

    /// Runs until SIGTERM or SIGINT (or, embedded, until the calling task is cancelled), then stops
    /// the feeds and the server, seals pending readings and returns. `routes` add endpoints to the
    /// server; `onListening` gets its bound port (useful with port 0).
    public func run(routes: [any RouteInstaller] = [], onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }) async throws {
        let counts = try store.counts()
        let tip = try store.tip()
        let anchorTip = await anchor.tip
        logger.info("node ready: key \(key.publicKey), data dir \(configuration.dataDirectory.path), tip \(tip.map { "block \($0.height)" } ?? "none"), \(counts.readings) readings (\(counts.pending) pending), anchor chain \(genesis.chainID) at height \(anchorTip.height)")
        // Shut down in reverse order: feeds stop first, then the server, then the engine commits and
        // seals what is left, and the commit observer hears it last.
        // The commit observer (metrics, the block log) comes first, so it stops last and still
        // hears the blocks sealed during shutdown.
        var services: [any Service] = [CommitObserver(feed: feed, metrics: metrics, logger: logger), engine,
                                       ClockWatch(clock: configuration.ingest.clock, node: key.publicKey.hex, wall: configuration.clock,
                                                  ingest: peer?.router ?? engine, logger: logger)]
        if !configuration.retention.isEmpty {
            let peer = self.peer
            services.append(RetentionService(store: store, policy: configuration.retention, wall: configuration.clock,
                                             interval: configuration.retentionInterval,
                                             copies: { peer?.copiesByOwner().map { (String($0.owner.hex.prefix(12)), $0.store) } ?? [] },
                                             logger: logger))
        }
        if configuration.mint { services.append(AnchorMinter(anchor: anchor, clock: configuration.clock, logger: logger, gossip: peer?.gossip)) }
        if let server = configuration.server {
            let anchor = self.anchor
            let nodeServices = NodeServices(engine: engine, metrics: metrics, configuration: server, version: Self.version, logger: logger,
                                            ingest: peer?.router, ring: peer.map(RingAccessAdapter.init),
                                            anchor: AnchorAccessAdapter(anchor: anchor, genesis: genesis, gossip: peer?.gossip)) { proof, withChain in
                guard let anchored = try? await anchor.anchored(proof) else { return nil }
                guard withChain else { return anchored.portable }
                guard let chain = try? await anchor.activeBlocks(through: anchored.anchor.height) else { return anchored.portable }
                return anchored.portable(chain: chain)
            }
            servicesBox.services = nodeServices
            var routes = routes
            var onListening = onListening
            if let peer {
                let transport = peer.transport
                routes.append(WebSocketRoute(path: "/peer") { inbound, outbound, remote in
                    await transport.accept(inbound: inbound, outbound: outbound, remote: remote)
                })
                let outer = onListening
                onListening = { host, port in
                    peer.listening(host: host, port: port)
                    outer(host, port)
                }
                services.append(peer)
            }
            services.append(FlowchainServer(services: nodeServices, logger: logger, routes: routes, onListening: onListening))
            services.append(FeedCloser(feed: feed))
        }
        let nodeID = String(key.publicKey.hex.prefix(12))
        let ingestPoint: any ReadingIngest = peer?.router ?? engine
        for var bridge in configuration.mqtt {
            if bridge.broker.clientID.isEmpty { bridge.broker.clientID = "flowchain-\(nodeID)" }
            if var out = bridge.outbound {
                out.prefix = out.prefix.replacingOccurrences(of: "{node}", with: nodeID)
                bridge.outbound = out
            }
            bridge.deadLetter = bridge.deadLetter?.replacingOccurrences(of: "{node}", with: nodeID)
            let metrics = self.metrics
            // In a ring a device's newest reading may be stored at another node.
            var newestCounter: (@Sendable (String, String) async -> Int64?)? = nil
            if let peer { newestCounter = { device, field in await peer.newestPayload(of: device)?[field]?.int64Value } }
            services.append(MQTTBridgeService(
                configuration: bridge, engine: engine, ingest: ingestPoint, counters: .init(refused: { metrics.error("mqtt_\($0)") }),
                now: configuration.clock.milliseconds, newestCounter: newestCounter, logger: logger))
        }
        if !configuration.sensors.isEmpty {
            let metrics = self.metrics
            services.append(SamplerService(sensors: configuration.sensors, engine: ingestPoint,
                                           counters: .init(failed: { metrics.error("sensor_\($0)") }), clock: configuration.ingest.clock, logger: logger))
        }
        if let demo = configuration.demo {
            services.append(DemoFeeder(ingest: ingestPoint, configuration: demo, clock: configuration.clock, logger: logger))
        }
        var groupLogger = logger
        groupLogger.logLevel = max(logger.logLevel, .notice)
        var groupConfiguration = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: groupLogger)
        // Long-lived WebSockets must not hold the node up forever: after this, they are cancelled.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(10)
        let group = ServiceGroup(configuration: groupConfiguration)
        let stopAtOnce = running.withLock { state in
            state.group = group
            return state.stopRequested
        }
        if stopAtOnce { await group.triggerGracefulShutdown() }
        try await group.run()
        do { try store.checkpoint() } catch { logger.warning("could not checkpoint the WAL on shutdown (harmless; it is replayed on start): \(error)") }
        if let copies = peer?.replicas {
            for owner in copies.owners() {
                guard let copy = try? copies.store(for: owner, create: false) else { continue }
                do { try copy.checkpoint() } catch { logger.warning("could not checkpoint the copy of \(owner.hex.prefix(12)) on shutdown (harmless): \(error)") }
            }
        }
        let final = try store.counts()
        logger.info("node stopped cleanly: \(final.blocks) blocks, \(final.readings) readings, \(final.pending) pending")
    }
}

extension Node {
    /// Shuts a running node down gracefully, as SIGTERM does: sources stop, pending readings are
    /// committed and sealed, then `run()` returns. For programs that embed a node.
    public func shutdown() async {
        let group = running.withLock { state in
            state.stopRequested = true
            return state.group
        }
        await group?.triggerGracefulShutdown()
    }
}

/// Ends every viewer and subscription stream when shutdown starts, so their connections close
/// promptly instead of waiting for events that will not come.
struct FeedCloser: Service {
    let feed: CommitFeed
    func run() async throws {
        try? await gracefulShutdown()
        feed.finishClients()
    }
}

/// The peer network as the server sees it.
struct RingAccessAdapter: RingAccess {
    let peer: PeerNode
    func status() async -> [UInt8] { await peer.status() }
    func route(method: String, params: [UInt8], device: String) async -> RingQueryRoute {
        Self.map(await peer.route(method: method, params: params, device: device))
    }
    func route(method: String, params: [UInt8], chainOf owner: PublicKey) async -> RingQueryRoute {
        Self.map(await peer.route(method: method, params: params, chainOf: owner))
    }
    static func map(_ route: PeerNode.QueryRoute) -> RingQueryRoute {
        switch route {
        case .local: .local
        case let .answered(result): .answered(result)
        case let .refused(e): .refused(code: e.code, message: e.message)
        case let .unreachable(why): .unreachable(why)
        case let .stores(stores): .stores(stores)
        }
    }
    func copies() -> [(tag: Int64, store: LedgerStore)] { peer.copies() }
    func find(method: String, params: [UInt8]) async -> RingQueryRoute {
        switch await peer.find(method: method, params: params) {
        case .local, .stores: .refused(code: -32004, message: "not found")
        case let .answered(result): .answered(result)
        case let .refused(e): .refused(code: e.code, message: e.message)
        case let .unreachable(why): .unreachable(why)
        }
    }
}

/// The anchor chain as the server sees it.
struct AnchorAccessAdapter: AnchorAccess {
    let anchor: AnchorNode
    let genesis: Genesis
    let gossip: AnchorGossip?

    func status(account key: PublicKey?) async -> [UInt8] {
        let tip = await anchor.tip
        var w = JSONWriter()
        w.beginObject()
        w.field("chainID", genesis.chainID)
        w.field("genesis", genesis.hash.hex)
        w.field("height", tip.height)
        w.field("hash", tip.hash.hex)
        w.field("time", tip.time)
        w.key("minter"); if let m = tip.block?.minter { w.string(m.hex) } else { w.null() }
        w.key("heads"); w.beginArray()
        for (owner, head) in tip.state.heads.sorted(by: { $0.key.hex < $1.key.hex }) {
            w.beginObject(); w.field("owner", owner.hex); w.field("height", head.height); w.endObject()
        }
        w.endArray()
        if let key {
            let account = tip.state.accounts[key]
            w.key("account"); w.beginObject()
            w.field("key", key.hex)
            w.field("stake", account?.stake ?? 0); w.field("balance", account?.balance ?? 0); w.field("nonce", account?.nonce ?? 0)
            w.endObject()
        }
        w.endObject()
        return w.bytes
    }

    func submit(stake bytes: [UInt8]) async -> String? {
        let record: StakeRecord
        do { record = try StakeRecord(encoded: bytes) } catch { return "not a stake record: \(error)" }
        guard record.chain == genesis.hash else { return "the record is for another chain (genesis \(record.chain.hex.prefix(16))…, this ring's is \(genesis.hash.hex.prefix(16))…)" }
        guard record.hasValidSignature else { return "the record's signature does not verify for key \(record.key.hex.prefix(16))…" }
        let account = await anchor.tip.state.accounts[record.key]
        guard account != nil else { return "key \(record.key.hex.prefix(16))… has no account in this chain's genesis" }
        let expected = (account?.nonce ?? 0) + 1
        guard record.nonce == expected else { return "nonce \(record.nonce) is not the key's next one (\(expected))" }
        guard let gossip else { return "stake records reach the minters through the peer network; this node runs without it" }
        _ = gossip.announce(record: record)
        return nil
    }
}
