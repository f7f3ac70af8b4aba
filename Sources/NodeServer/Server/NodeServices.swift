import FlowchainCrypto
import Foundation
import Hummingbird
import Ledger
import Logging
import CoreMetrics

/// Everything the server's handlers need from the node, in one place.
public final class NodeServices: Sendable {
    public let engine: IngestEngine
    /// Where readings go: the engine, or the ring's router (which forwards what others own).
    public let ingestPoint: any ReadingIngest
    /// The ring, when this node is part of one: answers `ring` and forwards device queries.
    public let ring: (any RingAccess)?
    /// The anchor chain (`anchor`, `stake`).
    public let anchorAccess: (any AnchorAccess)?
    public let store: LedgerStore
    public let feed: CommitFeed
    public let presence: DevicePresence
    public let metrics: NodeMetrics
    public let configuration: ServerConfiguration
    /// Connection limits and header timeouts at the edge, shared by every connection.
    let guardian: ConnectionGuard
    public let startedAt = Date()
    public let version: String
    public let logger: Logger
    /// The clock, in ms since the epoch.
    public let now: @Sendable () -> Int64
    /// Carries a reading's proof on to the anchor chain, when an anchor block commits it.
    /// The second argument asks for the anchor chain (blocks 1…anchor) to be carried too.
    public let anchorProof: @Sendable (ReadingProof, Bool) async -> ReadingProof.Portable?

    public init(engine: IngestEngine, metrics: NodeMetrics, configuration: ServerConfiguration, version: String,
                logger: Logger = Logger(label: "flowchain"), ingest: (any ReadingIngest)? = nil, ring: (any RingAccess)? = nil, anchor: (any AnchorAccess)? = nil,
                anchorProof: @escaping @Sendable (ReadingProof, Bool) async -> ReadingProof.Portable? = { _, _ in nil }) {
        self.logger = logger
        now = engine.now
        self.anchorProof = anchorProof
        self.engine = engine
        ingestPoint = ingest ?? engine
        self.ring = ring
        anchorAccess = anchor
        store = engine.store
        feed = engine.feed
        presence = DevicePresence()
        self.metrics = metrics
        self.configuration = configuration
        self.version = version
        let metrics = self.metrics
        guardian = ConnectionGuard(maxConnections: configuration.maxConnections, headerTimeout: .seconds(Int64(configuration.headerTimeout))) {
            metrics.error($0)
        }
    }

    public var publicKey: PublicKey { engine.key.publicKey }

    /// True when `presented` is the node's token, or no node token is configured: the credential
    /// for writing as any device that has no token of its own, and for registering devices.
    public func mayWrite(presented: String?) -> Bool {
        guard let token = configuration.token else { return true }
        return presented.map { constantTimeEquals($0, token) } ?? false
    }

    /// True when `presented` may write readings for `device`: its own token when it has one (the
    /// node's token too), otherwise the node's token (or anyone, when the node has none).
    public func mayWrite(device: String, presented: String?) async -> Bool {
        let record = try? await store.offload { try $0.deviceCredentials(device) }
        if let record, record.tokenHash != nil {
            if record.acceptsToken(presented) { return true }
            guard configuration.token != nil else { return false }
        }
        return mayWrite(presented: presented)
    }

    /// True when `presented` may register or re-key devices over the network: only the node's
    /// token, and only when one is configured.
    public func mayAdminister(presented: String?) -> Bool {
        configuration.token != nil && mayWrite(presented: presented)
    }

    public func mayRead(presented: String?) -> Bool {
        configuration.protectReads ? mayWrite(presented: presented) : true
    }

    /// A WebSocket route asked with plain HTTP (no `Upgrade: websocket`, e.g. curl): 426 saying
    /// what the route is, instead of an empty 200.
    static func requireWebSocket(_ request: Request) throws {
        guard request.headers[.upgrade]?.lowercased().contains("websocket") == true else {
            let path = request.uri.path
            throw HTTPError(.upgradeRequired, headers: [.upgrade: "websocket", .connection: "Upgrade"],
                            message: "\(path) is a WebSocket endpoint: connect with a WebSocket client (ws://HOST:PORT\(path)); docs/rpc.md")
        }
    }

    /// Refuses a WebSocket upgrade with `status` and a reason the client can read.
    func refuseUpgrade(_ context: ServerRequestContext, _ status: HTTPResponse.Status, _ message: String) -> HTTPError {
        guardian.recordRefusal(context.channel, status: Int(status.code), message: message)
        return HTTPError(status, message: message)
    }

    /// Stores submissions (in order, after `turn`) for a client that presented `token`, and counts
    /// them; each gets its outcome, in order. Items that failed to parse pass through as failures.
    public func ingest(_ items: [Result<Submission, IngestError>], presented token: String?, after turn: IngestTurn? = nil) async -> [Result<Ack, IngestError>] {
        let start = ContinuousClock.now
        var results: [Result<Ack, IngestError>?] = []
        results.reserveCapacity(items.count)
        var allowed: [String: Bool] = [:]
        for item in items {
            switch item {
            case let .failure(e): results.append(.failure(e))
            case let .success(s):
                let ok: Bool
                if let known = allowed[s.device] { ok = known } else {
                    ok = await mayWrite(device: s.device, presented: token)
                    allowed[s.device] = ok
                }
                results.append(ok ? nil : .failure(.unauthorized(device: s.device)))
            }
        }
        let admitted = zip(items, results).compactMap { item, result -> Submission? in
            guard result == nil, case let .success(s) = item else { return nil }
            return s
        }
        var outcomes = admitted.isEmpty ? [] : await ingestPoint.ingest(admitted, after: turn)[...]
        if admitted.isEmpty { turn?.finish() }
        for i in results.indices where results[i] == nil { results[i] = outcomes.popFirst() }
        let elapsed = Int64((ContinuousClock.now - start).nanoseconds)
        return results.map { result in
            let r = result ?? .failure(.malformed("no outcome"))
            switch r {
            case .success: metrics.ackLatency.recordNanoseconds(elapsed)
            case let .failure(e): metrics.error(e.kind)
            }
            return r
        }
    }

    /// One submission: its acknowledgement or why it was refused.
    public func ingest(_ submission: Submission, presented token: String?, after turn: IngestTurn? = nil) async -> Result<Ack, IngestError> {
        await ingest([.success(submission)], presented: token, after: turn)[0]
    }
}

func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<x.count { diff |= x[i] ^ y[i] }
    return diff == 0
}

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
