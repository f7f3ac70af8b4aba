import Chord
import FlowchainCrypto
import FlowchainWire
import Foundation
import Ledger

/// What each side of a peer connection says first: who it is (its key; its Chord id is SHA-1 of
/// it), a fresh nonce, the genesis it follows (none yet: it will adopt its first peer's) and where
/// it listens.
public struct PeerHello: Sendable, Equatable {
    public static let version = 1
    public let key: PublicKey
    public let nonce: [UInt8]
    /// SHA-256 of the genesis encoding, and its chain id (the ring's network name); nil for a node
    /// started without a genesis.
    public let genesis: Digest32?
    public let chainID: String?
    /// host:port where the node accepts peers ("" when it does not).
    public let address: String

    public init(key: PublicKey, nonce: [UInt8], genesis: Digest32?, chainID: String?, address: String) {
        self.key = key
        self.nonce = nonce
        self.genesis = genesis
        self.chainID = chainID
        self.address = address
    }

    /// A hello with a fresh 32-byte nonce.
    public static func fresh(key: PublicKey, genesis: Digest32?, chainID: String?, address: String) throws -> PeerHello {
        PeerHello(key: key, nonce: try SecureRandom.bytes(32), genesis: genesis, chainID: chainID, address: address)
    }

    public var id: ChordID { ChordID.hashing(key.bytes) }

    /// The bytes both signatures cover, in a fixed order (never JSON).
    var transcriptPart: [UInt8] {
        var out: [UInt8] = [UInt8(Self.version)]
        out += key.bytes
        out += nonce
        out += genesis.map { [1] + $0.bytes } ?? [0]
        for text in [chainID ?? "", address] {
            let utf8 = Array(text.utf8.prefix(255))
            out.append(UInt8(utf8.count))
            out += utf8
        }
        return out
    }

    public var json: [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.field("type", "hello")
        w.field("version", Self.version)
        w.field("key", key.hex)
        w.field("nonce", Hex.encode(nonce))
        if let genesis { w.field("genesis", genesis.hex) }
        if let chainID { w.field("chainID", chainID) }
        w.field("address", address)
        w.endObject()
        return w.bytes
    }

    public init(json bytes: [UInt8]) throws(PeerHandshakeError) {
        guard let v = try? JSONValue(parsing: bytes), v["type"] == "hello" else { throw .malformed("not a hello message") }
        guard let version = v["version"]?.int64Value else { throw .malformed("hello: 'version' missing") }
        guard version == Int64(Self.version) else { throw .malformed("hello version \(version), this node speaks \(Self.version)") }
        guard let keyHex = v["key"]?.stringValue, let keyBytes = Hex.decode(keyHex), let key = try? PublicKey(bytes: keyBytes), key.isAcceptable else {
            throw .malformed("hello: 'key' is not an acceptable Ed25519 public key")
        }
        guard let nonceHex = v["nonce"]?.stringValue, let nonce = Hex.decode(nonceHex), nonce.count == 32 else { throw .malformed("hello: 'nonce' is not 32 bytes of hex") }
        var genesis: Digest32? = nil
        if let g = v["genesis"] {
            guard let text = g.stringValue, let d = Digest32(hex: text) else { throw .malformed("hello: 'genesis' is not a SHA-256 in hex") }
            genesis = d
        }
        let chainID = v["chainID"]?.stringValue
        guard let address = v["address"]?.stringValue, address.utf8.count <= 255, chainID.map({ $0.utf8.count <= 255 }) ?? true else {
            throw .malformed("hello: 'address' missing, or a field over 255 bytes")
        }
        self.init(key: key, nonce: nonce, genesis: genesis, chainID: chainID, address: address)
    }
}

public enum PeerHandshakeError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed(String)
    /// The signature does not prove the key the hello names (a forged id, a replayed handshake).
    case badProof(String)
    case foreignGenesis(String)
    case connectedToItself
    case noGenesis
    /// The peer ended the handshake and said why.
    case refusedByPeer(String)
    case timedOut(Duration)

    public var description: String {
        switch self {
        case let .malformed(why): "peer handshake: \(why)"
        case let .badProof(why): "peer handshake: \(why)"
        case let .foreignGenesis(why): why
        case .connectedToItself: "peer handshake: the peer is this node itself (same key)"
        case .noGenesis: "peer handshake: neither node has a genesis; start one of them with --genesis or let it create its own"
        case let .refusedByPeer(why): "the peer refused the handshake: \(why)"
        case let .timedOut(limit): "peer handshake: not completed within \(limit)"
        }
    }
}

/// The handshake's checks, without I/O: the initiator sends its hello; the responder answers
/// with its hello and a signature over both; the initiator checks it and signs both in turn.
/// Each signature covers both nonces, so neither can be replayed into another connection, and
/// its role, so neither can be reflected back.
public enum PeerHandshake {
    public static let domain = Array("flowchain/peer-handshake/v1".utf8)

    public enum Role: UInt8, Sendable { case initiator = 0, responder = 1 }

    /// What `role` signs in the connection `initiator` → `responder`.
    public static func transcript(_ role: Role, initiator: PeerHello, responder: PeerHello) -> [UInt8] {
        domain + [role.rawValue] + initiator.transcriptPart + responder.transcriptPart
    }

    public static func sign(_ role: Role, initiator: PeerHello, responder: PeerHello, key: PrivateKey) throws -> [UInt8] {
        try key.sign(transcript(role, initiator: initiator, responder: responder))
    }

    /// Checks the peer's signature for `role`: the peer holds the key its hello names.
    public static func verify(_ signature: [UInt8], by role: Role, initiator: PeerHello, responder: PeerHello) throws(PeerHandshakeError) {
        let signer = role == .initiator ? initiator : responder
        guard signer.key.isValidSignature(signature, for: transcript(role, initiator: initiator, responder: responder)) else {
            throw .badProof("the peer's signature does not prove key \(signer.key.hex.prefix(12))… for this connection (forged, or replayed from another)")
        }
    }

    /// What joining this peer means for the genesis.
    public enum GenesisDecision: Sendable, Equatable {
        /// Both follow the same genesis.
        case same
        /// This node has none yet: it adopts the peer's (and keeps it from then on).
        case adopt(Digest32, chainID: String?)
        /// The peer has none yet: it adopts ours.
        case offer
    }

    /// Compares the two hellos' genesis; a peer of another ring (or itself) is refused with a
    /// message that says which rings they are.
    public static func decide(local: PeerHello, remote: PeerHello) throws(PeerHandshakeError) -> GenesisDecision {
        guard local.key != remote.key else { throw .connectedToItself }
        switch (local.genesis, remote.genesis) {
        case let (l?, r?) where l == r:
            return .same
        case let (l?, r?):
            let ours = "\(local.chainID ?? "?") (genesis \(l.hex.prefix(16)))", theirs = "\(remote.chainID ?? "?") (genesis \(r.hex.prefix(16)))"
            throw .foreignGenesis("peer \(remote.address.isEmpty ? remote.key.hex.prefix(12) + "…" : remote.address) follows another ring: \(theirs); this node follows \(ours)")
        case let (nil, r?):
            return .adopt(r, chainID: remote.chainID)
        case (_?, nil):
            return .offer
        case (nil, nil):
            throw .noGenesis
        }
    }
}
