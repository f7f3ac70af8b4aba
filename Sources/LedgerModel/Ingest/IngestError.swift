public import FlowchainCrypto

/// Why a reading was refused. Each case says what was wrong, so a device author can fix it.
public enum IngestError: Error, Equatable, Sendable, CustomStringConvertible {
    case badDevice(String)
    case payloadNotJSONObject(String)
    case payloadTooLarge(size: Int, limit: Int)
    case badSignature(signer: String)
    case seqOutOfRange(UInt64)
    case seqNotIncreasing(device: String, seq: UInt64, last: UInt64)
    /// `seq` jumps more than `Reading.maxSeqJump` above the device's last one.
    case seqTooFar(device: String, seq: UInt64, last: UInt64)
    /// The device is bound to another key than the one that signed the reading.
    case wrongSigner(device: String, signer: String, bound: String)
    case malformed(String)
    /// The credential presented may not write for this device.
    case unauthorized(device: String)
    /// The store failed; the reading was not acknowledged and may be re-sent.
    case storeFailed(String)
    case shuttingDown
    /// The device's owner in the ring refused the reading; `kind` and `message` are its own.
    case relayed(kind: String, message: String)
    /// The device belongs to another node of the ring, which could not be reached: the reading
    /// was not stored and may be re-sent.
    case ownerUnreachable(String)
    /// Not stored yet: held durably in this node's forward queue until the device's owner can be
    /// reached (for sources that cannot send again: MQTT, sensors). Not an acknowledgement.
    case queued(String)

    public var description: String {
        switch self {
        case let .badDevice(why): return "bad device id: \(why)"
        case let .payloadNotJSONObject(why): return "payload must be a JSON object: \(why)"
        case let .payloadTooLarge(size, limit): return "payload is \(size) bytes, over the limit of \(limit)"
        case let .badSignature(signer): return "signature does not verify against signer \(signer)"
        case let .seqOutOfRange(seq): return "seq \(seq) is above the maximum \(Int64.max)"
        case let .seqNotIncreasing(device, seq, last):
            return "seq \(seq) for device \(device) is not above its last stored seq \(last)"
        case let .seqTooFar(device, seq, last):
            return "seq \(seq) for device \(device) jumps more than \(Reading.maxSeqJump) above its last seq \(last)"
        case let .wrongSigner(device, signer, bound):
            return "device \(device) is bound to key \(bound), but this reading is signed by \(signer); re-keying is done with flowchain devices rekey"
        case let .malformed(why): return "malformed reading: \(why)"
        case let .unauthorized(device):
            return "not allowed to write for device \(device): present its own token or the node's (?token=… or Authorization: Bearer …)"
        case let .storeFailed(why): return "not stored: \(why)"
        case .shuttingDown: return "the node is shutting down; not stored"
        case let .relayed(_, message): return message
        case let .ownerUnreachable(why): return "not stored: \(why)"
        case let .queued(why): return "queued: \(why)"
        }
    }

    /// A short machine-readable kind, for metrics and JSON errors.
    public var kind: String {
        switch self {
        case .badDevice: "bad_device"
        case .payloadNotJSONObject: "payload_not_object"
        case .payloadTooLarge: "payload_too_large"
        case .badSignature: "bad_signature"
        case .seqOutOfRange: "seq_out_of_range"
        case .seqNotIncreasing: "seq_not_increasing"
        case .seqTooFar: "seq_too_far"
        case .wrongSigner: "wrong_signer"
        case .malformed: "malformed"
        case .unauthorized: "unauthorized"
        case .storeFailed: "store_failed"
        case .shuttingDown: "shutting_down"
        case let .relayed(kind, _): kind
        case .ownerUnreachable: "owner_unreachable"
        case .queued: "queued"
        }
    }
}

/// The acknowledgement of a durably stored reading. A re-sent reading gets the identical one.
public struct Ack: Sendable, Equatable, Hashable, Codable {
    public let id: Digest32
    public let device: String
    public let seq: UInt64

    public init(id: Digest32, device: String, seq: UInt64) {
        self.id = id
        self.device = device
        self.seq = seq
    }
}
