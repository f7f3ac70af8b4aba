import Chord
import FlowchainCrypto
import Foundation
import Ledger
import Logging
import NIOCore
import NIOSSL
import Synchronization
import WSClient

/// The node's peer connections on `ws /peer`: accepts them, dials them (with backoff after a
/// failure), authenticates both sides with the handshake, and keeps one connection per peer
/// pair. When both nodes dial each other at once, both keep the connection opened by the node
/// with the smaller id and close the other.
public final class PeerTransport: Sendable {
    public struct Configuration: Sendable {
        public var handshakeTimeout: Duration = .seconds(5)
        /// Frames queued for one peer before further sends fail.
        public var maxQueuedFrames = 4096
        /// A peer's requests served at once on one connection.
        public var maxInFlight = 64
        /// Backoff after a failed dial: doubles from `minBackoff` up to `maxBackoff`.
        public var minBackoff: Duration = .milliseconds(200)
        public var maxBackoff: Duration = .seconds(10)
        /// Dial peers with `wss://` (every node of the ring then serves TLS).
        public var tls = false
        /// Check a peer's certificate chain against this CA (PEM). Without it the connection is
        /// encrypted but the certificate is not checked: a peer's identity is its Ed25519 key,
        /// proved in the handshake either way.
        public var caFile: String? = nil
        public init() {}
    }

    /// What a connection hands up: Chord envelopes, and requests for the node to serve.
    public struct Handlers: Sendable {
        public var chord: @Sendable (ChordEnvelope, PeerConnection) async -> Void
        public var serve: @Sendable (PeerMethod, [UInt8], PeerConnection, IngestTurn) async -> (PeerStatus, [UInt8])
        public init(chord: @escaping @Sendable (ChordEnvelope, PeerConnection) async -> Void,
                    serve: @escaping @Sendable (PeerMethod, [UInt8], PeerConnection, IngestTurn) async -> (PeerStatus, [UInt8])) {
            self.chord = chord
            self.serve = serve
        }
    }

    public let key: PrivateKey
    public let id: ChordID
    let configuration: Configuration
    let logger: Logger
    let counters: PeerCounters

    private struct State {
        var address = ""
        var genesis: Digest32?
        var chainID: String?
        var handlers: Handlers?
        var connections: [ChordID: PeerConnection] = [:]
        /// Dials under way, by address, so concurrent senders share one.
        var dialing: [String: Task<PeerConnection, any Error>] = [:]
        var backoff: [String: (failures: Int, until: ContinuousClock.Instant, why: String)] = [:]
        var closed = false
    }
    private let state: Mutex<State>

    public init(key: PrivateKey, genesis: Digest32?, chainID: String?, configuration: Configuration = .init(),
                counters: PeerCounters = .init(), logger: Logger) {
        self.key = key
        id = ChordID.hashing(key.publicKey.bytes)
        self.configuration = configuration
        self.logger = logger
        self.counters = counters
        state = Mutex(State(genesis: genesis, chainID: chainID))
    }

    /// Where peers reach this node (host:port), once the server listens.
    public var address: String {
        get { state.withLock { $0.address } }
        set { state.withLock { $0.address = newValue } }
    }

    public var me: NodeRef { NodeRef(id: id, address: address) }

    public func setHandlers(_ handlers: Handlers) { state.withLock { $0.handlers = handlers } }

    public var connections: [PeerConnection] { state.withLock { Array($0.connections.values) } }

    var runner: HandshakeRunner {
        let s = state.withLock { ($0.genesis, $0.chainID, $0.address) }
        return HandshakeRunner(key: key, genesis: s.0, chainID: s.1, address: s.2, timeout: configuration.handshakeTimeout)
    }

    // MARK: Accepting

