import Hummingbird
import HummingbirdWebSocket

/// A WebSocket endpoint another module serves (e.g. `ws /peer`), without that module depending
/// on the HTTP server: the handler gets the upgraded connection and the client's address.
public struct WebSocketRoute: RouteInstaller {
    public let path: String
    public let handler: @Sendable (WebSocketInboundStream, WebSocketOutboundWriter, String) async -> Void

    public init(path: String, handler: @escaping @Sendable (WebSocketInboundStream, WebSocketOutboundWriter, String) async -> Void) {
        self.path = path
        self.handler = handler
    }

    public func install(on router: Router<ServerRequestContext>, services: NodeServices) {
        let handler = self.handler
        router.ws(RouterPath(path), shouldUpgrade: { request, _ in
            try NodeServices.requireWebSocket(request)
            return .upgrade([:])
        }, onUpgrade: { inbound, outbound, context in
            services.metrics.connectionOpened("peer")
            defer { services.metrics.connectionClosed("peer") }
            await handler(inbound, outbound, context.requestContext.remoteAddress)
        })
    }
}
