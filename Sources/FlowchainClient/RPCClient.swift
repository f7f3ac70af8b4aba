public import FlowchainWire
public import Foundation
import NIOSSL
public import LedgerModel
public import Logging
import NIOCore
import Synchronization
import WSClient
import NIOWebSocket

/// A JSON-RPC 2.0 client over one WebSocket to a node's `/rpc`, for the CLI and for tests.
public final class RPCConnection: Sendable {
    public struct RemoteError: Error, CustomStringConvertible, Sendable {
        public let code: Int
        public let message: String
        public let kind: String?
        public var description: String { message }
    }

    private let outbound: WebSocketOutboundWriter
    private let pending = Mutex<[Int: CheckedContinuation<JSONValue, any Error>]>([:])
    private let nextID = Atomic<Int>(1)
    /// Server notifications (`subscription` messages): `{"method", "params"}` objects.
    public let notifications: AsyncStream<JSONValue>
    private let notify: AsyncStream<JSONValue>.Continuation

    init(outbound: WebSocketOutboundWriter) {
        self.outbound = outbound
        (notifications, notify) = AsyncStream.makeStream(bufferingPolicy: .bufferingOldest(100_000))
    }

    /// Calls `method` and returns its `result`, or throws its error (`RemoteError`).
    public func call(_ method: String, _ params: [String: JSONValue] = [:]) async throws -> JSONValue {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let request: JSONValue = ["jsonrpc": "2.0", "id": .int(id), "method": .string(method), "params": .object(params)]
        let text = request.jsonText
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<JSONValue, any Error>) in
            pending.withLock { $0[id] = c }
            Task {
                do { try await outbound.write(.text(text)) } catch { self.fail(id, error) }
            }
        }
    }

    private func fail(_ id: Int, _ error: any Error) {
        pending.withLock { $0.removeValue(forKey: id) }?.resume(throwing: error)
    }

    func receive(_ text: String) {
        guard let value = try? StrictJSON.parse(Array(text.utf8), maxDepth: 128) else { return }
        for item in value.arrayValue ?? [value] {
            guard case let .object(object) = item else { continue }
            if let id = object["id"]?.int64Value, let c = pending.withLock({ $0.removeValue(forKey: Int(id)) }) {
                if let error = object["error"] {
                    c.resume(throwing: RemoteError(
                        code: error["code"]?.int64Value.map { Int($0) } ?? 0, message: error["message"]?.stringValue ?? "error",
                        kind: error["data"]?["kind"]?.stringValue))
                } else {
                    c.resume(returning: object["result"] ?? .null)
                }
            } else if object["method"] != nil {
                notify.yield(item)
            }
        }
    }

    func closed(_ error: any Error) {
        let all = pending.withLock { d in defer { d.removeAll() }; return Array(d.values) }
        for c in all { c.resume(throwing: error) }
        notify.finish()
    }

    /// Connects to `url` (`ws://host:port` or `http://…`; `/rpc` is added when missing), runs
    /// `body` with the connection, then closes it.
    public static func with<T: Sendable>(
        _ url: String, token: String? = nil, ca: String? = ProcessInfo.processInfo.environment["FLOWCHAIN_CA"], logger: Logger = Logger(label: "flowchain-client"),
        _ body: @escaping @Sendable (RPCConnection) async throws -> T
    ) async throws -> T {
        let target = try rpcURL(url, token: token)
        let result = Mutex<Result<T, any Error>?>(nil)
        var config = WebSocketClientConfiguration(maxFrameSize: 1 << 20)
        // wss:// to a node with its own CA: trust that CA ($FLOWCHAIN_CA), else the system's. A
        // node reached by IP address is checked against the CA only (TLS cannot name an IP).
        var tls: TLSConfiguration? = nil
        if target.hasPrefix("wss://"), let ca {
            var t = TLSConfiguration.makeClientConfiguration()
            t.trustRoots = .file(ca)
            let host = target.dropFirst(6).prefix { $0 != ":" && $0 != "/" }
            if host.allSatisfy({ $0.isNumber || $0 == "." }) || host.hasPrefix("[") {
                t.certificateVerification = .noHostnameVerification
                config.sniHostname = "flowchain-node"
            }
            tls = t
        }
        do {
            try await WebSocketClient.connect(url: target, configuration: config, tlsConfiguration: tls, logger: logger) { inbound, outbound, _ in
                let connection = RPCConnection(outbound: outbound)
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            for try await message in inbound.messages(maxSize: 1 << 24) {
                                if case let .text(text) = message { connection.receive(text) }
                            }
                            connection.closed(ClientError.closed)
                        } catch {
                            connection.closed(error)
                        }
                    }
                    let outcome: Result<T, any Error>
                    do { outcome = .success(try await body(connection)) } catch { outcome = .failure(error) }
                    result.withLock { $0 = outcome }
                    try? await outbound.close(.normalClosure, reason: nil)
                    group.cancelAll()
                }
            }
        } catch {
            throw ClientError.connect(target, "\(error)")
        }
        guard let outcome = result.withLock({ $0 }) else { throw ClientError.closed }
        return try outcome.get()
    }

    static func rpcURL(_ base: String, token: String?) throws -> String {
        var url = base
        if url.hasPrefix("http://") { url = "ws://" + url.dropFirst(7) }
        if url.hasPrefix("https://") { url = "wss://" + url.dropFirst(8) }
        if !url.contains("://") { url = "ws://" + url }
        guard url.hasPrefix("ws://") || url.hasPrefix("wss://") else { throw ClientError.badURL(base) }
        while url.hasSuffix("/") { url.removeLast() }
        if !url.hasSuffix("/rpc") { url += "/rpc" }
        if let token { url += "?token=" + (token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token) }
        return url
    }

    public enum ClientError: Error, CustomStringConvertible {
        case badURL(String)
        case connect(String, String)
        case closed

        public var description: String {
            switch self {
            case let .badURL(u): return "'\(u)' is not a node URL; use ws://host:port or http://host:port"
            case let .connect(u, why): return "cannot talk to \(u): \(why)"
            case .closed: return "the node closed the connection"
            }
        }
    }
}