    /// Serves one upgraded `/peer` WebSocket until it closes.
    public func accept(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, remote: String) async {
        let channel = PeerChannel(inbound: inbound, outbound: outbound, maxMessage: PeerFrame.maxBytes)
        let outcome: HandshakeRunner.Outcome
        do {
            outcome = try await runner.respond(channel)
        } catch {
            counters.handshakeFailed()
            logger.warning("peer connection from \(remote) refused: \(error)")
            return
        }
        await serve(PeerConnection(peer: outcome.remote, initiated: false, channel: channel, logger: logger,
                                   maxQueued: configuration.maxQueuedFrames, maxInFlight: configuration.maxInFlight))
    }

    // MARK: Dialing

    /// The connection to the peer at `address`, dialing it if there is none. When `expected` is
    /// given, the peer must hold that id (else the connection is refused).
    public func connection(to address: String, expected: ChordID? = nil) async throws -> PeerConnection {
        enum Step { case have(PeerConnection), wait(Task<PeerConnection, any Error>), backingOff(String) }
        let step = state.withLock { s -> Step in
            if let expected, let c = s.connections[expected], !c.isClosed { return .have(c) }
            if expected == nil, let c = s.connections.values.first(where: { $0.peer.address == address && !$0.isClosed }) { return .have(c) }
            if let d = s.dialing[address] { return .wait(d) }
            if let b = s.backoff[address], b.until > .now { return .backingOff(b.why) }
            let task = Task { try await self.dial(address) }
            s.dialing[address] = task
            return .wait(task)
        }
        switch step {
        case let .have(c): return c
        case let .backingOff(why): throw PeerRequestError.unreachable("peer \(address) is unreachable (\(why)); retrying later")
        case let .wait(task):
            let c = try await task.value
            if let expected, c.id != expected {
                throw PeerRequestError.unreachable("peer \(address) now holds id \(c.id), not \(expected)")
            }
            return c
        }
    }

    /// The connection to `peer`, by its id and address.
    public func connection(to peer: NodeRef) async throws -> PeerConnection {
        guard !peer.address.isEmpty else { throw PeerRequestError.unreachable("peer \(peer.id) has no address") }
        return try await connection(to: peer.address, expected: peer.id)
    }

    private func dial(_ address: String) async throws -> PeerConnection {
        let (ready, readyInput) = AsyncStream.makeStream(of: Result<PeerConnection, any Error>.self, bufferingPolicy: .bufferingNewest(1))
        let runner = self.runner
        let logger = self.logger
        var config = WebSocketClientConfiguration()
        // The largest frame this side accepts from the peer's server (which frames its messages
        // at its own --max-frame). This side sends frames of `PeerChannel.fragment` bytes.
        config.maxFrameSize = PeerFrame.maxBytes
        config.closeTimeout = .seconds(2)
        var tls: TLSConfiguration? = nil
        if configuration.tls {
            var t = TLSConfiguration.makeClientConfiguration()
            if let ca = configuration.caFile {
                t.trustRoots = .file(ca)
                t.certificateVerification = .noHostnameVerification
            } else {
                t.certificateVerification = .none
            }
            tls = t
        }
        // TLS's server name cannot be an IP address; peers are usually reached by one, and the
        // name is not checked (see `caFile`), so any name does.
        if configuration.tls { config.sniHostname = "flowchain-peer" }
        let scheme = configuration.tls ? "wss" : "ws"
        Task { [tls] in
            do {
                try await WebSocketClient.connect(url: "\(scheme)://\(address)/peer", configuration: config, tlsConfiguration: tls, logger: logger) { inbound, outbound, _ in
                    let channel = PeerChannel(inbound: inbound, outbound: outbound, maxMessage: PeerFrame.maxBytes)
                    let outcome: HandshakeRunner.Outcome
                    do {
                        outcome = try await runner.initiate(channel)
                    } catch {
                        readyInput.yield(.failure(error))
                        return
                    }
                    let c = PeerConnection(peer: outcome.remote, initiated: true, channel: channel, logger: logger,
                                           maxQueued: self.configuration.maxQueuedFrames, maxInFlight: self.configuration.maxInFlight)
                    await self.serve(c) { readyInput.yield(.success($0)) }
                }
                readyInput.yield(.failure(PeerRequestError.connectionClosed(peer: address)))
            } catch {
                readyInput.yield(.failure(error))
            }
        }
        var result: Result<PeerConnection, any Error> = .failure(PeerRequestError.unreachable("peer \(address): no connection"))
        // Connecting, upgrading and the handshake together have a deadline (a server that never
        // answers the upgrade, e.g. TLS on one side only, would otherwise hold the dial forever).
        let limit = configuration.handshakeTimeout * 2
        let timer = Task {
            try? await Task.sleep(for: limit)
            if !Task.isCancelled { readyInput.yield(.failure(PeerRequestError.unreachable("peer \(address): no answer to the connection within \(limit) (is it a Flowchain node, and do both sides agree on TLS?)"))) }
        }
        for await r in ready { result = r; break }
        timer.cancel()
        state.withLock { s in
            s.dialing[address] = nil
            switch result {
            case .success: s.backoff[address] = nil
            case let .failure(error):
                let failures = (s.backoff[address]?.failures ?? 0) + 1
                let delay = min(configuration.maxBackoff, configuration.minBackoff * (1 << min(failures - 1, 16)))
                s.backoff[address] = (failures, .now + delay, Self.describe(error))
            }
        }
        switch result {
        case let .success(c): return c
        case let .failure(error):
            counters.dialFailed()
            if error is PeerHandshakeError { counters.handshakeFailed() }
            throw error
        }
    }

