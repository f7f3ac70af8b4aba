import FlowchainCrypto
import Ledger

/// The bodies of a forwarded `ingest`: submissions one way, their outcomes the other.
///
///     request   count u32 · submission…
///       signed    0 · reading (u32 length · canonical encoding)
///       unsigned  1 · device (u32 length · UTF-8) · payload (u32 length · bytes)
///                 · has time u8 · time i64 · time quality u8 · source u8
///     response  count u32 · outcome…
///       ack       0 · id (32) · device (u32 length · UTF-8) · seq u64
///       refused   1 · kind (u32 length · UTF-8) · message (u32 length · UTF-8)
enum SubmissionCodec {
    static let maxItems = 8192
    static let maxField = Reading.maxEncodedPayload + 4096

    static func encode(_ submissions: [Submission]) -> [UInt8] {
        var w = BinaryWriter(capacity: submissions.count * 300)
        w.u32(UInt32(submissions.count))
        for s in submissions {
            switch s {
            case let .signed(r):
                w.u8(0); w.long(r.encoded)
            case let .unsigned(device, payload, time, quality, source):
                w.u8(1); w.long(Array(device.utf8)); w.long(payload)
                w.u8(time == nil ? 0 : 1); w.i64(time ?? 0); w.u8(quality.rawValue); w.u8(source.rawValue)
            }
        }
        return w.bytes
    }

    static func decodeSubmissions(_ bytes: [UInt8]) throws -> [Submission] {
        var r = BinaryReader(bytes)
        let n = Int(try r.u32("count"))
        guard n <= maxItems else { throw DecodingError.oversize(field: "count", length: n, limit: maxItems) }
        var out: [Submission] = []
        out.reserveCapacity(n)
        for i in 0..<n {
            switch try r.u8("submission[\(i)].kind") {
            case 0:
                out.append(.signed(try Reading(encoded: try r.long("submission[\(i)].reading", limit: maxField))))
            case 1:
                let device = String(decoding: try r.long("submission[\(i)].device", limit: 1024), as: UTF8.self)
                let payload = try r.long("submission[\(i)].payload", limit: maxField)
                let hasTime = try r.u8("submission[\(i)].hasTime") == 1
                let time = try r.i64("submission[\(i)].time")
                guard let quality = TimeQuality(rawValue: try r.u8("submission[\(i)].timeQuality")),
                      let source = ReadingSource(rawValue: try r.u8("submission[\(i)].source")) else {
                    throw DecodingError.invalid(field: "submission[\(i)]", reason: "unknown time quality or source")
                }
                out.append(.unsigned(device: device, payload: payload, time: hasTime ? time : nil, timeQuality: quality, source: source))
            case let k:
                throw DecodingError.invalid(field: "submission[\(i)].kind", reason: "\(k) is neither 0 (signed) nor 1 (unsigned)")
            }
        }
        try r.finish()
        return out
    }

    static func encode(_ outcomes: [Result<Ack, IngestError>]) -> [UInt8] {
        var w = BinaryWriter(capacity: outcomes.count * 80)
        w.u32(UInt32(outcomes.count))
        for o in outcomes {
            switch o {
            case let .success(ack):
                w.u8(0); w.fixed(ack.id.bytes); w.long(Array(ack.device.utf8)); w.u64(ack.seq)
            case let .failure(e):
                w.u8(1); w.long(Array(e.kind.utf8)); w.long(Array(e.description.utf8))
            }
        }
        return w.bytes
    }

    static func decodeOutcomes(_ bytes: [UInt8], expected: Int) throws -> [Result<Ack, IngestError>] {
        var r = BinaryReader(bytes)
        let n = Int(try r.u32("count"))
        guard n == expected else { throw DecodingError.invalid(field: "count", reason: "\(n) outcomes for \(expected) submissions") }
        var out: [Result<Ack, IngestError>] = []
        out.reserveCapacity(n)
        for i in 0..<n {
            switch try r.u8("outcome[\(i)].kind") {
            case 0:
                let id = try Digest32(bytes: try r.fixed(32, "outcome[\(i)].id"))
                let device = String(decoding: try r.long("outcome[\(i)].device", limit: 1024), as: UTF8.self)
                out.append(.success(Ack(id: id, device: device, seq: try r.u64("outcome[\(i)].seq"))))
            case 1:
                let kind = String(decoding: try r.long("outcome[\(i)].kind", limit: 256), as: UTF8.self)
                let message = String(decoding: try r.long("outcome[\(i)].message", limit: 64 * 1024), as: UTF8.self)
                out.append(.failure(.relayed(kind: kind, message: message)))
            case let k:
                throw DecodingError.invalid(field: "outcome[\(i)].kind", reason: "\(k) is neither 0 nor 1")
            }
        }
        try r.finish()
        return out
    }
}
