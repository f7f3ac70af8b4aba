import FlowchainWire
import FlowchainCrypto
import Foundation
import Hummingbird
import HummingbirdTLS
import NIOSSL
import HummingbirdCore
import HummingbirdWebSocket
import Ledger
import Logging
import NIOCore
import ServiceLifecycle

/// Adds routes to the node's server from outside this module: the peer transport's `/peer`, an
/// embedding application's own endpoints. HTTP and WebSocket routes alike (WebSocket routes with
/// Hummingbird's `router.ws`).
public protocol RouteInstaller: Sendable {
    func install(on router: Router<ServerRequestContext>, services: NodeServices)
}

/// The node's one HTTP/WebSocket port: the Web-of-Things device server, `/rpc`, `/health`,
/// `/metrics`, the dashboard, and the routes of the installers it is given.
public struct FlowchainServer: Service {
    public typealias Context = ServerRequestContext
    let services: NodeServices
    let logger: Logger
    let routes: [any RouteInstaller]
    let onListening: @Sendable (String, Int) -> Void

    /// - Parameters:
    ///   - routes: more routes, installed after the node's own.
    ///   - onListening: called with the bound host and port (useful with port 0).
    public init(
        services: NodeServices, logger: Logger, routes: [any RouteInstaller] = [],
        onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }
    ) {
        self.services = services
        self.logger = logger
        self.routes = routes
        self.onListening = onListening
    }

    public func run() async throws {
        let config = services.configuration
        if config.token == nil, !Self.isLoopback(config.host) {
            logger.warning("""
                listening on \(config.host) without a token: anyone who can reach port \(config.port) can write readings \
                as any device that has no token of its own (and bind new device ids to their keys), and read everything. \
                Start with --token (or FLOWCHAIN_TOKEN) unless this network is trusted.
                """)
        }
        if let certificate = config.tlsCertificate, let key = config.tlsKey {
            let tls: TLSConfiguration
            do {
                tls = TLSConfiguration.makeServerConfiguration(
                    certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
                    privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            } catch {
                throw ServerError.tls("cannot load the TLS certificate \(certificate) or key \(key): \(error)")
            }
            try await Self.listening(on: config) { try await makeApplication(scheme: "https") { try TLSChannel($0, tlsConfiguration: tls) }.run() }
        } else {
            try await Self.listening(on: config) { try await makeApplication().run() }
        }
    }

    /// Runs the server, turning a socket that cannot be bound into an error that says which
    /// address and what to do (NIO's says `bind(descriptor:ptr:bytes:): Address already in use`).
    static func listening(on config: ServerConfiguration, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as IOError where [EADDRINUSE, EACCES, EADDRNOTAVAIL].contains(error.errnoCode) {
            let address = "\(config.host):\(config.port)"
            switch error.errnoCode {
            case EADDRINUSE:
                throw ServerError.listen("cannot listen on \(address): the address is in use (another node or program listens there); choose another with --port (0 picks a free one)")
            case EACCES:
                throw ServerError.listen("cannot listen on \(address): permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE); choose another with --port")
            default:
                throw ServerError.listen("cannot listen on \(address): no interface of this machine has that address; check --host")
            }
        }
    }

    /// The Hummingbird application behind `run()`: routes, connection guard, limits. Tests run it
    /// in-process with HummingbirdTesting.
    public func makeApplication() -> some ApplicationProtocol {
        makeApplication(scheme: "http") { $0 }
    }

    /// The application with each connection's channel wrapped by `wrap` (TLS, for https).
    func makeApplication<Outer: ServerChildChannel>(scheme: String, wrap: @escaping @Sendable (GuardedChannel<HTTP1WebSocketUpgradeChannel>) throws -> Outer) -> some ApplicationProtocol {
        let config = services.configuration
        let router = Router(context: Context.self)
        router.middlewares.add(ErrorLogMiddleware(logger: logger))
        addHTTPRoutes(router)
        DeviceEndpoints(services: services, logger: logger).add(to: router)
        RPCEndpoint(services: services, logger: logger).add(to: router)
        for installer in routes { installer.install(on: router, services: services) }

        var appLogger = logger
        appLogger.logLevel = max(logger.logLevel, .notice)
        // Every connection passes the guard first (connection limit, header timeout, upgrade refusals).
        // The accept loop keeps a little headroom above the limit so that refusals can be answered.
        let guardian = services.guardian
        let webSocketResponder = router.buildResponder()
        let channelConfiguration = HTTP1WebSocketUpgradeChannel.Configuration(
            http1: .init(idleTimeout: .seconds(Int64(config.idleTimeout))),
            ws: .init(
                maxFrameSize: config.maxFrameBytes,
                autoPing: config.pingInterval > 0 ? .enabled(timePeriod: .seconds(config.pingInterval)) : .disabled,
                closeTimeout: .seconds(5),
                // Text frames that are not UTF-8 are closed with 1007 (RFC 6455 §8.1), not patched with U+FFFD.
                validateUTF8: true))
        let app = Application(
            router: router,
            server: HTTPServerBuilder { responder in
                try wrap(GuardedChannel(
                    inner: HTTP1WebSocketUpgradeChannel(responder: responder, webSocketResponder: webSocketResponder, configuration: channelConfiguration),
                    guardian: guardian))
            },
            configuration: .init(
                address: .hostname(config.host, port: config.port),
                serverName: "flowchain",
                availableConnectionsDelegate: MaximumAvailableConnections(config.maxConnections + 64)),
            onServerRunning: { [onListening, logger] channel in
                let port = channel.localAddress?.port ?? config.port
                logger.info("listening on \(scheme)://\(config.host):\(port) (WoT devices at /object/{id}/send, JSON-RPC at /rpc, dashboard at /)")
                onListening(config.host, port)
            },
            logger: appLogger)
        return app
    }

    /// True for addresses only this machine can reach: 127.0.0.0/8, ::1 and localhost.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || (host.hasPrefix("127.") && host.split(separator: ".").count == 4)
    }

    private func addHTTPRoutes(_ router: Router<Context>) {
        let services = self.services
        // From the engine's in-memory counters: cheap enough to poll, whatever the ledger's size.
        router.get("/health") { _, _ -> Response in
            let now = await services.engine.snapshot()
            var w = JSONWriter()
            w.beginObject()
            w.field("status", "ok")
            w.key("tip"); if let tip = now.tip { w.int(tip.height) } else { w.null() }
            w.field("readings", now.readings)
            w.field("pending", now.pending)
            w.field("publicKey", services.publicKey.hex)
            w.endObject()
            return jsonResponse(w.bytes)
        }
        router.get("/metrics") { _, _ -> Response in
            let ledger = try? await services.store.offload { (bytes: try $0.fileBytes(), prunedBelow: try $0.prunedBelow()) }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: services.metrics.exposition(storeTransactions: services.store.transactions, ledger: ledger))))
        }
        router.get("/") { _, _ -> Response in Dashboard.page() }
        router.get("/dashboard.js") { _, _ -> Response in Dashboard.script() }
    }
}

/// Logs unexpected handler errors once, with the path; HTTP errors pass through as they are.
struct ErrorLogMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            throw error
        } catch {
            logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            throw HTTPError(.internalServerError, message: "\(error)")
        }
    }
}

enum ServerError: Error, CustomStringConvertible {
    case tls(String)
    case listen(String)
    var description: String {
        switch self { case let .tls(why), let .listen(why): why }
    }
}
