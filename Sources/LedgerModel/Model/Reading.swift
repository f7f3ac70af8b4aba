public import FlowchainCrypto

/// Where a reading entered the system.
public enum ReadingSource: UInt8, Sendable, CaseIterable, Codable, CustomStringConvertible {
    case gpio = 0, mqtt = 1, ws = 2, rpc = 3, demo = 4, iio = 5, w1 = 6

    public var description: String {
        switch self {
        case .gpio: "gpio"
        case .mqtt: "mqtt"
        case .ws: "ws"
        case .rpc: "rpc"
        case .demo: "demo"
        case .iio: "iio"
        case .w1: "w1"
        }
    }

    public init?(name: String) {
        guard let s = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = s
    }
}

/// Whether the clock that stamped `time` was synchronised (NTP/PTP/GPS) when it did so.
public enum TimeQuality: UInt8, Sendable, Codable {
    case unsynced = 0, synced = 1
}

/// One sensor reading: the ledger's transaction.
///
/// Hashes and signatures cover the canonical binary encoding (`encoded`), never JSON. The payload
/// is kept as the exact UTF-8 text of a JSON object so that a signature made at the edge still
/// verifies after any number of JSON round trips.
public struct Reading: Hashable, Sendable {
    public static let encodingVersion: UInt8 = 1
    /// The hard ceiling the decoder enforces; ingest applies a lower, configurable limit.
    public static let maxEncodedPayload = 1 << 20
    public static let signingDomain = Array("flowchain/reading/v1".utf8)

    public let device: String
    public let seq: UInt64
    /// Observed time, milliseconds since the Unix epoch.
    public let time: Int64
    public let timeQuality: TimeQuality
    public let source: ReadingSource
    /// UTF-8 JSON object text.
    public let payload: [UInt8]
    public let signer: PublicKey
    public let signature: [UInt8]

    /// The largest step `seq` may take above a device's last stored one (and the largest first
    /// `seq`): far more than any device sends in its lifetime, small enough that one reading
    /// cannot use up the 2^63 numbers and lock its device out.
    public static let maxSeqJump: UInt64 = 1 << 32

    /// The exact bytes hashed into the Merkle leaf.
    public let encoded: [UInt8]
    /// SHA-256 of the signed body (the encoding without its signature): a body signed twice by
    /// its signer (a fresh signature each time) is still one reading, with one id.
    public let id: Digest32

    /// Builds and signs a reading with `key`.
    public init(
        device: String, seq: UInt64, time: Int64, timeQuality: TimeQuality = .synced,
        source: ReadingSource, payload: [UInt8], signedBy key: PrivateKey
    ) throws {
        let body = Self.encodeBody(
            device: device, seq: seq, time: time, timeQuality: timeQuality,
            source: source, payload: payload, signer: key.publicKey)
        let signature = try key.sign(Self.signingDomain + body)
        try self.init(device: device, seq: seq, time: time, timeQuality: timeQuality, source: source,
                      payload: payload, signer: key.publicKey, signature: signature, body: body)
    }

    /// Assembles a reading from parts signed elsewhere (e.g. by a device). The signature is not
    /// checked here; `hasValidSignature` does that.
    public init(
        device: String, seq: UInt64, time: Int64, timeQuality: TimeQuality, source: ReadingSource,
        payload: [UInt8], signer: PublicKey, signature: [UInt8]
    ) throws {
        let body = Self.encodeBody(
            device: device, seq: seq, time: time, timeQuality: timeQuality,
            source: source, payload: payload, signer: signer)
        try self.init(device: device, seq: seq, time: time, timeQuality: timeQuality, source: source,
                      payload: payload, signer: signer, signature: signature, body: body)
    }

    private init(
        device: String, seq: UInt64, time: Int64, timeQuality: TimeQuality, source: ReadingSource,
        payload: [UInt8], signer: PublicKey, signature: [UInt8], body: [UInt8]
    ) throws {
        if let problem = DeviceID.problem(with: device) { throw DecodingError.invalid(field: "device", reason: problem) }
        guard payload.count <= Self.maxEncodedPayload else {
            throw DecodingError.oversize(field: "payload", length: payload.count, limit: Self.maxEncodedPayload)
        }
        guard signature.count == Ed25519.signatureLength else {
            throw DecodingError.invalid(field: "signature", reason: "must be \(Ed25519.signatureLength) bytes, got \(signature.count)")
        }
        self.device = device
        self.seq = seq
        self.time = time
        self.timeQuality = timeQuality
        self.source = source
        self.payload = payload
        self.signer = signer
        self.signature = signature
        encoded = body + signature
        id = SHA256.hash(body)
    }

    /// Decodes a canonical encoding; every failure names the field at fault.
    public init(encoded bytes: [UInt8]) throws {
        var r = BinaryReader(bytes)
        let version = try r.u8("version")
        guard version == Self.encodingVersion else {
            throw DecodingError.invalid(field: "version", reason: "unsupported version \(version), expected \(Self.encodingVersion)")
        }
        let deviceBytes = try r.short("device", limit: DeviceID.maxLength)
        guard let device = String(validating: deviceBytes, as: UTF8.self) else {
            throw DecodingError.invalid(field: "device", reason: "not UTF-8")
        }
        let seq = try r.u64("seq")
        let time = try r.i64("time")
        let tq = try r.u8("timeQuality")
        guard let timeQuality = TimeQuality(rawValue: tq) else {
            throw DecodingError.invalid(field: "timeQuality", reason: "unknown value \(tq)")
        }
        let src = try r.u8("source")
        guard let source = ReadingSource(rawValue: src) else {
            throw DecodingError.invalid(field: "source", reason: "unknown value \(src)")
        }
        let payload = try r.long("payload", limit: Self.maxEncodedPayload)
        let signer = try PublicKey(bytes: r.fixed(Ed25519.publicKeyLength, "signer"))
        let signature = try r.fixed(Ed25519.signatureLength, "signature")
        try r.finish()
        try self.init(device: device, seq: seq, time: time, timeQuality: timeQuality, source: source,
                      payload: payload, signer: signer, signature: signature,
                      body: Array(bytes.dropLast(Ed25519.signatureLength)))
    }

    /// The encoding without the signature, i.e. what is signed (after the domain tag).
    public var body: ArraySlice<UInt8> { encoded.dropLast(Ed25519.signatureLength) }

    /// True when `signature` is `signer`'s Ed25519 signature over the domain tag and body.
    public var hasValidSignature: Bool {
        signer.isValidSignature(signature, for: Self.signingDomain + body)
    }

    /// The payload as text (it is validated as UTF-8 JSON on ingest).
    public var payloadText: String { String(decoding: payload, as: UTF8.self) }

    static func encodeBody(
        device: String, seq: UInt64, time: Int64, timeQuality: TimeQuality,
        source: ReadingSource, payload: [UInt8], signer: PublicKey
    ) -> [UInt8] {
        var w = BinaryWriter(capacity: 128 + payload.count)
        w.u8(encodingVersion)
        w.short(Array(device.utf8).prefix(255))
        w.u64(seq)
        w.i64(time)
        w.u8(timeQuality.rawValue)
        w.u8(source.rawValue)
        w.long(payload)
        w.fixed(signer.bytes)
        return w.bytes
    }
}
