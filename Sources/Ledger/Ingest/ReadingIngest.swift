/// The one way readings enter the ledger, as every source (WebSocket devices, RPC, MQTT, GPIO,
/// the demo feed) sees it. A lone node's is its `IngestEngine`; in a ring it is the peer network's
/// router, which stores what this node owns and forwards the rest to the device's owner, and
/// acknowledges a forwarded reading only once the owner did.
public protocol ReadingIngest: Sendable {
    /// Each submission's outcome, in order, once durable or refused. Submissions that share an
    /// `IngestOrder` keep their order per device.
    func ingest(_ submissions: [Submission], after turn: IngestTurn?) async -> [Result<Ack, IngestError>]
}

extension ReadingIngest {
    /// One submission's acknowledgement, or why it was refused.
    public func ingest(_ submission: Submission, after turn: IngestTurn? = nil) async throws(IngestError) -> Ack {
        try await ingest([submission], after: turn)[0].get()
    }
}

extension IngestEngine: ReadingIngest {}