    static func describe(_ error: any Error) -> String {
        String(describing: error)
    }

    // MARK: Running connections

    /// Registers a connection and runs it until it closes. `ready` hears the connection this
    /// node should use for the peer (this one, or the one kept when both dialed at once).
    private func serve(_ c: PeerConnection, ready: @Sendable (PeerConnection) -> Void = { _ in }) async {
        enum Registration { case kept(Handlers?), lost(PeerConnection), closed }
        let registration = state.withLock { s -> Registration in
            guard !s.closed else { return .closed }
            if let old = s.connections[c.id], !old.isClosed {
                // Both dialed: keep the connection the node with the smaller id opened. Two from
                // the same side: the peer reconnected, and the newer one is kept.
                let oldInitiator = old.initiated ? id : old.id
                let newInitiator = c.initiated ? id : c.id
                if oldInitiator < newInitiator { return .lost(old) }
                old.close()
            }
            s.connections[c.id] = c
            return .kept(s.handlers)
        }
        switch registration {
        case .closed:
            c.close()
        case let .lost(kept):
            c.close()
            ready(kept)
        case let .kept(handlers):
            counters.connected()
            logger.info("peer \(c.name) connected (\(c.initiated ? "dialed" : "accepted"), id \(c.id))")
            ready(c)
            let h = handlers ?? Handlers(chord: { _, _ in }, serve: { _, _, _, _ in (.error, Array("not ready".utf8)) })
            await c.run(chord: h.chord, serve: h.serve)
            state.withLock { s in if s.connections[c.id] === c { s.connections[c.id] = nil } }
            counters.disconnected()
            logger.info("peer \(c.name) disconnected")
        }
    }

    /// Closes every connection; no new ones are kept.
    public func shutdown() {
        let all = state.withLock { s -> [PeerConnection] in
            s.closed = true
            return Array(s.connections.values)
        }
        for c in all { c.close() }
    }
}

/// Counters the node's metrics read.
public struct PeerCounters: Sendable {
    public var connected: @Sendable () -> Void
    public var disconnected: @Sendable () -> Void
    public var dialFailed: @Sendable () -> Void
    public var handshakeFailed: @Sendable () -> Void
    public init(connected: @escaping @Sendable () -> Void = {}, disconnected: @escaping @Sendable () -> Void = {},
                dialFailed: @escaping @Sendable () -> Void = {}, handshakeFailed: @escaping @Sendable () -> Void = {}) {
        self.connected = connected
        self.disconnected = disconnected
        self.dialFailed = dialFailed
        self.handshakeFailed = handshakeFailed
    }
}
