public import FlowchainCrypto
public import LedgerModel

/// A block of the global anchor chain: it commits nodes' segment heads (so rewriting a committed
/// segment means out-minting the stake) and carries stake records. Minted by Proof-of-Stake.
public struct AnchorBlock: Hashable, Sendable {
    public static let version: UInt8 = 1
    static let domain = Array("flowchain/anchor/v1".utf8)
    public static let maxHeads = 1024
    public static let maxRecords = 256

    /// The genesis hash of the chain this block belongs to.
    public let chain: Digest32
    public let height: UInt64
    public let prev: Digest32
    /// Seconds since the epoch (the kernel's granularity).
    public let time: Int64
    public let minter: PublicKey
    public let target: UInt256
    public let stakeModifier: Digest32
    /// Segment block headers being committed, each signed by its owner.
    public let heads: [BlockHeader]
    public let records: [StakeRecord]
    public let signature: [UInt8]

    public let body: [UInt8]
    /// SHA-256 of the body (everything but the signature).
    public let hash: Digest32

    public init(chain: Digest32, height: UInt64, prev: Digest32, time: Int64, target: UInt256, stakeModifier: Digest32,
                heads: [BlockHeader], records: [StakeRecord], signedBy key: PrivateKey) throws {
        let body = Self.encodeBody(chain: chain, height: height, prev: prev, time: time, minter: key.publicKey, target: target,
                                   modifier: stakeModifier, heads: heads, records: records)
        self.init(chain: chain, height: height, prev: prev, time: time, minter: key.publicKey, target: target, stakeModifier: stakeModifier,
                  heads: heads, records: records, signature: try key.sign(Self.domain + body), body: body)
    }

    init(chain: Digest32, height: UInt64, prev: Digest32, time: Int64, minter: PublicKey, target: UInt256, stakeModifier: Digest32,
         heads: [BlockHeader], records: [StakeRecord], signature: [UInt8], body: [UInt8]) {
        self.chain = chain
        self.height = height
        self.prev = prev
        self.time = time
        self.minter = minter
        self.target = target
        self.stakeModifier = stakeModifier
        self.heads = heads
        self.records = records
        self.signature = signature
        self.body = body
        hash = SHA256.hash(body)
    }

    public var encoded: [UInt8] { body + signature }
    public var hasValidSignature: Bool { minter.isValidSignature(signature, for: Self.domain + body) }

    static func encodeBody(chain: Digest32, height: UInt64, prev: Digest32, time: Int64, minter: PublicKey, target: UInt256,
                           modifier: Digest32, heads: [BlockHeader], records: [StakeRecord]) -> [UInt8] {
        var w = BinaryWriter(capacity: 256 + heads.count * BlockHeader.encodedLength)
        w.u8(version)
        w.fixed(chain.bytes)
        w.u64(height)
        w.fixed(prev.bytes)
        w.i64(time)
        w.fixed(minter.bytes)
        w.fixed(target.bytes)
        w.fixed(modifier.bytes)
        w.u32(UInt32(heads.count))
        for h in heads { w.fixed(h.encoded) }
        w.u32(UInt32(records.count))
        for r in records { r.write(&w) }
        return w.bytes
    }

    /// Decodes a block; malformed input is a `DecodingError` naming the field.
    public init(encoded bytes: [UInt8]) throws {
        var r = BinaryReader(bytes)
        let v = try r.u8("version")
        guard v == Self.version else { throw LedgerModel.DecodingError.invalid(field: "version", reason: "unsupported version \(v)") }
        let chain = try Digest32(bytes: r.fixed(32, "chain"))
        let height = try r.u64("height")
        let prev = try Digest32(bytes: r.fixed(32, "prev"))
        let time = try r.i64("time")
        let minter = try PublicKey(bytes: r.fixed(32, "minter"))
        let target = UInt256(try Digest32(bytes: r.fixed(32, "target")))
        let modifier = try Digest32(bytes: r.fixed(32, "stakeModifier"))
        let nHeads = Int(try r.u32("heads.count"))
        guard nHeads <= Self.maxHeads else { throw LedgerModel.DecodingError.oversize(field: "heads", length: nHeads, limit: Self.maxHeads) }
        var heads: [BlockHeader] = []
        for i in 0..<nHeads { heads.append(try BlockHeader(encoded: r.fixed(BlockHeader.encodedLength, "heads[\(i)]"))) }
        let nRecords = Int(try r.u32("records.count"))
        guard nRecords <= Self.maxRecords else { throw LedgerModel.DecodingError.oversize(field: "records", length: nRecords, limit: Self.maxRecords) }
        var records: [StakeRecord] = []
        for _ in 0..<nRecords { records.append(try StakeRecord.read(&r)) }
        let signature = try r.fixed(64, "signature")
        try r.finish()
        self.init(chain: chain, height: height, prev: prev, time: time, minter: minter, target: target, stakeModifier: modifier,
                  heads: heads, records: records, signature: signature, body: Array(bytes.dropLast(64)))
    }
}
