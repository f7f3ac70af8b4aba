public import LedgerModel

/// One parsed JSON-RPC 2.0 request (or notification, when it has no id).
public struct RPCRequest: Sendable {
    public let method: String
    public let params: JSONValue?
    /// nil for a notification; otherwise a string, a number or null.
    public let id: JSONValue?
    public var isNotification: Bool { id == nil }

    public init(method: String, params: JSONValue?, id: JSONValue?) {
        self.method = method
        self.params = params
        self.id = id
    }

    public enum Parsed: Sendable {
        case request(RPCRequest)
        /// Not a valid request: answer `error` to `id` (null when it could not be read).
        case invalid(id: JSONValue, error: RPCError)
    }

    /// Parses a request object, or says why it is not one.
    public static func from(_ value: JSONValue) -> Parsed {
        guard case let .object(object) = value else { return .invalid(id: .null, error: .invalidRequest("a request must be a JSON object")) }
        let id = object["id"]
        switch id {
        case nil, .string?, .number?, .null?: break
        default: return .invalid(id: .null, error: .invalidRequest("'id' must be a string, a number or null"))
        }
        guard object["jsonrpc"] == .string("2.0") else { return .invalid(id: id ?? .null, error: .invalidRequest("'jsonrpc' must be \"2.0\"")) }
        guard case let .string(method)? = object["method"] else { return .invalid(id: id ?? .null, error: .invalidRequest("'method' must be a string")) }
        switch object["params"] {
        case nil, .object?, .array?: break
        default: return .invalid(id: id ?? .null, error: .invalidRequest("'params' must be an object or an array"))
        }
        return .request(RPCRequest(method: method, params: object["params"], id: id))
    }

    /// Named params as an object (empty when none were given).
    public func object() throws(RPCError) -> [String: JSONValue] {
        switch params {
        case nil: return [:]
        case let .object(o)?: return o
        default: throw .invalidParams("params must be an object with named members")
        }
    }
}

/// Builds responses and notifications.
public enum RPCResponse {
    static func writeID(_ id: JSONValue?, into w: inout JSONWriter) {
        switch id {
        case let .string(s)?: w.string(s)
        case let .number(n)?: w.raw(n.utf8)
        default: w.null()
        }
    }

    public static func result(id: JSONValue?, _ body: (inout JSONWriter) -> Void) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.field("jsonrpc", "2.0")
        w.key("id"); writeID(id, into: &w)
        w.key("result"); body(&w)
        w.endObject()
        return w.bytes
    }

    public static func error(id: JSONValue?, _ error: RPCError) -> [UInt8] {
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
