public import LedgerModel

/// A JSON-RPC 2.0 error object. Codes -32700…-32600 are the standard ones; -32000… are Flowchain's.
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: Int
    public let message: String
    /// A short machine-readable kind, sent as `data.kind`.
    public let kind: String?
    /// Already counted in the error metrics where it arose (a refused reading), so not again.
    public internal(set) var counted = false

    public init(code: Int, message: String, kind: String? = nil) {
        self.code = code
        self.message = message
        self.kind = kind
    }

    public var description: String { "\(message) (\(code))" }

    public static func parse(_ why: String) -> RPCError { .init(code: -32700, message: "parse error: \(why)", kind: "parse_error") }
    public static func invalidRequest(_ why: String) -> RPCError { .init(code: -32600, message: "invalid request: \(why)", kind: "invalid_request") }
    public static func methodNotFound(_ name: String) -> RPCError {
        .init(code: -32601, message: "method not found: '\(name)'; see docs/rpc.md for the methods", kind: "method_not_found")
    }
    public static func invalidParams(_ why: String) -> RPCError { .init(code: -32602, message: "invalid params: \(why)", kind: "invalid_params") }
    public static func internalError(_ why: String) -> RPCError { .init(code: -32603, message: "internal error: \(why)", kind: "internal") }
    public static let unauthorized = RPCError(code: -32001, message: "this node requires a token for writes; connect with ?token=… or an Authorization: Bearer header", kind: "unauthorized")
    public static func rejected(_ e: IngestError) -> RPCError { .init(code: -32002, message: e.description, kind: e.kind) }
    /// A refused reading: a shape error is invalid params (-32602), a bad credential -32001,
    /// anything the ledger refuses -32002 with the reason's kind.
    public static func refused(_ e: IngestError) -> RPCError {
        var error: RPCError
        switch e {
        case let .malformed(why): error = .init(code: -32602, message: "invalid params: \(why)", kind: "invalid_params")
        case .unauthorized: error = .init(code: -32001, message: e.description, kind: "unauthorized")
        default: error = rejected(e)
        }
        error.counted = true
        return error
    }
    public static let adminRequired = RPCError(
        code: -32001, message: "registering devices over RPC needs the node's token (the node must be started with --token); on the node's machine use flowchain devices add --data-dir",
        kind: "unauthorized")
    public static let tooManySubscriptions = RPCError(code: -32006, message: "too many subscriptions on this connection (at most 64); unsubscribe first", kind: "too_many_subscriptions")
    public static func notFound(_ what: String) -> RPCError { .init(code: -32004, message: "\(what) not found", kind: "not_found") }
    public static func pruned(id: String, block: UInt64, leaf: UInt32) -> RPCError {
        .init(code: -32012, message: "reading \(id) was pruned by retention: its payload is gone; it was leaf \(leaf) of block \(block), whose header remains", kind: "pruned")
    }
    public static let rateLimited = RPCError(code: -32005, message: "rate limit exceeded on this connection; slow down", kind: "rate_limited")

    public func write(into w: inout JSONWriter) {
        w.beginObject()
        w.field("code", code)
        w.field("message", message)
        if let kind {
            w.key("data"); w.beginObject(); w.field("kind", kind); w.endObject()
        }
        w.endObject()
    }
}
