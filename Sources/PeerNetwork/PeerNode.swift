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
    private let pulling = Mutex(false)

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
        replicator = Replicator(store: engine.store, feed: engine.feed, transport: transport, factor: configuration.replicationFactor, logger: logger)
        router = RingRouter(engine: engine, counters: routing, logger: logger)
        router.replicator = configuration.ack == .replica ? replicator : nil
        if configuration.forwardQueueLimit > 0 {
            do {
                router.queue = try ForwardQueue(store: engine.store, limit: configuration.forwardQueueLimit, logger: logger, depth: routing.queueDepth)
            } catch {
                logger.error("forward queue unavailable (readings whose owner cannot be reached will be refused): \(error)")
            }
        }
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
        let replication = Task { await replicator.run(view: driver.view) }
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
                while await queue.drain(deliver: { await router.route($0, after: nil) }) > 0, !Task.isCancelled {}
            }
        }
        try? await gracefulShutdown()
        replication.cancel()
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

    // MARK: Queries

    /// Where a device query is answered.
    public enum QueryRoute: Sendable {
        /// By this node (it owns the device, or is alone).
        case local
        /// By the owner: the method's result (JSON).
        case answered([UInt8])
        /// The owner refused the query, as a JSON-RPC error.
        case refused(QueryError)
        /// No node that holds the device's readings could be asked.
        case unreachable(String)
        /// By this node, from these stores merged: its own chain (tag 0) and copies of other
        /// nodes' chains holding the device's readings.
        case stores([(tag: Int64, store: LedgerStore)])
    }

    /// Sends a query about `device` to its owner, unless this node owns it.
    public func route(method: String, params: [UInt8], device: String) async -> QueryRoute {
        guard let driver, !driver.view.alone else { return .local }
        let key = RingRouter.key(ofDevice: device)
        if driver.view.owns(key) { return merged(device) }
        switch await router.owner(of: key, driver: driver) {
        case let .failure(e):
            return .unreachable("no route to the owner of device \(device): \(e)")
        case let .success(owner) where owner.id == transport.id:
            return merged(device)
        case let .success(owner):
            let first = await ask(owner, method: method, params: params, segment: nil)
            guard case let .unreachable(why) = first else { return first }
            router.forget(owner: owner.id)
            // The owner is down: its successors keep copies of its chain.
            guard case let .success(found) = await driver.lookup(owner.id &+ ChordID(1)), found.successor.id != owner.id else {
                return .unreachable("owner \(owner.address) of device \(device): \(why); no replica found")
            }
            let next = found.successor
            if next.id == transport.id {
                guard let copy = replicas.owners().first(where: { ChordID.hashing($0.bytes) == owner.id }),
                      let store = try? replicas.store(for: copy, create: false) else {
                    return .unreachable("owner \(owner.address) of device \(device): \(why); this node holds no copy of its chain")
                }
                return .stores([(Self.tag(copy), store)])
            }
            let second = await ask(next, method: method, params: params, segment: owner.id)
            if case let .unreachable(why2) = second { return .unreachable("owner \(owner.address) of device \(device): \(why); its replica \(next.address): \(why2)") }
            return second
        }
    }

    private func ask(_ node: NodeRef, method: String, params: [UInt8], segment: ChordID?) async -> QueryRoute {
        var w = JSONWriter()
        w.beginObject(); w.field("method", method); w.key("params"); w.raw(params)
        if let segment { w.field("segment", segment.hex) }
        w.endObject()
        do {
            let c = try await transport.connection(to: node)
            switch await c.request(.query, w.bytes, timeout: .seconds(10)) {
            case let .success(body): return .answered(body)
            case let .failure(.refused(_, text)):
                let v = try? JSONValue(parsing: Array(text.utf8))
                return .refused(QueryError(code: Int(v?["code"]?.int64Value ?? -32603), message: v?["message"]?.stringValue ?? text))
            case let .failure(e):
                return .unreachable("\(e)")
            }
        } catch {
            return .unreachable("\(error)")
        }
    }

    /// Where the node that owns `device` answers from: its own chain (tag 0), merged with the
    /// copies of other nodes' chains that hold readings of the device (their owner failed or
    /// left, and this node took its keys over). Empty: its own chain alone.
    func storesHolding(_ device: String) -> [(tag: Int64, store: LedgerStore)] {
        var out: [(tag: Int64, store: LedgerStore)] = []
        for owner in replicas.owners() {
            if let s = try? replicas.store(for: owner, create: false), (try? s.lastSeq(device: device)) ?? nil != nil { out.append((Self.tag(owner), s)) }
        }
        return out.isEmpty ? [] : [(0, router.engine.store)] + out
    }

    private func merged(_ device: String) -> QueryRoute {
        let stores = storesHolding(device)
        return stores.isEmpty ? .local : .stores(stores)
    }

    /// Every copy of another node's chain this node keeps, tagged.
    public func copies() -> [(tag: Int64, store: LedgerStore)] {
        replicas.owners().compactMap { owner in (try? replicas.store(for: owner, create: false)).flatMap { $0.map { (Self.tag(owner), $0) } } }
    }

    /// Asks the nodes this one knows, nearest first, until one answers (a reading by id that no
    /// chain here holds). At most 16 are asked.
    public func find(method: String, params: [UInt8]) async -> QueryRoute {
        guard let driver, !driver.view.alone else { return .local }
        var lastRefusal: QueryRoute = .refused(QueryError(code: -32004, message: "not found anywhere in the ring"))
        var unreachable: [String] = []
        for node in await driver.status().known.dropFirst().prefix(16) {
            switch await ask(node, method: method, params: params, segment: nil) {
            case let .answered(body): return .answered(body)
            case let .unreachable(why): unreachable.append("\(node.address): \(why)")
            case let other: lastRefusal = other
            }
        }
        if case let .refused(e) = lastRefusal, e.code == -32004, !unreachable.isEmpty {
            return .unreachable("not found at the nodes that answered; \(unreachable.joined(separator: "; "))")
        }
        return lastRefusal
    }

    /// A copy's tag in merged cursors: 1 + 20 bits of its owner's key (its own chain is 0).
    static func tag(_ owner: PublicKey) -> Int64 {
        let b = owner.bytes
        return 1 + (Int64(b[0]) << 12 | Int64(b[1]) << 4 | Int64(b[2]) >> 4)
    }

    /// The highest seq of `device` in the copies of other nodes' chains: where this node's
    /// numbering continues after the device's keys moved to it.
    public func replicatedLastSeq(_ device: String) -> UInt64? {
        var best: UInt64? = nil
        for owner in replicas.owners() {
            if let s = try? replicas.store(for: owner, create: false), let seq = (try? s.lastSeq(device: device)) ?? nil { best = max(best ?? 0, seq) }
        }
        return best
    }

    /// This node's key range grew: the readings of its new keys may be in its successor's chain
    /// (committed there while this node was away, or before it joined). It pulls a copy of that
    /// chain, so its answers and its numbering include them. One pull at a time.
    func takeOver() async {
        guard let driver else { return }
        guard let successor = driver.view.successors.first, successor.id != transport.id else { return driver.view.release() }
        guard pulling.withLock({ p in defer { p = true }; return !p }) else { return }
        defer {
            pulling.withLock { $0 = false }
            driver.view.release()
        }
        do {
            let c = try await transport.connection(to: successor)
            // The successor gives the keys up when it takes this node as its predecessor; what it
            // committed for them until then must be in the copy before this node numbers them.
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline {
                if case let .success(body) = await c.request(.ring, [], timeout: .seconds(2)),
                   let v = try? JSONValue(parsing: body), v["predecessor"]?["id"]?.stringValue == transport.id.hex { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .milliseconds(300))  // its commits already under way land
            guard let store = try replicas.store(for: c.peer.key, create: true) else { return }
            var pulled = 0
            while true {
                let here = try store.replicaPosition()
                var w = BinaryWriter(capacity: 16)
                w.i64(here.position); w.i64(here.height.map { Int64($0) } ?? -1)
                let body = try await c.request(.pull, w.bytes, timeout: .seconds(30)).get()
                let batch = try ReplicationCodec.decodeRequest(body)
                if batch.readings.isEmpty, batch.blocks.isEmpty { break }
                _ = try await store.appendReplica(readings: batch.readings, blocks: batch.blocks)
                await router.engine.raiseSeqs(Self.newestSeqs(batch.readings.map(\.reading)))
                pulled += batch.readings.count
            }
            await router.engine.raiseSeqsToFloors()
            if pulled > 0 { logger.info("took over keys from \(successor.address): copied \(pulled) reading(s) of its chain") }
        } catch {
            logger.warning("could not copy the chain of \(successor.address) after taking keys over: \(error)")
        }
    }

    /// The highest seq per device among `readings`.
    static func newestSeqs(_ readings: [Reading]) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for r in readings where r.seq > out[r.device] ?? 0 { out[r.device] = r.seq }
        return out
    }

    /// Serves `pull`: this node's own chain after the position asked for.
    private func servePull(_ body: [UInt8]) async -> (PeerStatus, [UInt8]) {
        do {
            var r = BinaryReader(body)
            let position = try r.i64("position"), height = try r.i64("height")
            try r.finish()
            let batch = try await router.engine.store.offload { try $0.replicationBatch(after: position, height: height < 0 ? nil : UInt64(height), limit: 2000) }
            return (.ok, ReplicationCodec.encode(expected: position, readings: batch.readings, blocks: batch.blocks))
        } catch {
            return (.error, Array("\(error)".utf8))
        }
    }

    private func serveReplicate(_ body: [UInt8], from connection: PeerConnection) async -> (PeerStatus, [UInt8]) {
        do {
            let request = try ReplicationCodec.decodeRequest(body)
            // Only asked where it is: a replica not yet holding anything gets no file for nothing.
            guard let store = try replicas.store(for: connection.peer.key, create: request.expected >= 0) else {
                return (.ok, ReplicationCodec.encode(.init(position: 0, height: nil)))
            }
            let here = try store.replicaPosition()
            guard request.expected >= 0, request.expected == here.position else { return (.ok, ReplicationCodec.encode(here)) }
            let position = try await store.appendReplica(readings: request.readings, blocks: request.blocks)
            await router.engine.raiseSeqs(Self.newestSeqs(request.readings.map(\.reading)))
            return (.ok, ReplicationCodec.encode(position))
        } catch {
            logger.warning("refused a replication batch from \(connection.name): \(error)")
            return (.error, Array("\(error)".utf8))
        }
    }

    private func serveQuery(_ body: [UInt8]) async -> (PeerStatus, [UInt8]) {
        guard let v = try? JSONValue(parsing: body), let method = v["method"]?.stringValue, let params = v["params"] else {
            return (.error, Array(#"{"code":-32600,"message":"malformed forwarded query"}"#.utf8))
        }
        var w = JSONWriter()
        w.value(params)
        var stores: [(tag: Int64, store: LedgerStore)] = []
        if let segment = v["segment"]?.stringValue {
            // Asked as a replica: answer from the copy of that node's chain.
            guard let owner = replicas.owners().first(where: { ChordID.hashing($0.bytes).hex == segment }),
                  let s = try? replicas.store(for: owner, create: false) else {
                return (.error, Array(#"{"code":-32011,"message":"this node holds no copy of that node's chain"}"#.utf8))
            }
            stores = [(Self.tag(owner), s)]
        } else if method == "reading" || method == "proof" {
            stores = [(0, router.engine.store)] + copies()
        } else if let device = params["device"]?.stringValue {
            stores = storesHolding(device)
        }
        switch await localQuery(method, w.bytes, stores) {
        case let .success(result): return (.ok, result)
        case let .failure(e):
            var w = JSONWriter()
            w.beginObject(); w.field("code", e.code); w.field("message", e.message); w.endObject()
            return (.error, w.bytes)
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
