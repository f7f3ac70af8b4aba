import Foundation

/// A WebSocket client on a bare loopback socket, for tests that must send what no well-behaved
/// client library would (e.g. a text frame that is not UTF-8) and see exactly what comes back.
public final class RawWebSocket {
    let fd: Int32
    /// Bytes read after the handshake's response head.
    var pending: [UInt8] = []

    /// Opens `path` on 127.0.0.1:`port` and completes the handshake; nil when it is refused.
    public init?(port: Int, path: String) {
        guard let fd = LoopbackHTTP.connect(port: port) else { return nil }
        self.fd = fd
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        send(Array(request.utf8))
        var head: [UInt8] = []
        while head.firstRange(of: [13, 10, 13, 10]) == nil {
            guard let chunk = readSome() else { close(fd); return nil }
            head += chunk
        }
        let end = head.firstRange(of: [13, 10, 13, 10])!.upperBound
        guard String(decoding: head[..<end], as: UTF8.self).hasPrefix("HTTP/1.1 101") else { close(fd); return nil }
        pending = Array(head[end...])
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    func readSome() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = read(fd, &buffer, buffer.count)
        return n > 0 ? Array(buffer[0..<n]) : nil
    }

    /// Sends one masked frame with `opcode` (1 text, 2 binary, 8 close) holding `payload`.
    public func sendFrame(opcode: UInt8, _ payload: [UInt8]) {
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65536 {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
        } else {
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((UInt64(payload.count) >> UInt64(shift)) & 0xff)) }
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        send(frame)
    }

    /// Reads frames until a close frame arrives or the connection ends; returns the close code
    /// (nil when the connection ended without one) and the text frames seen before it.
    public func readUntilClose() -> (code: UInt16?, texts: [String]) {
        var texts: [String] = []
        var buffer = pending
        while true {
            while let (opcode, payload, used) = Self.parse(buffer) {
                buffer.removeFirst(used)
                switch opcode {
                case 8: return (payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil, texts)
                case 1: texts.append(String(decoding: payload, as: UTF8.self))
                default: break
                }
            }
            guard let more = readSome() else { return (nil, texts) }
            buffer += more
        }
    }

    /// Reads until `count` text messages arrived (or the connection ended or went quiet); the
    /// rest stays for the next read.
    public func readTexts(_ count: Int) -> [String] {
        var texts: [String] = []
        while texts.count < count {
            while texts.count < count, let (opcode, payload, used) = Self.parse(pending) {
                pending.removeFirst(used)
                if opcode == 1 { texts.append(String(decoding: payload, as: UTF8.self)) }
                if opcode == 8 { return texts }
            }
            if texts.count == count { break }
            guard let more = readSome() else { return texts }
            pending += more
        }
        return texts
    }

    /// One unmasked server frame from the front of `b`: opcode, payload, bytes used.
    static func parse(_ b: [UInt8]) -> (UInt8, [UInt8], Int)? {
        guard b.count >= 2 else { return nil }
        var length = Int(b[1] & 0x7f)
        var offset = 2
        if length == 126 {
            guard b.count >= 4 else { return nil }
            length = Int(b[2]) << 8 | Int(b[3]); offset = 4
        } else if length == 127 {
            guard b.count >= 10 else { return nil }
            length = b[2..<10].reduce(0) { $0 << 8 | Int($1) }; offset = 10
        }
        guard b.count >= offset + length else { return nil }
        return (b[0] & 0x0f, Array(b[offset..<offset + length]), offset + length)
    }
}
