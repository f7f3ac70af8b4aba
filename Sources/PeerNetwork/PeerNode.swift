import Chord
import Consensus
import FlowchainCrypto
import FlowchainWire
import Foundation
import Ledger
import Logging
import ServiceLifecycle
import Synchronization

/// This node's part in the ring, as a `Service`: serves `/peer` (through `accept`), starts a
/// ring or joins one through `join` once the server listens, routes readings and device queries,
/// and leaves the ring gracefully on shutdown.
public final class PeerNode: Service, Sendable {
    public struct Configuration: Sendable {
        /// host:port of peers to join through (none: start a ring of one).
        public var join: [String] = []
        /// host:port peers reach this node at; nil: the server's listening address.
        public var advertise: String? = nil
        public var chord = ChordConfiguration()
        public var transport = PeerTransport.Configuration()
        /// Copies of each reading in the ring: the owner's and r − 1 on its successors.
        public var replicationFactor = 3
        /// When a reading is acknowledged: after the owner's durable commit, or after a replica's too.
        public var ack = AckLevel.owner
        /// Where copies of other nodes' chains are kept (`<data-dir>/replicas`).
        public var replicaDirectory = "replicas"
        /// Readings the forward queue holds at most (0: no queue; such readings are refused).
        public var forwardQueueLimit = 100_000
        /// Whether the node gives back, once a minute, the pages its copies' owners' retention
        /// freed. Off when the node applies its own retention policy to the copies (which then
        /// decides, as for its own ledger, when free pages go back).
        public var shrinkCopies = true
        public init() {}
    }

    public enum AckLevel: String, Sendable, CaseIterable {
        case owner
        case replica
    }

    /// How the owner answers a device query forwarded to it: a JSON-RPC method's result, or an
    /// error message.
    public typealias LocalQuery = @Sendable (_ method: String, _ params: [UInt8], _ stores: [(tag: Int64, store: LedgerStore)]) async -> Result<[UInt8], QueryError>

    public struct QueryError: Error, Sendable {
        public let code: Int
        public let message: String
        public init(code: Int, message: String) { self.code = code; self.message = message }
    }

    public let configuration: Configuration
    public let transport: PeerTransport
    public let router: RingRouter
    public let replicas: ReplicaStores
    let replicator: Replicator
    let genesisFile: [UInt8]
    let localQuery: LocalQuery
    let logger: Logger
    private let listening: AsyncStream<String>
    private let listeningInput: AsyncStream<String>.Continuation
    private let driverState: DriverBox
    /// The ring's one anchor chain (nil when the node keeps none).
    public let gossip: AnchorGossip?
    let pulling = Mutex(false)

