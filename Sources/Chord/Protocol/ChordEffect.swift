/// What the state machine asks its driver to do, in order.
public enum ChordEffect: Sendable {
    case send(ChordEnvelope, to: NodeRef)
    case schedule(ChordTimer, afterMilliseconds: Int64)
    case event(ChordEvent)
}

/// What the state machine tells the application.
public enum ChordEvent: Sendable, Equatable {
    /// Joined a ring: the first successor is known. The key range follows with `rangeChanged`
    /// once a predecessor is known.
    case joined(successor: NodeRef)
    /// A join attempt failed; it is retried after `joinRetryDelay`.
    case joinFailed(LookupError)
    case lookupFinished(LookupToken, Result<LookupAnswer, LookupError>)
    /// This node's key range (predecessor, self] changed: the network layer moves data with it.
    case rangeChanged(RangeChange)
    /// Leaving gracefully: every key this node owned now belongs to `to`.
    case handOff(RingRange, to: NodeRef)
    /// An envelope was refused; the node carries on.
    case rejected(ChordInputError)
}

public enum RangeChange: Sendable, Equatable {
    /// This node now also owns `gained` (its predecessor failed, left, or it first learned it).
    case grew(gained: RingRange)
    /// `lost` now belongs to `to`, a node that joined just before this one.
    case shrank(lost: RingRange, to: NodeRef)
}

public struct LookupToken: Hashable, Sendable, CustomStringConvertible {
    public let value: UInt64
    public var description: String { "lookup#\(value)" }
}

public struct LookupAnswer: Sendable, Equatable {
    public let key: ChordID
    /// The live node that owns the key: successor(key).
    public let successor: NodeRef
    /// Nodes that answered a find-successor step (the paper's path length).
    public let hops: Int
    /// Peers that did not answer in time and were skipped.
    public let timeouts: Int
    /// Every request the lookup sent, confirmations included.
    public let messages: Int
}

public enum LookupError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Every candidate that could lead to the key failed or refused.
    case noRoute(key: ChordID, tried: Int)
    /// The step budget ran out (a loop, or a ring too damaged to route).
    case tooManySteps(key: ChordID, steps: Int)
    /// This node is not part of a ring.
    case notInRing

    public var description: String {
        switch self {
        case .noRoute(let k, let tried): "no route to the successor of \(k): \(tried) candidate(s) failed"
        case .tooManySteps(let k, let steps): "lookup of \(k) gave up after \(steps) steps"
        case .notInRing: "this node has not joined a ring"
        }
    }
}

/// Why an envelope was refused.
public enum ChordInputError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The envelope claims a sender other than the peer the transport authenticated.
    case impersonation(claimed: ChordID, actual: ChordID)
    /// A response to no request of ours, or from a peer other than the one asked.
    case unsolicitedResponse(from: ChordID, requestID: UInt64)
    /// A response of the wrong kind for its request.
    case unexpectedResponse(from: ChordID, requestID: UInt64)
    /// A leave notice from a node that is neither our predecessor nor our successor.
    case unexpectedLeave(from: ChordID)
    /// A list longer than any honest peer sends.
    case oversizedList(from: ChordID, count: Int)

    public var description: String {
        switch self {
        case .impersonation(let c, let a): "envelope claims sender \(c) but came from \(a)"
        case .unsolicitedResponse(let f, let r): "response #\(r) from \(f) answers no request sent to it"
        case .unexpectedResponse(let f, let r): "response #\(r) from \(f) is the wrong kind for its request"
        case .unexpectedLeave(let f): "leave notice from \(f), which is neither predecessor nor successor"
        case .oversizedList(let f, let n): "\(f) sent a list of \(n) nodes (at most \(ChordConfiguration.maxListLength))"
        }
    }
}
