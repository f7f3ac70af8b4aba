import FlowchainWire
import FlowchainCrypto
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Ledger
import Logging
import NIOCore
import CoreMetrics

/// The Web-of-Things device server, compatible with the original Flowchain devices:
/// `ws /object/{id}/send`, `ws /object/{id}/viewer`, `ws /object/{id}/status`,
/// `GET /object/{id}` (Thing Description) and `GET /object/{id}/readings`.
struct DeviceEndpoints: Sendable {
    typealias Context = ServerRequestContext
    let services: NodeServices
    let logger: Logger

    static func device(_ request: Request, _ context: Context) throws -> String {
        let id = context.parameters.get("id") ?? ""
        if let why = DeviceID.problem(with: id) { throw HTTPError(.badRequest, message: why) }
        return id
    }

    /// The device id of a WebSocket route, or a refusal naming what is wrong with it.
    static func upgradeDevice(_ request: Request, _ context: Context, _ services: NodeServices) throws -> String {
        try NodeServices.requireWebSocket(request)
        let id = context.parameters.get("id") ?? ""
        if let why = DeviceID.problem(with: id) { throw services.refuseUpgrade(context, .badRequest, "bad device id: \(why)") }
        return id
    }

    func add(to router: Router<Context>) {
        let services = self.services
        let logger = self.logger

        router.ws("/object/:id/send", shouldUpgrade: { request, context in
            let device = try Self.upgradeDevice(request, context, services)
            guard await services.mayWrite(device: device, presented: presentedToken(request)) else {
                throw services.refuseUpgrade(context, .unauthorized, "sending as device \(device) needs a token (its own or the node's): add ?token=… or an Authorization: Bearer header")
            }
            return .upgrade([:])
        }, onUpgrade: { inbound, outbound, context in
            let device = context.requestContext.parameters.get("id") ?? ""
            let wantsAck = ["1", "true", "yes"].contains(context.request.uri.queryParameters.get("ack").map { String($0) } ?? "")
            let token = presentedToken(context.request)
            try await Self.runSender(device: device, token: token, wantsAck: wantsAck, inbound: inbound, outbound: outbound, services: services, logger: logger)
        })

        router.ws("/object/:id/viewer", shouldUpgrade: { request, context in
            _ = try Self.upgradeDevice(request, context, services)
            guard services.mayRead(presented: presentedToken(request)) else { throw services.refuseUpgrade(context, .unauthorized, "this node requires its token for reads: add ?token=…") }
            return .upgrade([:])
        }, onUpgrade: { inbound, outbound, context in
            let device = context.requestContext.parameters.get("id") ?? ""
            try await Self.runViewer(device: device, inbound: inbound, outbound: outbound, services: services)
        })

        router.ws("/object/:id/status", shouldUpgrade: { request, context in
            _ = try Self.upgradeDevice(request, context, services)
            guard services.mayRead(presented: presentedToken(request)) else { throw services.refuseUpgrade(context, .unauthorized, "this node requires its token for reads: add ?token=…") }
            return .upgrade([:])
        }, onUpgrade: { inbound, outbound, context in
            let device = context.requestContext.parameters.get("id") ?? ""
            try await Self.runStatus(device: device, inbound: inbound, outbound: outbound, services: services)
        })

        router.get("/object/:id") { request, context -> Response in
            let device = try Self.device(request, context)
            guard services.mayRead(presented: presentedToken(request)) else { throw HTTPError(.unauthorized, message: "this node requires its token for reads: add ?token=…") }
            let host = request.head.authority ?? "\(services.configuration.host):\(services.configuration.port)"
            guard let td = try await ThingDescription.make(device: device, host: host, services: services) else {
                return jsonError(.notFound, "no readings from device '\(device)' yet")
            }
            var response = jsonResponse(td)
            response.headers[.contentType] = "application/td+json; charset=utf-8"
            return response
        }

        router.get("/object/:id/readings") { request, context -> Response in
            let device = try Self.device(request, context)
            guard services.mayRead(presented: presentedToken(request)) else { throw HTTPError(.unauthorized, message: "this node requires its token for reads: add ?token=…") }
            let limit = Int(try queryInt(request, "limit") ?? 100)
            guard (1...1000).contains(limit) else { throw HTTPError(.badRequest, message: "limit must be 1…1000") }
            var cursor: ReadingCursor? = nil
            if let text = request.uri.queryParameters.get("cursor") {
                guard let c = ReadingCursor(String(text)) else { throw HTTPError(.badRequest, message: "cursor '\(text)' is not one this node returned") }
                cursor = c
            }
            let (from, to, after) = (try queryInt(request, "from") ?? .min, try queryInt(request, "to") ?? .max, cursor)
            let page = try await services.store.offload { try $0.readings(device: device, from: from, to: to, limit: limit, after: after) }
            var w = JSONWriter()
            ReadingWire.write(page, device: device, into: &w)
            return jsonResponse(w.bytes)
        }
    }

