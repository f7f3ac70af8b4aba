import FlowchainCrypto

/// Stateless checks on a reading before it may be stored: device id, payload, seq range, signature.
public struct ReadingValidator: Sendable {
    public var maxPayloadBytes: Int

    public init(maxPayloadBytes: Int = 16 * 1024) {
        self.maxPayloadBytes = maxPayloadBytes
    }

    public func validate(_ r: Reading) throws(IngestError) {
        if let why = DeviceID.problem(with: r.device) { throw .badDevice(why) }
        guard r.payload.count <= maxPayloadBytes else { throw .payloadTooLarge(size: r.payload.count, limit: maxPayloadBytes) }
        try Self.checkPayload(r.payload)
        guard r.seq <= UInt64(Int64.max) else { throw .seqOutOfRange(r.seq) }
        guard r.hasValidSignature else { throw .badSignature(signer: r.signer.hex) }
    }

    /// The payload must be one JSON object in strict RFC 8259 JSON, UTF-8, without duplicate keys
    /// and nested at most `StrictJSON.maxDepth` deep (see `StrictJSON`).
    public static func checkPayload(_ payload: [UInt8]) throws(IngestError) {
        do {
            try StrictJSON.validateObject(payload)
        } catch {
            throw .payloadNotJSONObject("it is not strict JSON: \(error)")
        }
    }
}
