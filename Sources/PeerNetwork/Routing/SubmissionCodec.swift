import FlowchainCrypto
import Ledger
import Synchronization

/// The bodies of a forwarded `ingest`: submissions one way, their outcomes the other.
///
///     request   count u32 · submission…
///       signed    0 · reading (u32 length · canonical encoding)
///       unsigned  1 · device (u32 length · UTF-8) · payload (u32 length · bytes)
///                 · has time u8 · time i64 · time quality u8 · source u8 · token (16; zeros: none)
///     response  count u32 · outcome…
///       ack       0 · id (32) · device (u32 length · UTF-8) · seq u64
///       refused   1 · kind (u32 length · UTF-8) · message (u32 length · UTF-8)
enum SubmissionCodec {
    static let maxItems = 8192
    static let maxField = Reading.maxEncodedPayload + 4096

    /// `tokens[i]` (when given) identifies the delivery of unsigned submission `i`: the owner
    /// answers a token it already stored with the same acknowledgement instead of storing again.
    static func encode(_ submissions: [Submission], tokens: [ForwardToken?] = []) -> [UInt8] {
        var w = BinaryWriter(capacity: submissions.count * 300)
        w.u32(UInt32(submissions.count))
        for (i, s) in submissions.enumerated() {
            switch s {
            case let .signed(r):
                w.u8(0); w.long(r.encoded)
            case let .unsigned(device, payload, time, quality, source):
                w.u8(1); w.long(Array(device.utf8)); w.long(payload)
                w.u8(time == nil ? 0 : 1); w.i64(time ?? 0); w.u8(quality.rawValue); w.u8(source.rawValue)
                let token = i < tokens.count ? tokens[i] : nil
                w.u64(token?.high ?? 0); w.u64(token?.low ?? 0)
            }
        }
        return w.bytes
    }

    static func decodeSubmissions(_ bytes: [UInt8]) throws -> [Submission] { try decodeForwards(bytes).map(\.submission) }

    static func decodeForwards(_ bytes: [UInt8]) throws -> [(submission: Submission, token: ForwardToken?)] {
        var r = BinaryReader(bytes)
        let n = Int(try r.u32("count"))
        guard n <= maxItems else { throw DecodingError.oversize(field: "count", length: n, limit: maxItems) }
        var out: [(submission: Submission, token: ForwardToken?)] = []
        out.reserveCapacity(n)
        for i in 0..<n {
            switch try r.u8("submission[\(i)].kind") {
            case 0:
                out.append((.signed(try Reading(encoded: try r.long("submission[\(i)].reading", limit: maxField))), nil))
            case 1:
                let device = String(decoding: try r.long("submission[\(i)].device", limit: 1024), as: UTF8.self)
                let payload = try r.long("submission[\(i)].payload", limit: maxField)
                let hasTime = try r.u8("submission[\(i)].hasTime") == 1
                let time = try r.i64("submission[\(i)].time")
                guard let quality = TimeQuality(rawValue: try r.u8("submission[\(i)].timeQuality")),
                      let source = ReadingSource(rawValue: try r.u8("submission[\(i)].source")) else {
                    throw DecodingError.invalid(field: "submission[\(i)]", reason: "unknown time quality or source")
                }
                let token = ForwardToken(high: try r.u64("submission[\(i)].token"), low: try r.u64("submission[\(i)].token"))
                out.append((.unsigned(device: device, payload: payload, time: hasTime ? time : nil, timeQuality: quality, source: source),
                            token.high == 0 && token.low == 0 ? nil : token))
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

/// Names one unsigned reading's delivery from its entry node to its owner, so a forward that
/// timed out and is sent again (retried, or from the forward queue) is stored once: the entry
/// node's random 64-bit prefix and a counter.
struct ForwardToken: Hashable, Sendable {
    let high: UInt64
    let low: UInt64
}

/// The tokens an owner stored lately, with what it acknowledged for each (bounded: the oldest
/// are forgotten first).
final class RecentForwards: Sendable {
    private let state = Mutex<(acks: [ForwardToken: (id: Digest32, seq: UInt64)], order: [ForwardToken], next: Int)>(([:], [], 0))
    let capacity: Int

    init(capacity: Int = 32_768) { self.capacity = capacity }

    func ack(for token: ForwardToken, device: String) -> Ack? {
        state.withLock { $0.acks[token] }.map { Ack(id: $0.id, device: device, seq: $0.seq) }
    }

    func remember(_ token: ForwardToken, _ ack: Ack) {
        state.withLock { s in
            guard s.acks.updateValue((ack.id, ack.seq), forKey: token) == nil else { return }
            if s.order.count < capacity {
                s.order.append(token)
            } else {
                s.acks.removeValue(forKey: s.order[s.next])
                s.order[s.next] = token
                s.next = (s.next + 1) % capacity
            }
        }
    }
}
