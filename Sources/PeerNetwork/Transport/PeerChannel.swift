import NIOCore
import WSClient

/// One WebSocket as the peer protocol uses it: whole messages in, whole messages out. The
/// receiving side is read by one task at a time (the handshake, then the connection's reader).
final class PeerChannel: @unchecked Sendable {
    enum Message: Sendable { case text(String), binary([UInt8]) }

    private var iterator: WebSocketInboundMessageStream.AsyncIterator
    private let outbound: WebSocketOutboundWriter

    init(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, maxMessage: Int) {
        iterator = inbound.messages(maxSize: maxMessage).makeAsyncIterator()
        self.outbound = outbound
    }

    /// The next message, or nil when the peer closed the connection.
    func receive() async throws -> Message? {
        switch try await iterator.next() {
        case nil: return nil
        case let .text(s)?: return .text(s)
        case let .binary(b)?: return .binary(Array(buffer: b))
        }
    }

    func send(text: String) async throws { try await outbound.write(.text(text)) }
    func send(binary: [UInt8]) async throws { try await outbound.write(.binary(ByteBuffer(bytes: binary))) }
}
