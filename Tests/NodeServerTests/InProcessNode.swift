import FlowchainCrypto
import FlowchainTesting
import FlowchainWire
import Foundation
import Ledger
import Logging
@testable import NodeServer
import Synchronization

/// A node's server parts in this process: a store in a temporary directory, a running engine and
/// the services the routes use. No child process, no port unless a test asks for a live server.
struct InProcessNode {
    static let key = Fixtures.key(41)
    let dir = TemporaryDirectory()
    let engine: IngestEngine
    let services: NodeServices

    init(configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        var config = ServerConfiguration()
        config.port = 0
        configure(&config)
        var ingest = IngestEngine.Configuration()
        ingest.blockInterval = .milliseconds(50)
        // Settled only at shutdown: every query here must see what was acknowledged through the
        // journaled batch being published, not through a settle that happened to come first.
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.key.publicKey,
                                    settle: .init(interval: .seconds(3600), whenIdle: .seconds(3600)))
        engine = try IngestEngine(store: store, key: Self.key, configuration: ingest).running()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        services = NodeServices(engine: engine, metrics: NodeMetrics(), configuration: config, version: "test", logger: logger)
    }

    var server: FlowchainServer { FlowchainServer(services: services, logger: services.logger) }

    /// One `/rpc` connection without a socket: messages in, replies and notifications collected.
    func rpc(token: String? = nil) -> RPCProbe { RPCProbe(services: services, token: token) }

    /// Waits (bounded) until `condition` holds.
    func eventually(_ what: String, within: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
        guard try await FlowchainTesting.eventually(timeout: within, every: .milliseconds(10), condition) else { throw ProbeError.timeout(what) }
    }
}

enum ProbeError: Error { case timeout(String) }

/// Drives the RPC endpoint's message handler directly, as its read loop would.
final class RPCProbe: Sendable {
    let session: RPCSession
    let dispatcher: RPCDispatcher
    private let pushed: Pushed

    /// What the session pushed, shared with its send closure.
    final class Pushed: Sendable {
        let list = Mutex<[JSONValue]>([])
    }

    init(services: NodeServices, token: String?) {
        let box = Pushed()
        pushed = box
        session = RPCSession(services: services, token: token) { bytes in
            if let v = try? JSONValue(parsing: bytes) { box.list.withLock { $0.append(v) } }
            return true
        }
        dispatcher = RPCDispatcher(services: services, session: session)
    }


    /// The reply to one message (a request, a notification or a batch), parsed; nil when none.
    func send(_ text: String) async -> JSONValue? {
        guard let reply = await RPCEndpoint.handle(Array(text.utf8), dispatcher: dispatcher) else { return nil }
        return try? JSONValue(parsing: reply)
    }

    /// Calls `method` and returns the whole response object.
    func call(_ method: String, _ params: JSONValue = [:], id: Int = 1) async -> JSONValue {
        let request: JSONValue = ["jsonrpc": "2.0", "id": .int(id), "method": .string(method), "params": params]
        return await send(request.jsonText) ?? ["missing": true]
    }

    /// Notifications pushed to this connection so far (subscriptions).
    var notifications: [JSONValue] { pushed.list.withLock { $0 } }

    deinit { session.close() }
}
