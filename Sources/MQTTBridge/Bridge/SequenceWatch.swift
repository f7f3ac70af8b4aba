import FlowchainWire
import Ledger
import Synchronization

/// The newest counter value seen per device (for rules with a `seqField`), so that a jump is
/// recorded as a gap and a repeat is not stored twice. A device's first message after a start is
/// compared with the newest reading the ledger holds for it (in a ring, wherever it is stored).
final class SequenceWatch: Sendable {
    /// The counter `field` of the newest reading stored for `device`, nil when there is none.
    typealias NewestCounter = @Sendable (_ device: String, _ field: String) async -> Int64?

    /// The device id of the readings the bridge records about itself (gaps).
    static let bridgeDevice = "mqtt-bridge"

    private let last = Mutex<[String: Int64]>([:])
    let newestCounter: NewestCounter

    init(store: LedgerStore, newestCounter: NewestCounter? = nil) {
        self.newestCounter = newestCounter ?? { device, field in
            let newest = try? await store.offload { try $0.readings(device: device, limit: 1, newestFirst: true).first }
            return newest.flatMap { (try? StrictJSON.parse($0.reading.payload))?[field]?.int64Value }
        }
    }

    enum Verdict: Equatable {
        case next
        case gap(after: Int64)
        case repeated(last: Int64)
    }

    /// Where `seq` stands for `device`; records it unless it is a repeat.
    func check(device: String, seq: Int64, field: String) async -> Verdict {
        var known = last.withLock { $0[device] }
        if known == nil { known = await newestCounter(device, field) }
        return last.withLock { table in
            if let k = table[device] ?? known {
                if seq <= k {
                    table[device] = k
                    return .repeated(last: k)
                }
                table[device] = seq
                return seq == k + 1 ? .next : .gap(after: k)
            }
            table[device] = seq
            return .next
        }
    }

    /// The bridge's own reading saying which counter values of `device` never arrived.
    static func gapEvent(device: String, topic: String, after: Int64, next: Int64) -> Submission {
        let payload: JSONValue = [
            "event": "gap", "device": .string(device), "topic": .string(topic),
            "after": .int(after), "next": .int(next), "missing": .int(next - after - 1),
        ]
        return .unsigned(device: bridgeDevice, payload: payload.jsonBytes, time: nil, timeQuality: .synced, source: .mqtt)
    }
}