    static func sendText(_ outbound: WebSocketOutboundWriter, _ bytes: [UInt8]) async -> Bool {
        do {
            try await outbound.write(.text(String(decoding: bytes, as: UTF8.self)))
            return true
        } catch {
            return false
        }
    }

    static func errorFrame(_ kind: String, _ message: String) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject(); w.key("error"); w.beginObject(); w.field("kind", kind); w.field("message", message); w.endObject(); w.endObject()
        return w.bytes
    }

    /// Every text frame holding a JSON object becomes a reading of `device`. Frames carrying a
    /// `signature` (or `encoded`) are device-signed readings; any other object is the payload
    /// itself and the node signs it. Errors are always answered; acks only when asked for.
    static func runSender(device: String, token: String?, wantsAck: Bool, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
                          services: NodeServices, logger: Logger) async throws {
        services.presence.senderConnected(device)
        services.metrics.connectionOpened("send")
        defer {
            services.presence.senderDisconnected(device)
            services.metrics.connectionClosed("send")
        }
        var limiter = RateLimiter(perSecond: services.configuration.rateLimit)
        for try await message in inbound.messages(maxSize: services.configuration.maxFrameBytes) {
            guard limiter.allow() else {
                services.metrics.error("rate_limited")
                services.metrics.droppedFrames.increment()
                _ = await sendText(outbound, errorFrame("rate_limited", "over \(services.configuration.rateLimit) frames/s on this connection; frame dropped"))
                continue
            }
            guard case let .text(text) = message else {
                services.metrics.error("binary_frame")
                _ = await sendText(outbound, errorFrame("binary_frame", "binary frames are not accepted; send each reading as a JSON text frame"))
                continue
            }
            let bytes = Array(text.utf8)
            let result = await services.ingest([parseFrame(bytes, device: device)], presented: token)[0]
            switch result {
            case let .success(ack) where wantsAck:
                var w = JSONWriter()
                w.beginObject(); w.key("ack"); ReadingWire.write(ack, into: &w); w.endObject()
                guard await sendText(outbound, w.bytes) else { return }
            case .success: continue
            case let .failure(.queued(why)):
                // Held in this node's durable forward queue for the device's owner: do not re-send.
                var w = JSONWriter()
                w.beginObject(); w.key("queued"); w.beginObject(); w.field("device", device); w.field("message", why); w.endObject(); w.endObject()
                guard await sendText(outbound, w.bytes) else { return }
            case let .failure(error):
                logger.debug("frame refused", metadata: ["device": "\(device)", "error": "\(error)"])
                guard await sendText(outbound, errorFrame(error.kind, error.description)) else { return }
            }
        }
    }

    static func parseFrame(_ bytes: [UInt8], device: String) -> Result<Submission, IngestError> {
        let object: JSONValue
        do {
            object = try StrictJSON.parse(bytes)
        } catch {
            return .failure(.payloadNotJSONObject("the frame is not valid JSON: \(error)"))
        }
        guard case let .object(dict) = object else { return .failure(.payloadNotJSONObject("the frame is JSON but not an object")) }
        if dict["signature"] != nil || dict["encoded"] != nil {
            do {
                return .success(try ReadingWire.submission(from: dict, device: device, defaultSource: .ws))
            } catch {
                return .failure(.malformed(error.description))
            }
        }
        return .success(.unsigned(device: device, payload: bytes, time: nil, timeQuality: .synced, source: .ws))
    }

    /// Streams `device`'s readings as they are committed; reports drops when the viewer is slow.
    static func runViewer(device: String, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, services: NodeServices) async throws {
        services.metrics.connectionOpened("viewer")
        defer { services.metrics.connectionClosed("viewer") }
        let sub = services.feed.subscribe(.readings(device: device))
        defer { services.feed.unsubscribe(sub) }
        try await untilClosed(inbound) {
            var seen = 0
            for await event in sub.events {
                if sub.dropped > seen {
                    seen = sub.dropped
                    var w = JSONWriter()
                    w.beginObject(); w.field("dropped", seen); w.endObject()
                    guard await sendText(outbound, w.bytes) else { return }
                }
                guard case let .reading(r) = event else { continue }
                var w = JSONWriter()
                ReadingWire.write(r, into: &w)
                guard await sendText(outbound, w.bytes) else { return }
            }
        }
    }

    /// `{"isAlive": true|false}` now and whenever the device's sender connects or disconnects.
    static func runStatus(device: String, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, services: NodeServices) async throws {
        services.metrics.connectionOpened("status")
        defer { services.metrics.connectionClosed("status") }
        let (id, changes) = services.presence.watch(device)
        defer { services.presence.unwatch(device, id: id) }
        try await untilClosed(inbound) {
            for await alive in changes {
                guard await sendText(outbound, Array("{\"isAlive\":\(alive)}".utf8)) else { return }
            }
        }
    }

    /// Runs `body` until it ends or the client closes the connection, whichever comes first.
    static func untilClosed(_ inbound: WebSocketInboundStream, _ body: @escaping @Sendable () async -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { for try await _ in inbound {} }
            group.addTask { await body() }
            _ = try await group.next()
            group.cancelAll()
        }
    }
}
