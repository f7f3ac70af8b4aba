import NIOCore
import NIOWebSocket
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
    /// Frames a message is cut into, whatever this side's own frame limit: the peer's server
    /// refuses frames over its `--max-frame` (at least this much while the peer network is on).
    static let fragment = 16 * 1024

    /// Sends one binary message as frames of at most `fragment` bytes.
    func send(binary: [UInt8]) async throws {
        var buffer = ByteBuffer(bytes: binary)
        guard buffer.readableBytes > Self.fragment else {
            return try await outbound.write(.binary(buffer))
        }
        var opcode = WebSocketOpcode.binary
        while buffer.readableBytes > 0 {
            let slice = buffer.readSlice(length: min(Self.fragment, buffer.readableBytes))!
            try await outbound.write(.custom(WebSocketFrame(fin: buffer.readableBytes == 0, opcode: opcode, data: slice)))
            opcode = .continuation
        }
    }
}
