import FlowchainWire
import Foundation
import Hummingbird
import Ledger
import HummingbirdWebSocket
import Logging
import NIOCore

/// `ws /rpc`: JSON-RPC 2.0 over WebSocket, one request or batch per text message. Requests on one
/// connection run concurrently (up to `rpcConcurrency`), so responses may come back out of order.
struct RPCEndpoint: Sendable {
    typealias Context = ServerRequestContext
    let services: NodeServices
    let logger: Logger

    func add(to router: Router<Context>) {
        let services = self.services
        router.ws("/rpc", shouldUpgrade: { request, context in
            try NodeServices.requireWebSocket(request)
            guard services.mayRead(presented: presentedToken(request)) else { throw services.refuseUpgrade(context, .unauthorized, "this node requires its token for reads: add ?token=… or an Authorization: Bearer header") }
            return .upgrade([:])
        }, onUpgrade: { inbound, outbound, context in
            let token = presentedToken(context.request)
            try await Self.serve(inbound: inbound, outbound: outbound, token: token, services: services)
        })
    }

    static func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, token: String?, services: NodeServices) async throws {
        services.metrics.connectionOpened("rpc")
        defer { services.metrics.connectionClosed("rpc") }
        let session = RPCSession(services: services, token: token) { bytes in
            await DeviceEndpoints.sendText(outbound, bytes)
        }
        defer { session.close() }
        let dispatcher = RPCDispatcher(services: services, session: session)
        var limiter = RateLimiter(perSecond: services.configuration.rateLimit)
        // Requests run concurrently, but readings enter the ledger in the order their messages came.
        let order = IngestOrder()
        let maxInFlight = services.configuration.rpcConcurrency
        try await withThrowingTaskGroup(of: Void.self) { group in
            var inFlight = 0
            for try await message in inbound.messages(maxSize: services.configuration.maxFrameBytes) {
                guard limiter.allow() else {
                    services.metrics.error("rate_limited")
                    _ = await session.send(RPCResponse.error(id: nil, .rateLimited))
                    continue
                }
                guard case let .text(text) = message else {
                    services.metrics.error("binary_frame")
                    _ = await session.send(RPCResponse.error(id: nil, .invalidRequest("binary messages are not accepted; send JSON-RPC as text")))
                    continue
                }
                if inFlight >= maxInFlight {
                    try await group.next()
                    inFlight -= 1
                }
                inFlight += 1
                let turn = order.next()
                group.addTask {
                    if let reply = await handle(Array(text.utf8), dispatcher: dispatcher, turn: turn) {
                        _ = await session.send(reply)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// One message: a request, a notification or a batch. nil when nothing is to be sent back.
    static func handle(_ bytes: [UInt8], dispatcher: RPCDispatcher, turn: IngestTurn = .first()) async -> [UInt8]? {
        defer { turn.finish() }
        let parsed: JSONValue
        do {
            parsed = try StrictJSON.parse(bytes)
        } catch {
            dispatcher.services.metrics.error("parse_error")
            return RPCResponse.error(id: nil, .parse("the message is not valid JSON: \(error)"))
        }
        if case let .array(batch) = parsed {
            guard !batch.isEmpty else { return RPCResponse.error(id: nil, .invalidRequest("an empty batch")) }
            guard batch.count <= 1000 else { return RPCResponse.error(id: nil, .invalidRequest("a batch holds at most 1000 requests")) }
            var replies: [[UInt8]] = []
            for (item, part) in zip(batch, turn.split(batch.count)) {
                if let reply = await handleOne(item, dispatcher: dispatcher, turn: part) { replies.append(reply) }
            }
            guard !replies.isEmpty else { return nil }
            var w = JSONWriter()
            w.beginArray(); for r in replies { w.raw(r) }; w.endArray()
            return w.bytes
        }
        return await handleOne(parsed, dispatcher: dispatcher, turn: turn)
    }

    static func handleOne(_ value: JSONValue, dispatcher: RPCDispatcher, turn: IngestTurn) async -> [UInt8]? {
        defer { turn.finish() }
        switch RPCRequest.from(value) {
        case let .request(request): return await dispatcher.handle(request, turn: turn)
        case let .invalid(id, error):
            dispatcher.services.metrics.error(error.kind ?? "invalid_request")
            return RPCResponse.error(id: id, error)
        }
    }
}
