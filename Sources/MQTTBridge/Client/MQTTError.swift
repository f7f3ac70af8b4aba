internal import CMosquitto

/// A libmosquitto failure: the operation, libmosquitto's code and its own words for it.
public struct MQTTError: Error, Sendable, Equatable, CustomStringConvertible {
    public let operation: String
    public let code: Int32
    public let message: String

    public var description: String { "\(operation): \(message) (\(code))" }

    public init(operation: String, code: Int32, message: String) {
        self.operation = operation
        self.code = code
        self.message = message
    }

    /// An error returned by a libmosquitto call, described by `mosquitto_strerror`.
    static func call(_ operation: String, _ code: Int32) -> MQTTError {
        MQTTError(operation: operation, code: code, message: String(cString: mosquitto_strerror(code)))
    }

    /// A broker's refusal of our CONNECT, described by `mosquitto_connack_string` (MQTT 3.1.1
    /// codes) or `mosquitto_reason_string` (MQTT 5 reason codes, 128 and above).
    static func connack(_ code: Int32) -> MQTTError {
        let text = code >= 128 ? String(cString: mosquitto_reason_string(code)) : String(cString: mosquitto_connack_string(code))
        return MQTTError(operation: "connect", code: code, message: text)
    }

    /// Throws unless `code` is MOSQ_ERR_SUCCESS.
    static func check(_ operation: String, _ code: Int32) throws(MQTTError) {
        guard code == Int32(MOSQ_ERR_SUCCESS.rawValue) else { throw call(operation, code) }
    }
}
