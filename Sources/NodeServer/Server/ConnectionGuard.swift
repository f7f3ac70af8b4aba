import FlowchainWire
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import Synchronization

/// The edge of every connection, in front of Hummingbird's HTTP and WebSocket handling:
/// - over `maxConnections` open connections, a new one is answered `503` with a reason and closed;
/// - a request head that is not complete within `headerTimeout` closes the connection (`408`), so
///   half-open requests cannot pile up until nobody else gets in;
/// - a refused WebSocket upgrade (Hummingbird answers an empty `400`) gets the status and reason
///   the route recorded with `refuseUpgrade`.
final class ConnectionGuard: Sendable {
    let maxConnections: Int
    let headerTimeout: TimeAmount
    let onRefused: @Sendable (String) -> Void
    private let open = Atomic<Int>(0)
    /// Reasons recorded by routes for the upgrade they are refusing, by channel.
    private let refusals = Mutex<[ObjectIdentifier: (status: Int, message: String)]>([:])

    init(maxConnections: Int, headerTimeout: TimeAmount, onRefused: @escaping @Sendable (String) -> Void = { _ in }) {
        self.maxConnections = maxConnections
        self.headerTimeout = headerTimeout
        self.onRefused = onRefused
    }

    /// Connections open now.
    var openConnections: Int { open.load(ordering: .relaxed) }

    func opened() -> Int { open.wrappingAdd(1, ordering: .relaxed).newValue }
    func closed(_ channel: ObjectIdentifier) {
        open.wrappingSubtract(1, ordering: .relaxed)
        refusals.withLock { _ = $0.removeValue(forKey: channel) }
    }

    func recordRefusal(_ channel: any Channel, status: Int, message: String) {
        refusals.withLock { $0[ObjectIdentifier(channel)] = (status, message) }
    }

    func takeRefusal(_ channel: ObjectIdentifier) -> (status: Int, message: String)? {
        refusals.withLock { $0.removeValue(forKey: channel) }
    }

    /// A complete HTTP/1.1 response with a JSON error body, closing the connection.
    static func response(status: Int, reason: String, message: String) -> ByteBuffer {
        var w = JSONWriter()
        w.beginObject(); w.key("error"); w.beginObject(); w.field("status", status); w.field("message", message); w.endObject(); w.endObject()
        let head = "HTTP/1.1 \(status) \(reason)\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: \(w.bytes.count)\r\nconnection: close\r\n\r\n"
        return ByteBuffer(bytes: Array(head.utf8) + w.bytes)
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 408: "Request Timeout"
        case 503: "Service Unavailable"
        default: "Bad Request"
        }
    }
}

/// Wraps a server child channel so that `ConnectionGuardHandler` is the first handler of each connection.
struct GuardedChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner
    let guardian: ConnectionGuard

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ConnectionGuardHandler(guardian: guardian), position: .first)
        }.flatMap { inner.setup(channel: channel, logger: logger) }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Byte-level guard for one connection (see `ConnectionGuard`). Event-loop bound, like every handler.
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let guardian: ConnectionGuard
    private var counted = false
    private var overLimit = false
    private var headComplete = false
    /// The last bytes of the head seen so far, to find "\r\n\r\n" across reads.
    private var tail: [UInt8] = []
    private var deadline: Scheduled<Void>?
    private var id: ObjectIdentifier?

    private static let emptyBadRequest = Array("HTTP/1.1 400".utf8)

    init(guardian: ConnectionGuard) { self.guardian = guardian }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { activate(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        activate(context)
        context.fireChannelActive()
    }

    private func activate(_ context: ChannelHandlerContext) {
        guard !counted else { return }
        counted = true
        id = ObjectIdentifier(context.channel)
        overLimit = guardian.opened() > guardian.maxConnections
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: guardian.headerTimeout) {
            let (handler, context) = loopBound.value
            guard !handler.headComplete else { return }
            handler.guardian.onRefused("header_timeout")
            handler.respondAndClose(context, status: 408, message: "the request head did not arrive within \(handler.guardian.headerTimeout.nanoseconds / 1_000_000_000) s")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        if counted, let id { guardian.closed(id) }
        counted = false
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if headComplete {
            context.fireChannelRead(data)
            return
        }
        let buffer = unwrapInboundIn(data)
        let bytes = tail + buffer.readableBytesView
        let found = bytes.firstRange(of: [13, 10, 13, 10]) != nil
        tail = Array(bytes.suffix(3))
        if found {
            headComplete = true
            deadline?.cancel()
            tail = []
        }
        if overLimit {
            // Read the whole head before answering, so the client reads the answer, not a reset.
            if found {
                guardian.onRefused("too_many_connections")
                respondAndClose(context, status: 503, message: "this node serves at most \(guardian.maxConnections) connections at once; try again later")
            }
            return
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Hummingbird answers a refused WebSocket upgrade with an empty 400; put the route's reason in.
        if let id, unwrapOutboundIn(data).readableBytesView.starts(with: Self.emptyBadRequest), let refusal = guardian.takeRefusal(id) {
            let replacement = ConnectionGuard.response(status: refusal.status, reason: ConnectionGuard.reasonPhrase(refusal.status), message: refusal.message)
            context.write(wrapOutboundOut(replacement), promise: promise)
            return
        }
        context.write(data, promise: promise)
    }

    private func respondAndClose(_ context: ChannelHandlerContext, status: Int, message: String) {
        let response = ConnectionGuard.response(status: status, reason: ConnectionGuard.reasonPhrase(status), message: message)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(response)).whenComplete { _ in bound.value.close(promise: nil) }
    }
}

/// The request context of every route: Hummingbird's WebSocket-capable context, plus the connection's
/// channel, so a route refusing an upgrade can give its reason (`NodeServices.refuseUpgrade`).
public struct ServerRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        channel = source.channel
    }

    /// The client's address, for logs.
    public var remoteAddress: String { channel.remoteAddress.map { "\($0)" } ?? "unknown" }
}
