/// What a source asks the ledger to store: every source (WebSocket frames, RPC, MQTT, sensors,
/// the demo feed) hands one of these to `IngestEngine.ingest`.
public enum Submission: Sendable {
    /// A reading signed elsewhere (by the device); checked, then stored as it is.
    case signed(Reading)
    /// A payload from a device that cannot sign: the node numbers it with the device's next `seq`,
    /// stamps it (`time` nil means now) and signs it with its own key.
    case unsigned(device: String, payload: [UInt8], time: Int64?, timeQuality: TimeQuality, source: ReadingSource)

    /// A payload given as JSON text, for a device that cannot sign, stamped now.
    public static func unsigned(device: String, json: String, source: ReadingSource, timeQuality: TimeQuality = .synced) -> Submission {
        .unsigned(device: device, payload: Array(json.utf8), time: nil, timeQuality: timeQuality, source: source)
    }

    /// The device the submission is for.
    public var device: String {
        switch self {
        case let .signed(r): r.device
        case let .unsigned(device, _, _, _, _): device
        }
    }
}
