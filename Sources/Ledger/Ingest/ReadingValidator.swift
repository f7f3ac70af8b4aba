import FlowchainCrypto
import Foundation

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

    /// The payload must be UTF-8 text of one JSON object.
    public static func checkPayload(_ payload: [UInt8]) throws(IngestError) {
        guard let first = payload.first(where: { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D) }) else {
            throw .payloadNotJSONObject("it is empty")
        }
        guard first == UInt8(ascii: "{") else { throw .payloadNotJSONObject("it does not start with '{'") }
        do {
            let value = try JSONSerialization.jsonObject(with: Data(payload), options: [])
            guard value is [String: Any] else { throw IngestError.payloadNotJSONObject("it is not an object") }
        } catch let e as IngestError {
            throw e
        } catch {
            throw .payloadNotJSONObject("it is not valid JSON (\(String(describing: error).prefix(160)))")
        }
    }
}
