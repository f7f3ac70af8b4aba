/// Tunables of one Chord node. Periods and timeouts are milliseconds of whatever clock the
/// driver runs (virtual in the simulator, monotonic in a node).
public struct ChordConfiguration: Hashable, Sendable {
    /// Successors each node keeps (the paper's r). 2·log2 N tolerates half the nodes failing at once.
    public var successorListLength = 8
    public var stabilizeInterval: Int64 = 1_000
    public var fixFingersInterval: Int64 = 500
    public var checkPredecessorInterval: Int64 = 2_000
    /// Each period is drawn uniformly from period·(1 ± jitter), so nodes do not synchronise.
    public var jitter = 0.2
    /// How long one attempt of a request may go unanswered.
    public var requestTimeout: Int64 = 500
    /// Attempts after the first before the peer counts as failed. The peer transport runs over TCP
    /// and loses nothing on a live connection, but a datagram network or the simulator's lossy
    /// links can drop a message without the peer having failed.
    public var requestRetries = 1
    /// Findsuccessor queries one lookup may send before it gives up (a loop or a hostile ring
    /// cannot keep it going longer).
    public var maxLookupSteps = 64
    /// Fingers a node returns per lookup step, closest to the key first: the asker's fallbacks.
    public var closerCandidates = 3
    /// Confirm a lookup's answer is alive (one ping) before reporting it. Costs one round trip;
    /// without it a lookup run before stabilization can return a crashed node.
    public var confirmLookups = true
    public var joinRetryDelay: Int64 = 2_000
    /// Every this many stabilization rounds a node looks itself up through a node it met before,
    /// to find a ring it split from (0: never; an isolated node checks every round regardless).
    public var consistencyCheckRounds = 10
    /// Largest list a peer may send; longer ones are refused as malformed.
    public static let maxListLength = 64

    public init() {}

    /// Validates the numbers, naming the one that is wrong.
    public func validate() throws(ChordConfigurationError) {
        guard (1...Self.maxListLength).contains(successorListLength) else {
            throw .init("successor list length must be 1…\(Self.maxListLength), not \(successorListLength)")
        }
        for (name, v) in [("stabilize interval", stabilizeInterval), ("fix-fingers interval", fixFingersInterval),
                          ("check-predecessor interval", checkPredecessorInterval), ("request timeout", requestTimeout),
                          ("join retry delay", joinRetryDelay)] where v <= 0 {
            throw .init("\(name) must be positive, not \(v) ms")
        }
        guard consistencyCheckRounds >= 0 else { throw .init("consistency check rounds must be 0 or more, not \(consistencyCheckRounds)") }
        guard (0...10).contains(requestRetries) else { throw .init("request retries must be 0…10, not \(requestRetries)") }
        guard (0...0.9).contains(jitter) else { throw .init("jitter must be within 0…0.9, not \(jitter)") }
        guard (1...1_000).contains(maxLookupSteps) else { throw .init("max lookup steps must be 1…1000, not \(maxLookupSteps)") }
        guard (1...Self.maxListLength).contains(closerCandidates) else {
            throw .init("closer candidates must be 1…\(Self.maxListLength), not \(closerCandidates)")
        }
    }
}

public struct ChordConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
