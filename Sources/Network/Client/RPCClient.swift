import Foundation
import Logging
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
    private let pending = Mutex<[Int: CheckedContinuation<UncheckedBox<Any>, any Error>]>([:])
    private let nextID = Atomic<Int>(1)
    /// Server notifications (`subscription` messages), as parsed JSON objects.
    public let notifications: AsyncStream<UncheckedBox<[String: Any]>>
    private let notify: AsyncStream<UncheckedBox<[String: Any]>>.Continuation

    init(outbound: WebSocketOutboundWriter) {
        self.outbound = outbound
        (notifications, notify) = AsyncStream.makeStream(bufferingPolicy: .bufferingOldest(100_000))
    }

    /// Calls `method` and returns its `result` (JSONSerialization values), or throws its error.
    public func call(_ method: String, _ params: [String: Any] = [:]) async throws -> Any {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let request: [String: Any] = ["jsonrpc": "2.0", "id": id, "method": method, "params": params]
        let text = String(decoding: try JSONSerialization.data(withJSONObject: request), as: UTF8.self)
        let box = try await withCheckedThrowingContinuation { (c: CheckedContinuation<UncheckedBox<Any>, any Error>) in
            pending.withLock { $0[id] = c }
            Task {
                do { try await outbound.write(.text(text)) } catch { self.fail(id, error) }
            }
        }
        return box.value
    }

    private func fail(_ id: Int, _ error: any Error) {
        pending.withLock { $0.removeValue(forKey: id) }?.resume(throwing: error)
    }

    func receive(_ text: String) {
        guard let value = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else { return }
        for item in (value as? [Any]) ?? [value] {
            guard let object = item as? [String: Any] else { continue }
            if let id = (object["id"] as? NSNumber)?.intValue, let c = pending.withLock({ $0.removeValue(forKey: id) }) {
                if let error = object["error"] as? [String: Any] {
                    c.resume(throwing: RemoteError(
                        code: (error["code"] as? NSNumber)?.intValue ?? 0, message: error["message"] as? String ?? "error",
                        kind: (error["data"] as? [String: Any])?["kind"] as? String))
                } else {
                    c.resume(returning: UncheckedBox(object["result"] ?? NSNull()))
                }
            } else if object["method"] != nil {
                notify.yield(UncheckedBox(object))
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
        _ url: String, token: String? = nil, logger: Logger = Logger(label: "flowchain-client"),
        _ body: @escaping @Sendable (RPCConnection) async throws -> T
    ) async throws -> T {
        let target = try rpcURL(url, token: token)
        let result = Mutex<Result<T, any Error>?>(nil)
        let config = WebSocketClientConfiguration(maxFrameSize: 1 << 20)
        do {
            try await WebSocketClient.connect(url: target, configuration: config, logger: logger) { inbound, outbound, _ in
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
