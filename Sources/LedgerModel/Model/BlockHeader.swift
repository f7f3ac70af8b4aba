public import FlowchainCrypto

/// A segment block's header: one node's hash-linked chain of the readings it owns.
///
/// The readings themselves are committed through `merkleRoot`; the header is signed by `owner`.
public struct BlockHeader: Hashable, Sendable {
    public static let encodingVersion: UInt8 = 1
    static let signingDomain = Array("flowchain/segment/v1".utf8)
    static let bodyLength = 1 + 8 + 32 + 8 + 32 + 32 + 4
    public static let encodedLength = bodyLength + Ed25519.signatureLength

    public let height: UInt64
    public let prev: Digest32
    /// Milliseconds since the Unix epoch; never before the parent's.
    public let time: Int64
    public let owner: PublicKey
    public let merkleRoot: Digest32
    public let count: UInt32
    public let signature: [UInt8]

    /// SHA-256 of the header body (everything but the signature): what `prev` links to.
    public let hash: Digest32
    public let encoded: [UInt8]

    /// Builds and signs a header.
    public init(height: UInt64, prev: Digest32, time: Int64, merkleRoot: Digest32, count: UInt32, signedBy key: PrivateKey) throws {
        let body = Self.encodeBody(height: height, prev: prev, time: time, owner: key.publicKey, merkleRoot: merkleRoot, count: count)
        let signature = try key.sign(Self.signingDomain + body)
        self.init(height: height, prev: prev, time: time, owner: key.publicKey, merkleRoot: merkleRoot,
                  count: count, signature: signature, body: body)
    }

    /// A header as someone else built and signed it (e.g. decoded from the wire); check
    /// `hasValidSignature` before trusting it.
    public init(height: UInt64, prev: Digest32, time: Int64, owner: PublicKey, merkleRoot: Digest32, count: UInt32, signature: [UInt8]) {
        self.init(height: height, prev: prev, time: time, owner: owner, merkleRoot: merkleRoot, count: count, signature: signature,
                  body: Self.encodeBody(height: height, prev: prev, time: time, owner: owner, merkleRoot: merkleRoot, count: count))
    }

    private init(height: UInt64, prev: Digest32, time: Int64, owner: PublicKey, merkleRoot: Digest32,
                 count: UInt32, signature: [UInt8], body: [UInt8]) {
        self.height = height
        self.prev = prev
        self.time = time
        self.owner = owner
        self.merkleRoot = merkleRoot
        self.count = count
        self.signature = signature
        hash = SHA256.hash(body)
        encoded = body + signature
    }

    public init(encoded bytes: [UInt8]) throws {
        var r = BinaryReader(bytes)
        let version = try r.u8("version")
        guard version == Self.encodingVersion else {
            throw DecodingError.invalid(field: "version", reason: "unsupported version \(version), expected \(Self.encodingVersion)")
        }
        let height = try r.u64("height")
        let prev = try Digest32(bytes: r.fixed(32, "prev"))
        let time = try r.i64("time")
        let owner = try PublicKey(bytes: r.fixed(32, "owner"))
        let root = try Digest32(bytes: r.fixed(32, "merkleRoot"))
        let count = try r.u32("count")
        let signature = try r.fixed(Ed25519.signatureLength, "signature")
        try r.finish()
        self.init(height: height, prev: prev, time: time, owner: owner, merkleRoot: root, count: count,
                  signature: signature, body: Array(bytes.prefix(Self.bodyLength)))
    }

    public var body: ArraySlice<UInt8> { encoded.prefix(Self.bodyLength) }

    public var hasValidSignature: Bool {
        owner.isValidSignature(signature, for: Self.signingDomain + body)
    }

    static func encodeBody(height: UInt64, prev: Digest32, time: Int64, owner: PublicKey, merkleRoot: Digest32, count: UInt32) -> [UInt8] {
        var w = BinaryWriter(capacity: bodyLength + Ed25519.signatureLength)
        w.u8(encodingVersion)
        w.u64(height)
        w.fixed(prev.bytes)
        w.i64(time)
        w.fixed(owner.bytes)
        w.fixed(merkleRoot.bytes)
        w.u32(count)
        return w.bytes
    }
}
