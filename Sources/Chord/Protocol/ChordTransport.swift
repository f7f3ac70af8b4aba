/// What carries envelopes between Chord nodes. The protocol state machine (`ChordNode`) does no
/// I/O: a driver feeds it received envelopes and fired timers and hands the envelopes it emits
/// to a transport. The simulator (`ChordSimulator`) and the WebSocket peer transport are the two.
///
/// A transport must authenticate the sending peer (for the peer transport, a handshake signed by
/// the peer's key) and report its id beside each envelope: `ChordNode.receive` refuses an envelope
/// whose claimed sender is not the authenticated one.
public protocol ChordTransport: AnyObject {
    /// Sends `envelope` to `peer`, best effort: delivery may fail silently (the request's timeout
    /// covers that).
    func send(_ envelope: ChordEnvelope, to peer: NodeRef)
}

/// Timers the state machine asks its driver to run. Periodic ones re-arm themselves when fired.
public enum ChordTimer: Hashable, Sendable {
    case stabilize
    case fixFingers
    case checkPredecessor
    /// The request with this id has had no response in time.
    case requestTimeout(UInt64)
    /// Retry a join that failed.
    case joinRetry
}
