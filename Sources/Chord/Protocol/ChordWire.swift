/// The binary encoding of `ChordEnvelope` for the peer transport. Big-endian, length-prefixed:
///
///     version u8 (1) · sender node · request id u64 · kind u8 · body
///     node  = id length u8 (must be 20) · id · address length u16 · address (UTF-8, ≤ 512 bytes)
///     list  = count u8 (≤ 64) · node…
///     bodies: findSuccessor key(20) | neighbours, notify, ping: empty | leaving opt-node list
///             step list list | neighbours opt-node list | ack: empty | refused text (u16 + UTF-8)
///     opt-node = 0 | 1 node
///
/// Decoding checks every length against what is left and says where it failed.
public enum ChordWire {
    public static let version: UInt8 = 1
    public static let maxAddressBytes = 512

    enum Kind: UInt8 {
        case findSuccessor = 1, neighbours, notify, ping, leaving
        case step = 0x81, neighboursReply, ack, refused
    }

    public static func encode(_ e: ChordEnvelope) -> [UInt8] {
        var out: [UInt8] = [version]
        node(e.sender, into: &out)
        for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: e.requestID >> UInt64(s))) }
        switch e.payload {
        case .request(.findSuccessor(let key)): out.append(Kind.findSuccessor.rawValue); out += key.bytes
        case .request(.neighbours): out.append(Kind.neighbours.rawValue)
        case .request(.notify): out.append(Kind.notify.rawValue)
        case .request(.ping): out.append(Kind.ping.rawValue)
        case .request(.leaving(let p, let s)): out.append(Kind.leaving.rawValue); optional(p, into: &out); list(s, into: &out)
        case .response(.step(let s, let c)): out.append(Kind.step.rawValue); list(s, into: &out); list(c, into: &out)
        case .response(.neighbours(let p, let s)): out.append(Kind.neighboursReply.rawValue); optional(p, into: &out); list(s, into: &out)
        case .response(.ack): out.append(Kind.ack.rawValue)
        case .response(.refused(let text)):
            out.append(Kind.refused.rawValue)
            let b = Array(text.utf8.prefix(1024))
            out += [UInt8(b.count >> 8), UInt8(b.count & 0xFF)] + b
        }
        return out
    }

    private static func node(_ n: NodeRef, into out: inout [UInt8]) {
        out.append(20)
        out += n.id.bytes
        let a = Array(n.address.utf8.prefix(maxAddressBytes))
        out += [UInt8(a.count >> 8), UInt8(a.count & 0xFF)] + a
    }

    private static func optional(_ n: NodeRef?, into out: inout [UInt8]) {
        if let n { out.append(1); node(n, into: &out) } else { out.append(0) }
    }

    private static func list(_ l: [NodeRef], into out: inout [UInt8]) {
        let l = l.prefix(ChordConfiguration.maxListLength)
        out.append(UInt8(l.count))
        for n in l { node(n, into: &out) }
    }

    public static func decode(_ bytes: [UInt8]) throws(ChordWireError) -> ChordEnvelope {
        var r = Reader(bytes: bytes)
        let v = try r.u8("version")
        guard v == version else { throw ChordWireError(offset: 0, "unsupported version \(v) (this node speaks \(version))") }
        let sender = try r.node("sender")
        let id = try r.u64("request id")
        let kindOffset = r.offset
        let raw = try r.u8("message kind")
        guard let kind = Kind(rawValue: raw) else { throw ChordWireError(offset: kindOffset, "unknown message kind \(raw)") }
        let payload: ChordPayload
        switch kind {
        case .findSuccessor: payload = .request(.findSuccessor(key: try r.id("key")))
        case .neighbours: payload = .request(.neighbours)
        case .notify: payload = .request(.notify)
        case .ping: payload = .request(.ping)
        case .leaving: payload = .request(.leaving(predecessor: try r.optionalNode("predecessor"), successors: try r.list("successors")))
        case .step: payload = .response(.step(successors: try r.list("successors"), closer: try r.list("closer nodes")))
        case .neighboursReply:
            payload = .response(.neighbours(predecessor: try r.optionalNode("predecessor"), successors: try r.list("successors")))
        case .ack: payload = .response(.ack)
        case .refused: payload = .response(.refused(try r.text("refusal")))
        }
        guard r.offset == bytes.count else {
            throw ChordWireError(offset: r.offset, "\(bytes.count - r.offset) unexpected byte(s) after the message")
        }
        return ChordEnvelope(sender: sender, requestID: id, payload: payload)
    }

    struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func take(_ n: Int, _ what: String) throws(ChordWireError) -> ArraySlice<UInt8> {
            guard bytes.count - offset >= n else {
                throw ChordWireError(offset: offset, "\(what): needs \(n) byte(s), \(bytes.count - offset) left")
            }
            defer { offset += n }
            return bytes[offset..<offset + n]
        }

        mutating func u8(_ what: String) throws(ChordWireError) -> UInt8 { try take(1, what).first! }
        mutating func u16(_ what: String) throws(ChordWireError) -> Int { try take(2, what).reduce(0) { $0 << 8 | Int($1) } }
        mutating func u64(_ what: String) throws(ChordWireError) -> UInt64 { try take(8, what).reduce(0) { $0 << 8 | UInt64($1) } }

        mutating func id(_ what: String) throws(ChordWireError) -> ChordID {
            ChordID(bytes: try take(20, what))!
        }

        mutating func node(_ what: String) throws(ChordWireError) -> NodeRef {
            let at = offset
            let n = Int(try u8("\(what) id length"))
            guard n == 20 else { throw ChordWireError(offset: at, "\(what): an id is 20 bytes, not \(n)") }
            let id = try id("\(what) id")
            let address = try text("\(what) address", limit: maxAddressBytes)
            return NodeRef(id: id, address: address)
        }

        mutating func optionalNode(_ what: String) throws(ChordWireError) -> NodeRef? {
            let at = offset
            switch try u8(what) {
            case 0: return nil
            case 1: return try node(what)
            case let f: throw ChordWireError(offset: at, "\(what): presence flag \(f) is neither 0 nor 1")
            }
        }

        mutating func list(_ what: String) throws(ChordWireError) -> [NodeRef] {
            let at = offset
            let n = Int(try u8("\(what) count"))
            guard n <= ChordConfiguration.maxListLength else {
                throw ChordWireError(offset: at, "\(what): \(n) entries, at most \(ChordConfiguration.maxListLength)")
            }
            var out: [NodeRef] = []
            for i in 0..<n { out.append(try node("\(what)[\(i)]")) }
            return out
        }

        mutating func text(_ what: String, limit: Int = 1024) throws(ChordWireError) -> String {
            let at = offset
            let n = try u16("\(what) length")
            guard n <= limit else { throw ChordWireError(offset: at, "\(what): \(n) bytes, at most \(limit)") }
            let b = try take(n, what)
            guard let s = String(validating: b, as: UTF8.self) else { throw ChordWireError(offset: at + 2, "\(what) is not UTF-8") }
            return s
        }
    }
}

public struct ChordWireError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Byte offset where decoding failed.
    public let offset: Int
    public let reason: String
    init(offset: Int, _ reason: String) {
        self.offset = offset
        self.reason = reason
    }
    public var description: String { "malformed Chord message at byte \(offset): \(reason)" }
}
