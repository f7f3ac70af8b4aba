import Ledger

/// What travels on an authenticated peer connection, one binary WebSocket message each:
///
///     kind u8 · body
///     1 chord     ChordWire envelope (Chord pairs its own requests and responses)
///     2 request   id u64 · method u8 · body
///     3 response  id u64 · status u8 · body
///
/// Requests are answered by a response with the same id, or by none (the asker's timeout then
/// fires). Bodies are method-specific (see `PeerMethod`); an error response's body is UTF-8 text.
public enum PeerFrame: Sendable, Equatable {
    case chord([UInt8])
    case request(id: UInt64, method: PeerMethod, body: [UInt8])
    case response(id: UInt64, status: PeerStatus, body: [UInt8])

    /// Largest frame a peer may send (a forwarded batch of 4,096 readings fits with room).
    public static let maxBytes = 8 << 20

    public var encoded: [UInt8] {
        var w = BinaryWriter()
        switch self {
        case let .chord(bytes):
            w.u8(1); w.fixed(bytes)
        case let .request(id, method, body):
            w.u8(2); w.u64(id); w.u8(method.rawValue); w.fixed(body)
        case let .response(id, status, body):
            w.u8(3); w.u64(id); w.u8(status.rawValue); w.fixed(body)
        }
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws(PeerProtocolError) {
        guard let kind = bytes.first else { throw .malformed("an empty frame") }
        func header() throws(PeerProtocolError) -> (UInt64, UInt8) {
            guard bytes.count >= 10 else { throw .malformed("a \(kind == 2 ? "request" : "response") frame of \(bytes.count) bytes is shorter than its 10-byte header") }
            return (bytes[1..<9].reduce(0) { $0 << 8 | UInt64($1) }, bytes[9])
        }
        switch kind {
        case 1:
            self = .chord(Array(bytes.dropFirst()))
        case 2:
            let (id, raw) = try header()
            guard let method = PeerMethod(rawValue: raw) else { throw .unknownMethod(id: id, raw) }
            self = .request(id: id, method: method, body: Array(bytes.dropFirst(10)))
        case 3:
            let (id, raw) = try header()
            guard let status = PeerStatus(rawValue: raw) else { throw .malformed("response #\(id) has unknown status \(raw)") }
            self = .response(id: id, status: status, body: Array(bytes.dropFirst(10)))
        default:
            throw .malformed("unknown frame kind \(kind)")
        }
    }
}

/// What a peer may ask of another besides Chord.
public enum PeerMethod: UInt8, Sendable, CustomStringConvertible {
    /// Store readings this node owns (forwarded by the node they entered at).
    case ingest = 1
    /// Answer a device query as the device's owner (a JSON-RPC method and its params).
    case query = 2
    /// The genesis file this node follows (for a node joining without one).
    case genesis = 3
    /// This node's view of the ring (JSON), for `flowchain ring` asked elsewhere.
    case ring = 4
    /// Keep a copy of the sender's segment chain: readings and blocks after a position.
    case replicate = 5
    /// Send me your own segment chain after a position (a node taking keys over from its successor).
    case pull = 6
    /// An anchor block (gossip).
    case anchorBlock = 7
    /// Active anchor blocks after a height, for a node catching up.
    case anchorSync = 8
    /// A node's newest segment head, for minters to commit (gossip).
    case segmentHead = 9
    /// A signed stake record, for minters to carry (gossip).
    case stakeRecord = 10
    /// Keep a copy of another node's chain (its owner is gone): owner key (32) · as `replicate`.
    case replicateCopy = 11

    public var description: String {
        switch self {
        case .ingest: "ingest"
        case .query: "query"
        case .genesis: "genesis"
        case .ring: "ring"
        case .replicate: "replicate"
        case .pull: "pull"
        case .anchorBlock: "anchor block"
        case .anchorSync: "anchor sync"
        case .segmentHead: "segment head"
        case .stakeRecord: "stake record"
        case .replicateCopy: "replicate copy"
        }
    }
}

public enum PeerStatus: UInt8, Sendable {
    case ok = 0
    /// The request was understood and refused; the body says why.
    case error = 1
    /// The method is not one this node serves.
    case unknownMethod = 2
}

/// A broken rule of the peer protocol: the connection is closed, the node carries on.
public enum PeerProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed(String)
    case unknownMethod(id: UInt64, UInt8)

    public var description: String {
        switch self {
        case let .malformed(why): "peer protocol: \(why)"
        case let .unknownMethod(id, raw): "peer protocol: request #\(id) names unknown method \(raw)"
        }
    }
}

/// Why a request to a peer got no answer.
public enum PeerRequestError: Error, Sendable, Equatable, CustomStringConvertible {
    case timedOut(peer: String, method: PeerMethod, after: Duration)
    case connectionClosed(peer: String)
    /// Too much is already waiting to be sent to this peer: it is not keeping up.
    case backlogged(peer: String, queued: Int)
    case refused(peer: String, String)
    case unreachable(String)

    public var description: String {
        switch self {
        case let .timedOut(peer, method, after): "peer \(peer) did not answer \(method) within \(after)"
        case let .connectionClosed(peer): "the connection to peer \(peer) closed"
        case let .backlogged(peer, queued): "peer \(peer) is not keeping up (\(queued) frames queued for it)"
        case let .refused(peer, why): "peer \(peer) refused: \(why)"
        case let .unreachable(why): why
        }
    }
}
