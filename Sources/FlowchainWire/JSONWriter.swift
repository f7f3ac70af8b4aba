public import LedgerModel

/// Writes compact JSON text straight into bytes. Used for everything the node sends, because a
/// reading's payload must go out as the exact bytes that were signed (spliced in, not re-encoded).
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    private var needsComma: [Bool] = [false]

    public init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    private mutating func separate() {
        if needsComma[needsComma.count - 1] { bytes.append(UInt8(ascii: ",")) }
        needsComma[needsComma.count - 1] = true
    }

    public mutating func beginObject() { separate(); bytes.append(UInt8(ascii: "{")); needsComma.append(false) }
    public mutating func endObject() { bytes.append(UInt8(ascii: "}")); needsComma.removeLast() }
    public mutating func beginArray() { separate(); bytes.append(UInt8(ascii: "[")); needsComma.append(false) }
    public mutating func endArray() { bytes.append(UInt8(ascii: "]")); needsComma.removeLast() }

    /// An object key; the next value written belongs to it.
    public mutating func key(_ k: String) {
        separate()
        appendString(k)
        bytes.append(UInt8(ascii: ":"))
        needsComma[needsComma.count - 1] = false
    }

    public mutating func string(_ s: String) { separate(); appendString(s) }
    public mutating func int<I: BinaryInteger>(_ v: I) { separate(); bytes.append(contentsOf: String(v).utf8) }
    public mutating func bool(_ v: Bool) { separate(); bytes.append(contentsOf: (v ? "true" : "false").utf8) }
    public mutating func null() { separate(); bytes.append(contentsOf: "null".utf8) }

    public mutating func double(_ v: Double) {
        separate()
        if v.isFinite { bytes.append(contentsOf: (v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)).utf8) } else { bytes.append(contentsOf: "null".utf8) }
    }

    /// Writes a parsed value back out: object keys sorted, numbers exactly as they were written.
    public mutating func value(_ v: JSONValue) {
        switch v {
        case .null: null()
        case let .bool(b): bool(b)
        case let .number(n): raw(n.utf8)
        case let .string(s): string(s)
        case let .array(a):
            beginArray(); for e in a { value(e) }; endArray()
        case let .object(o):
            beginObject(); for k in o.keys.sorted() { key(k); value(o[k]!) }; endObject()
        }
    }

    /// Splices already-valid JSON text (e.g. a validated payload) in as a value.
    public mutating func raw<C: Collection>(_ json: C) where C.Element == UInt8 { separate(); bytes.append(contentsOf: json) }

    public mutating func field(_ k: String, _ v: String) { key(k); string(v) }
    public mutating func field<I: BinaryInteger>(_ k: String, _ v: I) { key(k); int(v) }
    public mutating func field(_ k: String, _ v: Bool) { key(k); bool(v) }

    private mutating func appendString(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 0xF)]])
            default: bytes.append(c)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

extension JSONValue {
    /// Compact JSON text (keys sorted).
    public var jsonBytes: [UInt8] {
        var w = JSONWriter()
        w.value(self)
        return w.bytes
    }

    public var jsonText: String { String(decoding: jsonBytes, as: UTF8.self) }
}
