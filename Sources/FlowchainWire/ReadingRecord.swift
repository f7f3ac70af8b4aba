public import FlowchainCrypto
public import LedgerModel

/// A stored reading as the wire shows it: what a client gets back from a node and what the CLI
/// prints, the same whether it was read from a local store or from a node over RPC.
///
/// The payload is a parsed value here; its exact signed bytes stay with the node (a proof carries
/// them), so a record is for display and queries, not for re-checking the signature.
public struct ReadingRecord: Sendable, Equatable {
    public let id: Digest32
    public let device: String
    public let seq: UInt64
    public let time: Int64
    public let timeSynced: Bool
    public let source: String
    public let payload: JSONValue
    public let signer: PublicKey
    public let signature: [UInt8]
    /// Arrival position on the node that stored it: resume a subscription after it.
    public let cursor: Int64
    /// The segment block holding it; nil while pending.
    public let block: UInt64?
    public let leaf: UInt32?

    public init(_ s: StoredReading) {
        let r = s.reading
        id = r.id
        device = r.device
        seq = r.seq
        time = r.time
        timeSynced = r.timeQuality == .synced
        source = r.source.description
        // Stored payloads passed the strict validator on the way in.
        payload = (try? StrictJSON.parse(r.payload)) ?? .string(r.payloadText)
        signer = r.signer
        signature = r.signature
        cursor = s.rowid
        block = s.block
        leaf = s.leaf
    }

    /// Decodes the shape `ReadingWire.write(_:into:)` produces; the error names the field.
    public init(wire value: JSONValue) throws(WireError) {
        guard case let .object(o) = value else { throw .invalid("a reading must be a JSON object") }
        func text(_ name: String) throws(WireError) -> String {
            guard let s = o[name]?.stringValue else { throw .invalid("reading: '\(name)' must be a string") }
            return s
        }
        func integer(_ name: String) throws(WireError) -> Int64 {
            guard let v = try ReadingWire.optionalInt(o[name], name) else { throw .invalid("reading: '\(name)' is missing") }
            return v
        }
        guard let id = Digest32(hex: try text("id")) else { throw .invalid("reading: 'id' must be 64 hex digits") }
        guard let signerBytes = Hex.decode(try text("signer")), let signer = try? PublicKey(bytes: signerBytes) else {
            throw .invalid("reading: 'signer' must be 64 hex digits")
        }
        guard let signature = Hex.decode(try text("signature")) else { throw .invalid("reading: 'signature' must be hex") }
        let seq = try integer("seq")
        guard seq >= 0 else { throw .invalid("reading: 'seq' must not be negative") }
        guard let payload = o["payload"] else { throw .invalid("reading: 'payload' is missing") }
        self.id = id
        device = try text("device")
        self.seq = UInt64(seq)
        time = try integer("time")
        timeSynced = o["timeSynced"]?.boolValue ?? true
        source = try text("source")
        self.payload = payload
        self.signer = signer
        self.signature = signature
        cursor = try integer("cursor")
        block = try ReadingWire.optionalInt(o["block"].flatMap { $0.isNull ? JSONValue?.none : $0 }, "block", in: 0...Int64.max).map { UInt64($0) }
        leaf = try ReadingWire.optionalInt(o["leaf"].flatMap { $0.isNull ? JSONValue?.none : $0 }, "leaf", in: 0...Int64(UInt32.max)).map { UInt32($0) }
    }
}

extension ReadingWire {
    /// Writes a record in the same shape as a stored reading (payload keys sorted).
    public static func write(_ r: ReadingRecord, into w: inout JSONWriter) {
        w.beginObject()
        w.field("id", r.id.hex)
        w.field("device", r.device)
        w.field("seq", r.seq)
        w.field("time", r.time)
        w.field("timeSynced", r.timeSynced)
        w.field("source", r.source)
        w.key("payload"); w.value(r.payload)
        w.field("signer", r.signer.hex)
        w.field("signature", Hex.encode(r.signature))
        w.field("cursor", r.cursor)
        w.key("block"); if let b = r.block { w.int(b) } else { w.null() }
        w.key("leaf"); if let l = r.leaf { w.int(l) } else { w.null() }
        w.endObject()
    }

    /// A page of records in the shape of RPC `readings`.
    public static func write(_ page: Page<ReadingRecord>, device: String? = nil, into w: inout JSONWriter) {
        w.beginObject()
        if let device { w.field("device", device) }
        w.key("readings"); w.beginArray(); for r in page.items { write(r, into: &w) }; w.endArray()
        w.key("nextCursor"); if let n = page.nextCursor { w.string(n) } else { w.null() }
        w.endObject()
    }

    /// Decodes a block header from its wire shape; the hash it claims must be the one its fields give.
    public static func blockHeader(from value: JSONValue) throws(WireError) -> BlockHeader {
        guard case let .object(o) = value else { throw .invalid("a block must be a JSON object") }
        func digest(_ name: String) throws(WireError) -> Digest32 {
            guard let d = o[name]?.stringValue.flatMap(Digest32.init(hex:)) else { throw .invalid("block: '\(name)' must be 64 hex digits") }
            return d
        }
        guard let height = try optionalInt(o["height"], "height", in: 0...Int64.max),
              let time = try optionalInt(o["time"], "time"),
              let count = try optionalInt(o["count"], "count", in: 0...Int64(UInt32.max)) else {
            throw .invalid("block: 'height', 'time' and 'count' are required")
        }
        guard let ownerBytes = o["owner"]?.stringValue.flatMap(Hex.decode), let owner = try? PublicKey(bytes: ownerBytes) else {
            throw .invalid("block: 'owner' must be 64 hex digits")
        }
        guard let signature = o["signature"]?.stringValue.flatMap(Hex.decode) else { throw .invalid("block: 'signature' must be hex") }
        let header = BlockHeader(height: UInt64(height), prev: try digest("prev"), time: time, owner: owner,
                                 merkleRoot: try digest("merkleRoot"), count: UInt32(count), signature: signature)
        guard header.hash == (try digest("hash")) else { throw .invalid("block \(height): its fields do not hash to the 'hash' it claims") }
        return header
    }
}
