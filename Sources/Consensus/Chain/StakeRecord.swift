public import FlowchainCrypto
public import LedgerModel

/// A signed change of stake carried in an anchor block: bond moves balance into stake (minting
/// after `bondDelay` blocks), unbond moves stake out at once and back to balance after the delay.
public struct StakeRecord: Hashable, Sendable {
    public enum Kind: UInt8, Sendable { case bond = 1, unbond = 2 }
    static let domain = Array("flowchain/stake/v1".utf8)
    public static let encodedLength = 1 + 32 + 32 + 8 + 8 + 64

    public let kind: Kind
    /// The genesis hash: a record is valid on one chain only.
    public let chain: Digest32
    public let key: PublicKey
    public let amount: UInt64
    /// The key's previous nonce + 1: each record applies once.
    public let nonce: UInt64
    public let signature: [UInt8]

    public init(kind: Kind, chain: Digest32, amount: UInt64, nonce: UInt64, signedBy key: PrivateKey) throws {
        self.kind = kind
        self.chain = chain
        self.key = key.publicKey
        self.amount = amount
        self.nonce = nonce
        signature = try key.sign(Self.domain + Self.body(kind, chain, key.publicKey, amount, nonce))
    }

    init(kind: Kind, chain: Digest32, key: PublicKey, amount: UInt64, nonce: UInt64, signature: [UInt8]) {
        (self.kind, self.chain, self.key, self.amount, self.nonce, self.signature) = (kind, chain, key, amount, nonce, signature)
    }

    static func body(_ kind: Kind, _ chain: Digest32, _ key: PublicKey, _ amount: UInt64, _ nonce: UInt64) -> [UInt8] {
        var w = BinaryWriter()
        w.u8(kind.rawValue)
        w.fixed(chain.bytes)
        w.fixed(key.bytes)
        w.u64(amount)
        w.u64(nonce)
        return w.bytes
    }

    public var hasValidSignature: Bool { key.isValidSignature(signature, for: Self.domain + Self.body(kind, chain, key, amount, nonce)) }

    func write(_ w: inout BinaryWriter) {
        w.fixed(Self.body(kind, chain, key, amount, nonce))
        w.fixed(signature)
    }

    static func read(_ r: inout BinaryReader) throws -> StakeRecord {
        let k = try r.u8("stake.kind")
        guard let kind = Kind(rawValue: k) else { throw LedgerModel.DecodingError.invalid(field: "stake.kind", reason: "unknown value \(k)") }
        return StakeRecord(
            kind: kind, chain: try Digest32(bytes: r.fixed(32, "stake.chain")), key: try PublicKey(bytes: r.fixed(32, "stake.key")),
            amount: try r.u64("stake.amount"), nonce: try r.u64("stake.nonce"), signature: try r.fixed(64, "stake.signature"))
    }
}

extension StakeRecord {
    /// The record on its own (kind, chain, key, amount, nonce, signature), as it travels.
    public var encoded: [UInt8] {
        var w = BinaryWriter(capacity: Self.encodedLength)
        write(&w)
        return w.bytes
    }

    public init(encoded bytes: [UInt8]) throws {
        var r = BinaryReader(bytes)
        self = try Self.read(&r)
        try r.finish()
    }
}
