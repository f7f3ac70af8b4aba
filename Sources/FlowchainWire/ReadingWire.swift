public import FlowchainCrypto

public import LedgerModel

/// The JSON shapes of readings and blocks on the wire (RPC, WoT endpoints, dashboard).
public enum ReadingWire {
    /// `{"id","device","seq","time","timeSynced","source","payload",…,"cursor","block","leaf"}`;
    /// the payload is spliced in as the exact signed bytes.
    public static func write(_ s: StoredReading, into w: inout JSONWriter) {
        let r = s.reading
        w.beginObject()
        w.field("id", r.id.hex)
        w.field("device", r.device)
        w.field("seq", r.seq)
        w.field("time", r.time)
        w.field("timeSynced", r.timeQuality == .synced)
        w.field("source", r.source.description)
        w.key("payload"); w.raw(r.payload)
        w.field("signer", r.signer.hex)
        w.field("signature", Hex.encode(r.signature))
        w.field("cursor", s.rowid)
        w.key("block"); if let b = s.block { w.int(b) } else { w.null() }
        w.key("leaf"); if let l = s.leaf { w.int(l) } else { w.null() }
        w.endObject()
    }

    /// A page of a device's readings: `{["device",]"readings":[…],"nextCursor"}` (RPC `readings`
    /// and `GET /object/{id}/readings` write the same shape; the HTTP one names the device).
    public static func write(_ page: Page<StoredReading>, device: String? = nil, into w: inout JSONWriter) {
        w.beginObject()
        if let device { w.field("device", device) }
        w.key("readings"); w.beginArray(); for r in page.items { write(r, into: &w) }; w.endArray()
        w.key("nextCursor"); if let n = page.nextCursor { w.string(n) } else { w.null() }
        w.endObject()
    }

    public static func write(_ h: BlockHeader, into w: inout JSONWriter) {
        w.beginObject()
        w.field("height", h.height)
        w.field("hash", h.hash.hex)
        w.field("prev", h.prev.hex)
        w.field("time", h.time)
        w.field("owner", h.owner.hex)
        w.field("merkleRoot", h.merkleRoot.hex)
        w.field("count", h.count)
        w.field("signature", Hex.encode(h.signature))
        w.endObject()
    }

    public static func write(_ ack: Ack, into w: inout JSONWriter) {
        w.beginObject()
        w.field("id", ack.id.hex)
        w.field("device", ack.device)
        w.field("seq", ack.seq)
        w.endObject()
    }

    /// Parses one submitted reading. Accepted shapes:
    /// - `{"encoded": "<hex of the canonical encoding>"}`
    /// - `{"device","seq","time","payload": "<JSON object text>","signer","signature"[,"timeSynced","source"]}` (signed)
    /// - `{"device","payload": {…}[,"time","timeSynced"]}` (the node signs and numbers it)
    /// `device` may be omitted when the endpoint names it (`/object/{id}/send`); it must match when given.
    public static func submission(from object: [String: JSONValue], device impliedDevice: String?, defaultSource: ReadingSource) throws(WireError) -> Submission {
        if let encoded = object["encoded"] {
            guard let hex = encoded.stringValue, let bytes = Hex.decode(hex) else { throw .invalid("'encoded' must be a hex string") }
            do {
                let reading = try Reading(encoded: bytes)
                if let impliedDevice, reading.device != impliedDevice { throw WireError.invalid("the reading is for device '\(reading.device)', not '\(impliedDevice)'") }
                return .signed(reading)
            } catch let e as WireError {
                throw e
            } catch {
                throw .invalid("'encoded' does not decode: \(error)")
            }
        }
        let device: String
        switch (object["device"], impliedDevice) {
        case let (.string(given)?, implied?):
            guard given == implied else { throw .invalid("'device' is '\(given)' but this endpoint is for '\(implied)'") }
            device = given
        case let (.string(given)?, nil): device = given
        case (nil, let implied?): device = implied
        case (nil, nil): throw .invalid("missing 'device'")
        default: throw .invalid("'device' must be a string")
        }
        if let why = DeviceID.problem(with: device) { throw .invalid(why) }
        let synced = object["timeSynced"]?.boolValue ?? true
        let time = try optionalInt(object["time"], "time")

        if object["signature"] != nil || object["signer"] != nil {
            guard let payloadText = object["payload"]?.stringValue else {
                throw .invalid("a signed reading carries 'payload' as a string: the exact JSON object text that was signed")
            }
            guard let seq = try optionalInt(object["seq"], "seq"), seq >= 0 else { throw .invalid("a signed reading needs 'seq' (a non-negative integer)") }
            guard let time else { throw .invalid("a signed reading needs 'time' (ms since the epoch)") }
            guard let signerHex = object["signer"]?.stringValue, let signerBytes = Hex.decode(signerHex), signerBytes.count == 32 else {
                throw .invalid("'signer' must be 64 hex digits (an Ed25519 public key)")
            }
            guard let sigHex = object["signature"]?.stringValue, let signature = Hex.decode(sigHex), signature.count == 64 else {
                throw .invalid("'signature' must be 128 hex digits (an Ed25519 signature)")
            }
            var source = defaultSource
            if let name = object["source"] {
                guard let text = name.stringValue, let s = ReadingSource(name: text) else {
                    throw .invalid("'source' must be one of \(ReadingSource.allCases.map(\.description).joined(separator: ", "))")
                }
                source = s
            }
            do {
                return .signed(try Reading(
                    device: device, seq: UInt64(seq), time: time, timeQuality: synced ? .synced : .unsynced, source: source,
                    payload: Array(payloadText.utf8), signer: PublicKey(bytes: signerBytes), signature: signature))
            } catch {
                throw .invalid("\(error)")
            }
        }
        guard let payload = object["payload"] else { throw .invalid("missing 'payload' (a JSON object)") }
        guard case .object = payload else { throw .invalid("'payload' must be a JSON object") }
        return .unsigned(device: device, payload: payload.jsonBytes, time: time, timeQuality: synced ? .synced : .unsynced, source: defaultSource)
    }

    /// An integer parameter, or nil when absent. Anything else — a fraction, a string, a number
    /// outside the signed 64-bit range (which must not wrap around) — is an error naming it.
    public static func optionalInt(_ value: JSONValue?, _ name: String) throws(WireError) -> Int64? {
        guard let value else { return nil }
        switch value.integer() {
        case let .success(v): return v
        case .failure(.outOfRange): throw .invalid("'\(name)' is out of range (at most \(Int64.max))")
        case .failure(.notInteger): throw .invalid("'\(name)' must be an integer")
        }
    }

    /// An integer parameter that must lie in `range`; the error names the parameter and the range.
    public static func optionalInt(_ value: JSONValue?, _ name: String, in range: ClosedRange<Int64>) throws(WireError) -> Int64? {
        guard let v = try optionalInt(value, name) else { return nil }
        guard range.contains(v) else { throw .invalid("'\(name)' must be in \(range.lowerBound)…\(range.upperBound), got \(v)") }
        return v
    }
}

/// A request the node cannot make sense of, with the reason.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self { case let .invalid(why): return why }
    }
}
