/// The requests one Chord node sends another. Every request gets exactly one response with the
/// same request id, or none (then the sender's per-request timeout fires).
public enum ChordRequest: Hashable, Sendable {
    /// One step of an iterative lookup: "what do you know about the successor of `key`?"
    case findSuccessor(key: ChordID)
    /// Stabilization: "who is your predecessor, and what is your successor list?"
    case neighbours
    /// "I might be your predecessor."
    case notify
    /// Liveness (check_predecessor, and a lookup confirming its answer).
    case ping
    /// Graceful leave: the sender leaves the ring. Its predecessor and successor list let the
    /// receiver repair its own pointers at once.
    case leaving(predecessor: NodeRef?, successors: [NodeRef])
}

public enum ChordResponse: Hashable, Sendable {
    /// The answer to `findSuccessor`: the responder's successor list (its view of the ring just
    /// after itself) and its closest fingers preceding the key, closest first.
    case step(successors: [NodeRef], closer: [NodeRef])
    case neighbours(predecessor: NodeRef?, successors: [NodeRef])
    case ack
    /// The responder refused the request (e.g. it has not joined a ring yet).
    case refused(String)
}

public enum ChordPayload: Hashable, Sendable {
    case request(ChordRequest)
    case response(ChordResponse)
}

/// What travels between peers: who claims to send it, a request id that pairs a response with
/// its request, and the payload.
public struct ChordEnvelope: Hashable, Sendable {
    public var sender: NodeRef
    public var requestID: UInt64
    public var payload: ChordPayload

    public init(sender: NodeRef, requestID: UInt64, payload: ChordPayload) {
        self.sender = sender
        self.requestID = requestID
        self.payload = payload
    }
}
