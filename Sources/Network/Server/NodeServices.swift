import FlowchainCrypto
import Foundation
import Ledger

/// Everything the server's handlers need from the node, in one place.
public final class NodeServices: Sendable {
    public let engine: IngestEngine
    public let store: LedgerStore
    public let feed: LiveFeed
    public let presence: DevicePresence
    public let metrics: NodeMetrics
    public let configuration: ServerConfiguration
    public let startedAt = Date()
    public let version: String
    /// Carries a reading's proof on to the anchor chain, when an anchor block commits it.
    public let anchorProof: @Sendable (ReadingProof) async -> ReadingProof.Portable?

    public init(engine: IngestEngine, feed: LiveFeed, metrics: NodeMetrics, configuration: ServerConfiguration, version: String,
                anchorProof: @escaping @Sendable (ReadingProof) async -> ReadingProof.Portable? = { _ in nil }) {
        self.anchorProof = anchorProof
        self.engine = engine
        store = engine.store
        self.feed = feed
        presence = DevicePresence()
        self.metrics = metrics
        self.configuration = configuration
        self.version = version
    }

    public var publicKey: PublicKey { engine.key.publicKey }

    /// True when `presented` grants writes (always, when no token is configured).
    public func mayWrite(presented: String?) -> Bool {
        guard let token = configuration.token else { return true }
        return presented.map { constantTimeEquals($0, token) } ?? false
    }

    public func mayRead(presented: String?) -> Bool {
        configuration.protectReads ? mayWrite(presented: presented) : true
    }

    /// Stores one submission and counts it; errors come back as the reason, never thrown past here.
    public func store(_ submission: ReadingWire.Submission, source: ReadingSource) async -> Result<Ack, IngestError> {
        let start = ContinuousClock.now
        do {
            let ack: Ack
            switch submission {
            case let .signed(reading):
                ack = try await engine.submit(reading)
            case let .unsigned(device, payload, time, synced):
                ack = try await engine.submitUnsigned(device: device, payload: payload, time: time, timeQuality: synced ? .synced : .unsynced, source: source)
            }
            metrics.ackLatency.recordNanoseconds(Int64((ContinuousClock.now - start).nanoseconds))
            return .success(ack)
        } catch {
            metrics.error(error.kind)
            return .failure(error)
        }
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
