import Foundation

/// One parsed JSON-RPC 2.0 request (or notification, when it has no id).
public struct RPCRequest: @unchecked Sendable {
    // @unchecked Sendable: `params` and `id` hold only JSONSerialization's immutable value types.
    public let method: String
    public let params: Any?
    /// nil for a notification; otherwise a String, NSNumber or NSNull.
    public let id: Any?
    public var isNotification: Bool { id == nil }

    public enum Parsed {
        case request(RPCRequest)
        /// Not a valid request: answer `error` to `id` (null when it could not be read).
        case invalid(id: Any?, error: RPCError)
    }

    /// Parses a request object, or says why it is not one.
    public static func from(_ value: Any) -> Parsed {
        guard let object = value as? [String: Any] else { return .invalid(id: NSNull(), error: .invalidRequest("a request must be a JSON object")) }
        let id = object["id"]
        if let id, !(id is String || id is NSNull || id is NSNumber) || (id as? NSNumber).map(isBoolean) == true {
            return .invalid(id: NSNull(), error: .invalidRequest("'id' must be a string, a number or null"))
        }
        guard object["jsonrpc"] as? String == "2.0" else { return .invalid(id: id ?? NSNull(), error: .invalidRequest("'jsonrpc' must be \"2.0\"")) }
        guard let method = object["method"] as? String else { return .invalid(id: id ?? NSNull(), error: .invalidRequest("'method' must be a string")) }
        if let params = object["params"], !(params is [String: Any] || params is [Any]) {
            return .invalid(id: id ?? NSNull(), error: .invalidRequest("'params' must be an object or an array"))
        }
        return .request(RPCRequest(method: method, params: object["params"], id: id))
    }

    /// Named params as an object (empty when none were given).
    public func object() throws(RPCError) -> [String: Any] {
        switch params {
        case nil: return [:]
        case let o as [String: Any]: return o
        default: throw .invalidParams("params must be an object with named members")
        }
    }
}

/// Builds responses and notifications.
public enum RPCResponse {
    static func writeID(_ id: Any?, into w: inout JSONWriter) {
        switch id {
        case let s as String: w.string(s)
        case let n as NSNumber:
            if let data = try? JSONSerialization.data(withJSONObject: [n]), data.count > 2 { w.raw(Array(data.dropFirst().dropLast())) } else { w.null() }
        default: w.null()
        }
    }

    public static func result(id: Any?, _ body: (inout JSONWriter) -> Void) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.field("jsonrpc", "2.0")
        w.key("id"); writeID(id, into: &w)
        w.key("result"); body(&w)
        w.endObject()
        return w.bytes
    }

    public static func error(id: Any?, _ error: RPCError) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.field("jsonrpc", "2.0")
        w.key("id"); writeID(id, into: &w)
        w.key("error"); error.write(into: &w)
        w.endObject()
        return w.bytes
    }

    public static func notification(method: String, _ params: (inout JSONWriter) -> Void) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.field("jsonrpc", "2.0")
        w.field("method", method)
        w.key("params"); params(&w)
        w.endObject()
        return w.bytes
    }
}
