import FlowchainWire
import Foundation
import Ledger

/// How messages on matching topics become readings.
public struct BridgeRule: Sendable, Equatable {
    /// Where the device id comes from.
    public enum DeviceSource: Sendable, Equatable {
        /// The topic level at this index (0-based): `sensors/+/temperature` → 1.
        case topicLevel(Int)
        /// One device for every matching topic.
        case fixed(String)
    }

    /// How a payload is read.
    public enum PayloadFormat: String, Sendable, Equatable, CaseIterable {
        /// A JSON object, stored as sent.
        case json
        /// A bare number or string, stored as `{"<field>": value}`.
        case value
        /// `key=value` pairs separated by spaces, commas or semicolons; numbers stay numbers.
        case keyValue = "key-value"
        /// A JSON object if it looks like JSON (`{` or `[` first), else key=value pairs if it has
        /// them, else a bare value.
        case auto
    }

    public var filter: TopicFilter
    public var device: DeviceSource
    public var format: PayloadFormat = .auto
    /// The field name a bare value is stored under.
    public var valueField = "value"
    /// A payload field holding the time of the reading (ms since the epoch, or seconds when below
    /// 10^11); arrival time otherwise.
    public var timeField: String? = nil
    /// A payload field holding the device's own message counter: gaps in it are recorded as
    /// events (messages lost before they reached the node), repeats are not stored twice.
    public var seqField: String? = nil
    /// Also record the topic in the payload under this field (nil: don't).
    public var topicField: String? = "topic"
    public var qos: Int32 = 1

    public init(filter: TopicFilter, device: DeviceSource, format: PayloadFormat = .auto) {
        self.filter = filter
        self.device = device
        self.format = format
    }

    /// The simple case (`--subscribe FILTER`): the device is the first `+` level, or else the
    /// topic's last level.
    public static func simple(_ filter: TopicFilter) -> BridgeRule {
        let plus = filter.levels.firstIndex(of: "+")
        return BridgeRule(filter: filter, device: plus.map { .topicLevel($0) } ?? .topicLevel(-1))
    }

    /// Why a message was not made into a reading; each is counted in `/metrics`.
    public enum Refusal: String, Sendable, Error, CaseIterable {
        case noRule = "no_rule"
        case badDevice = "bad_device"
        case notUTF8 = "not_utf8"
        case badPayload = "bad_payload"
        case badTime = "bad_time"
        case tooLarge = "too_large"
        case duplicate = "duplicate"
    }

    /// A message made ready for the ledger: the submission, and the device's own counter if the
    /// rule names one and the payload carries it.
    public struct Prepared: Sendable {
        public let submission: Submission
        public let device: String
        public let seq: Int64?
    }

    /// The submission for a message on `topic`, or why there is none.
    public func submission(topic: String, payload: [UInt8], arrival: Int64, maxPayload: Int) -> Result<Submission, Refusal> {
        prepare(topic: topic, payload: payload, arrival: arrival, maxPayload: maxPayload).map(\.submission)
    }

    /// The submission for a message on `topic` with the device's counter, or why there is none.
    public func prepare(topic: String, payload: [UInt8], arrival: Int64, arrivalQuality: TimeQuality = .synced, maxPayload: Int) -> Result<Prepared, Refusal> {
        guard filter.match(topic) != nil else { return .failure(.noRule) }
        guard payload.count <= maxPayload else { return .failure(.tooLarge) }
        let levels = topic.split(separator: "/", omittingEmptySubsequences: false)
        let device: String
        switch self.device {
        case let .fixed(id): device = id
        case let .topicLevel(i):
            let index = i < 0 ? levels.count + i : i
            guard levels.indices.contains(index) else { return .failure(.badDevice) }
            device = String(levels[index])
        }
        guard DeviceID.problem(with: device) == nil else { return .failure(.badDevice) }
        guard var object = Self.object(payload, format: format, valueField: valueField) else {
            return .failure(String(validating: payload, as: UTF8.self) == nil ? .notUTF8 : .badPayload)
        }
        // Stamped on arrival with the node's clock (as synchronised as it is), or the device's own time.
        var time: Int64? = arrival
        var quality = arrivalQuality
        if let field = timeField {
            // The device's own time is as good as the device says (`"timeSynced": false` from a
            // board without a real-time clock before NTP ran); a device that says nothing is trusted.
            quality = object["timeSynced"]?.boolValue == false ? .unsynced : .synced
            guard let value = object[field], let n = value.doubleValue, n.isFinite, n >= 0, n < 1e15 else { return .failure(.badTime) }
            time = Int64(n < 1e11 ? n * 1000 : n)
        }
        let addTopic = topicField.map { object[$0] == nil } ?? false
        if addTopic, let field = topicField { object[field] = .string(topic) }
        // A JSON object that needs nothing added is stored exactly as the device sent it.
        let bytes = !addTopic && Self.isObject(payload) ? payload : JSONValue.object(object).jsonBytes
        let seq = seqField.flatMap { object[$0]?.int64Value }
        return .success(Prepared(submission: .unsigned(device: device, payload: bytes, time: time, timeQuality: quality, source: .mqtt), device: device, seq: seq))
    }

    static func isObject(_ payload: [UInt8]) -> Bool { (try? StrictJSON.validateObject(payload)) != nil }

    /// The payload as a JSON object in `format`, or nil.
    static func object(_ payload: [UInt8], format: PayloadFormat, valueField: String) -> [String: JSONValue]? {
        switch format {
        case .json:
            return (try? StrictJSON.parse(payload, maxDepth: StrictJSON.maxDepth))?.objectValue
        case .value:
            return bareValue(payload).map { [valueField: $0] }
        case .keyValue:
            return keyValues(payload)
        case .auto:
            // What looks like JSON must be a JSON object; a JSON array is not taken for a string.
            let first = payload.first { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }
            if first == UInt8(ascii: "{") || first == UInt8(ascii: "[") { return object(payload, format: .json, valueField: valueField) }
            if payload.contains(UInt8(ascii: "=")), let pairs = keyValues(payload) { return pairs }
            return bareValue(payload).map { [valueField: $0] }
        }
    }

    /// The payload as text: UTF-8 without control characters other than tab and line breaks (a
    /// binary payload is not taken for a string).
    static func text(_ payload: [UInt8]) -> String? {
        guard !payload.contains(where: { ($0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D) || $0 == 0x7F }) else { return nil }
        return String(validating: payload, as: UTF8.self)
    }

    /// A JSON number when the text is one, else the text as a string (non-empty, ≤ 1 KiB).
    static func bareValue(_ payload: [UInt8]) -> JSONValue? {
        guard let text = text(payload) else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.utf8.count <= 1024 else { return nil }
        if let number = number(trimmed) { return number }
        if trimmed == "true" || trimmed == "false" { return .bool(trimmed == "true") }
        return .string(trimmed)
    }

    static func number(_ text: String) -> JSONValue? {
        guard let v = try? StrictJSON.parse(Array(text.utf8)), case .number = v else { return nil }
        return v
    }

    /// `a=1 b=x` (separated by spaces, commas or semicolons); nil unless every part is key=value.
    static func keyValues(_ payload: [UInt8]) -> [String: JSONValue]? {
        guard let text = text(payload) else { return nil }
        var out: [String: JSONValue] = [:]
        for part in text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == ";" || $0 == "\n" || $0 == "\t" || $0 == "\r" }) {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, !kv[0].isEmpty else { return nil }
            let value = String(kv[1])
            out[String(kv[0])] = number(value) ?? .string(value)
        }
        return out.isEmpty ? nil : out
    }
}