    public init(configuration: Configuration, key: PrivateKey, engine: IngestEngine, anchor: AnchorNode? = nil, genesis: Digest32, chainID: String,
                genesisFile: [UInt8], counters: PeerCounters = .init(), routing: RoutingCounters = .init(),
                logger: Logger, localQuery: @escaping LocalQuery) {
        self.configuration = configuration
        self.logger = logger
        self.genesisFile = genesisFile
        self.localQuery = localQuery
        let transport = PeerTransport(key: key, genesis: genesis, chainID: chainID, configuration: configuration.transport, counters: counters, logger: logger)
        self.transport = transport
        replicas = ReplicaStores(directory: configuration.replicaDirectory)
        replicator = Replicator(store: engine.store, feed: engine.feed, transport: transport, factor: configuration.replicationFactor, logger: logger,
                                lag: routing.replicationLag)
        var queue: ForwardQueue? = nil
        if configuration.forwardQueueLimit > 0 {
            do {
                queue = try ForwardQueue(store: engine.store, limit: configuration.forwardQueueLimit, logger: logger, depth: routing.queueDepth)
            } catch {
                logger.error("forward queue unavailable (readings whose owner cannot be reached will be refused): \(error)")
            }
        }
        let replicas = replicas
        router = RingRouter(engine: engine, replicator: configuration.ack == .replica ? replicator : nil, queue: queue, counters: routing,
                            copies: { replicas.owners().compactMap { try? replicas.store(for: $0, create: false) } }, logger: logger)
        (listening, listeningInput) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1))
        let state = DriverBox()
        driverState = state
        gossip = anchor.map { anchor in
            AnchorGossip(anchor: anchor, transport: transport, now: engine.now, logger: logger) {
                guard let driver = state.withLock({ $0 }) else { return nil }
                return await driver.status()
            }
        }
        let router = self.router
        transport.setHandlers(.init(
            chord: { [weak self] envelope, connection in
                guard let driver = self?.driver else { return }
                await driver.received(envelope, from: connection.id)
            },
            serve: { [weak self] method, body, connection, turn in
                guard let self else { return (.error, Array("shutting down".utf8)) }
                switch method {
                case .ingest:
                    guard let driver = self.driver else { return (.error, Array("not in a ring yet".utf8)) }
                    return await router.serveIngest(body, view: driver.view, turn: turn)
                case .query:
                    return await self.serveQuery(body)
                case .genesis:
                    return (.ok, self.genesisFile)
                case .ring:
                    guard let driver = self.driver else { return (.error, Array("not in a ring yet".utf8)) }
                    return (.ok, await driver.status().json)
                case .replicate:
                    return await self.serveReplicate(body, from: connection)
                case .replicateCopy:
                    return await self.serveReplicateCopy(body, from: connection)
                case .pull:
                    return await self.servePull(body)
                case .anchorBlock:
                    guard let gossip = self.gossip else { return (.error, Array("this node keeps no anchor chain".utf8)) }
                    return await gossip.received(block: body, from: connection)
                case .anchorSync:
                    guard let gossip = self.gossip else { return (.error, Array("this node keeps no anchor chain".utf8)) }
                    return await gossip.serveSync(body)
                case .segmentHead:
                    guard let gossip = self.gossip, let head = try? BlockHeader(encoded: body) else { return (.error, Array("malformed segment head".utf8)) }
                    return gossip.announce(head: head, from: connection.id) ? (.ok, []) : (.error, Array("the head's signature does not verify".utf8))
                case .stakeRecord:
                    guard let gossip = self.gossip, let record = try? StakeRecord(encoded: body) else { return (.error, Array("malformed stake record".utf8)) }
                    return gossip.announce(record: record, from: connection.id) ? (.ok, []) : (.error, Array("the record's signature does not verify".utf8))
                }
            }))
    }

    public var driver: ChordDriver? { driverState.withLock { $0 } }

    /// Tell it where the server listens (host, port): the ring starts then.
    public func listening(host: String, port: Int) {
        let address = configuration.advertise ?? "\(host.contains(":") ? "[\(host)]" : host):\(port)"
        listeningInput.yield(address)
    }

    public func run() async throws {
        var address: String?
        for await a in listening.cancelOnGracefulShutdown() { address = a; break }
        guard let address else { return }
        transport.address = address
        if configuration.advertise == nil, address.hasPrefix("0.0.0.0:") || address.hasPrefix("[::]:") {
            logger.warning("peers will be told to reach this node at \(address), which is no address: set --advertise host:port")
        }
        let router = self.router
        let driver = ChordDriver(transport: transport, configuration: configuration.chord, logger: logger) { [weak self] grew in
            router.flushOwners()
            await router.engine.raiseSeqsToFloors()
            if grew { await self?.takeOver() }
        }
        driverState.withLock { $0 = driver }
        router.attach(driver, transport)
        logger.info("peer network: id \(transport.id.hex), listening for peers at \(configuration.transport.tls ? "wss" : "ws")://\(address)/peer")
        if configuration.join.isEmpty {
            await driver.create()
            logger.info("started a ring of one; other nodes join with --join \(address)")
        } else {
            await withTaskCancellationOrGracefulShutdownHandler {
                await self.join(driver)
            } onCancelOrGracefulShutdown: {}
        }
        let heartbeat = Task { [weak self, logger] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                let gap = driver.view.beat()
                guard gap > RingView.pauseLimit, driver.view.paused else { continue }
                // Paused longer than the successor waits before it takes a silent node's keys: what
                // it stored for them meanwhile must be copied here before this node numbers them.
                // The ring settles first (every peer's requests timed out during the pause).
                logger.warning("this node was paused for \(gap.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1)))); it takes its keys back from its successor before it stores readings for them again")
                router.flushOwners()
                Task {
                    try? await Task.sleep(for: .seconds(3))
                    await self?.takeOver()
                }
            }
        }
        let replication = Task { await replicator.run(view: driver.view) }
        let keeping = Task { await self.keepCopies(view: driver.view) }
        let shrinking = Task { if self.configuration.shrinkCopies { await self.shrinkCopies() } }
        let anchoring = Task { [gossip, router] in
            guard let gossip else { return }
            // Catch up before minting (a ring of one has nobody to ask), then every 10 s.
            let heads = router.engine.feed.subscribeWakeUps(.blocks)
            defer { router.engine.feed.unsubscribe(heads) }
            let announcer = Task {
                for await _ in heads.events {
                    if let tip = await router.engine.snapshot().tip { _ = gossip.announce(head: tip) }
                }
            }
            defer { announcer.cancel() }
            while !Task.isCancelled {
                if let s = driver.view.successors.first(where: { $0.id != driver.view.me.id }), let c = try? await self.transport.connection(to: s) {
                    await gossip.catchUp(from: c)
                } else {
                    gossip.markSynced()
                }
                try? await Task.sleep(for: .seconds(10))
            }
        }
        let delivery = Task { [router] in
            guard let queue = router.queue else { return }
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                while await queue.drain(deliver: { await router.route($0, tokens: $1, after: nil) }) > 0, !Task.isCancelled {}
            }
        }
        try? await gracefulShutdown()
        heartbeat.cancel()
        replication.cancel()
        keeping.cancel()
        shrinking.cancel()
        delivery.cancel()
        anchoring.cancel()
        await replication.value
        await delivery.value
        await driver.leave()
        transport.shutdown()
    }

    /// Dials the bootstraps until one answers, then joins the ring through them.
    private func join(_ driver: ChordDriver) async {
        var delay = Duration.milliseconds(500)
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            var refs: [NodeRef] = []
            for address in configuration.join {
                do {
                    let c = try await transport.connection(to: address)
                    refs.append(NodeRef(id: c.id, address: c.peer.address.isEmpty ? address : c.peer.address))
                } catch {
                    logger.warning("cannot reach peer \(address): \(error)")
                }
            }
            if !refs.isEmpty {
                logger.info("joining the ring through \(refs.map(\.address).joined(separator: ", "))")
                await driver.join(via: refs)
                return
            }
            logger.info("no peer reachable yet; trying again in \(delay)")
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(10))
        }
    }

    /// This node's view of the ring (the `ring` RPC method's result).
    public func status() async -> [UInt8] {
        guard let driver else { return Array(#"{"active":false,"reason":"the server is not listening yet"}"#.utf8) }
        return await driver.status().json
    }
}

extension RingStatus {
    /// The JSON `flowchain ring` prints.
    public var json: [UInt8] {
        var w = JSONWriter()
        func node(_ n: NodeRef) {
            w.beginObject(); w.field("id", n.id.hex); w.field("address", n.address); w.endObject()
        }
        w.beginObject()
        w.field("id", me.id.hex)
        w.field("address", me.address)
        w.field("active", active)
        w.key("predecessor"); if let p = predecessor { node(p) } else { w.null() }
        w.key("successors"); w.beginArray(); for s in successors { node(s) }; w.endArray()
        w.key("fingers"); w.beginArray(); for f in fingers { node(f) }; w.endArray()
        w.key("range")
        if let owned {
            w.beginObject(); w.field("after", owned.lower.hex); w.field("upTo", owned.upper.hex)
            w.key("share"); w.double(owned.share); w.endObject()
        } else { w.null() }
        w.key("ring"); w.beginArray(); for n in known { node(n) }; w.endArray()
        w.key("chord")
        w.beginObject()
        w.field("requestsSent", statistics.requestsSent); w.field("requestsAnswered", statistics.requestsAnswered)
        w.field("retries", statistics.retries); w.field("timeouts", statistics.timeouts); w.field("rejected", statistics.rejected)
        w.endObject()
        w.endObject()
        return w.bytes
    }
}

extension RingRange {
    /// The fraction of the ring this range covers (1 for a lone node).
    public var share: Double {
        if lower == upper { return 1 }
        let d = lower.distance(to: upper).bytes
        // The top 8 bytes are precise enough for a share.
        let top = d.prefix(8).reduce(0.0) { $0 * 256 + Double($1) }
        return top / pow(2, 64)
    }
}

/// The driver, once the ring started (shared with the anchor gossip).
final class DriverBox: Sendable {
    private let value = Mutex<ChordDriver?>(nil)
    func withLock<T>(_ body: (inout ChordDriver?) -> T) -> T { value.withLock { body(&$0) } }
}
