/// A reader for strict RFC 8259 JSON in UTF-8: it validates reading payloads and parses every JSON
/// text the node receives (RPC messages, device frames) into a `JSONValue`.
///
/// Payloads are stored as the exact bytes a device signed and spliced raw into every response, so
/// anything a strict reader (a browser's `JSON.parse`, Python's `json`) would refuse must be refused
/// here: trailing commas, leading zeros, `NaN`, control characters in strings, lone surrogates,
/// invalid UTF-8 (including UTF-16 and UTF-32 text), a byte-order mark, and duplicate keys.
public enum StrictJSON {
    /// Deepest nesting of objects and arrays a payload may have.
    public static let maxDepth = 32
    /// Deepest nesting of a whole message: a payload inside a request inside a batch.
    public static let maxMessageDepth = maxDepth + 8

    /// Why a text is not a strict JSON object, and at which byte.
    public struct Problem: Error, Equatable, Sendable, CustomStringConvertible {
        public let offset: Int
        public let reason: String
        public var description: String { "\(reason) at byte \(offset)" }
        public init(offset: Int, reason: String) {
            self.offset = offset
            self.reason = reason
        }
    }

    /// Throws unless `bytes` is one JSON object (surrounding whitespace allowed) in strict RFC 8259.
    public static func validateObject(_ bytes: [UInt8]) throws(Problem) {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { throw Problem(offset: 0, reason: "a byte-order mark is not allowed") }
        if bytes.starts(with: [0xFE, 0xFF]) || bytes.starts(with: [0xFF, 0xFE]) {
            throw Problem(offset: 0, reason: "UTF-16 text is not allowed; send UTF-8")
        }
        if let zero = bytes.firstIndex(of: 0) {
            throw Problem(offset: zero, reason: "a NUL byte (UTF-16 or UTF-32 text?); send UTF-8")
        }
        var p = Parser(bytes: bytes, build: false, maxDepth: maxDepth)
        p.skipSpace()
        guard p.peek == UInt8(ascii: "{") else {
            throw p.problem(p.atEnd ? "empty text, expected a JSON object" : "expected a JSON object ('{')")
        }
        _ = try p.value(depth: 0)
        p.skipSpace()
        guard p.atEnd else { throw p.problem("unexpected text after the object") }
    }

    /// Parses one JSON value (surrounding whitespace allowed) under the same strict rules.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = maxMessageDepth) throws(Problem) -> JSONValue {
        var p = Parser(bytes: bytes, build: true, maxDepth: maxDepth)
        p.skipSpace()
        if p.atEnd { throw p.problem("empty text, expected a JSON value") }
        let value = try p.value(depth: 0)
        p.skipSpace()
        guard p.atEnd else { throw p.problem("unexpected text after the value") }
        return value
    }

    struct Parser {
        let bytes: [UInt8]
        /// Whether to build the value (parse) or only check it (validate).
        let build: Bool
        let maxDepth: Int
        var i = 0

        var atEnd: Bool { i >= bytes.count }
        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        func problem(_ reason: String) -> Problem { Problem(offset: i, reason: reason) }

        mutating func skipSpace() {
            while let c = peek, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { i += 1 }
        }

        mutating func expect(_ c: Character) throws(Problem) {
            guard peek == c.asciiValue else { throw problem(atEnd ? "unexpected end, expected '\(c)'" : "expected '\(c)'") }
            i += 1
        }

        /// One value; `.null` stands in for everything when only validating.
        mutating func value(depth: Int) throws(Problem) -> JSONValue {
            skipSpace()
            guard let c = peek else { throw problem("unexpected end, expected a value") }
            switch c {
            case UInt8(ascii: "{"): return try object(depth: depth + 1)
            case UInt8(ascii: "["): return try array(depth: depth + 1)
            case UInt8(ascii: "\""):
                let text = try string(collect: build)
                return build ? .string(String(decoding: text, as: UTF8.self)) : .null
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = i
                try number()
                return build ? .number(String(decoding: bytes[start..<i], as: UTF8.self)) : .null
            default: throw problem("unexpected character \(Self.show(c)), expected a value")
            }
        }

        mutating func object(depth: Int) throws(Problem) -> JSONValue {
            guard depth <= maxDepth else { throw problem("nested deeper than \(maxDepth) levels") }
            i += 1
            var keys = Set<[UInt8]>()
            var members: [String: JSONValue] = [:]
            skipSpace()
            if peek == UInt8(ascii: "}") { i += 1; return build ? .object([:]) : .null }
            while true {
                skipSpace()
                guard peek == UInt8(ascii: "\"") else {
                    throw problem(peek == UInt8(ascii: "}") ? "trailing comma before '}'" : "expected a string key")
                }
                let keyStart = i
                let key = try string(collect: true)
                guard keys.insert(key).inserted else {
                    throw Problem(offset: keyStart, reason: "duplicate key \"\(String(decoding: key, as: UTF8.self).prefix(64))\"")
                }
                skipSpace()
                try expect(":")
                let member = try value(depth: depth)
                if build { members[String(decoding: key, as: UTF8.self)] = member }
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                try expect("}")
                return build ? .object(members) : .null
            }
        }

        mutating func array(depth: Int) throws(Problem) -> JSONValue {
            guard depth <= maxDepth else { throw problem("nested deeper than \(maxDepth) levels") }
            i += 1
            var elements: [JSONValue] = []
            skipSpace()
            if peek == UInt8(ascii: "]") { i += 1; return build ? .array([]) : .null }
            while true {
                skipSpace()
                if peek == UInt8(ascii: "]") { throw problem("trailing comma before ']'") }
                let element = try value(depth: depth)
                if build { elements.append(element) }
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                try expect("]")
                return build ? .array(elements) : .null
            }
        }

        mutating func literal(_ word: StaticString) throws(Problem) {
            let n = word.utf8CodeUnitCount
            let matches = i + n <= bytes.count && word.withUTF8Buffer { w in (0..<n).allSatisfy { bytes[i + $0] == w[$0] } }
            guard matches else {
                throw problem("unexpected character \(Self.show(bytes[i])), expected a value (NaN, Infinity and bare words are not JSON)")
            }
            i += n
        }

        mutating func digits() -> Int {
            let start = i
            while let c = peek, c >= 0x30, c <= 0x39 { i += 1 }
            return i - start
        }

        mutating func number() throws(Problem) {
            if peek == UInt8(ascii: "-") { i += 1 }
            if peek == UInt8(ascii: "0") {
                i += 1
                if let c = peek, c >= 0x30, c <= 0x39 { throw problem("a number with a leading zero") }
            } else if digits() == 0 {
                throw problem("a number needs digits (Infinity is not JSON)")
            }
            if peek == UInt8(ascii: ".") {
                i += 1
                guard digits() > 0 else { throw problem("a number needs digits after '.'") }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                i += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { throw problem("a number needs digits in its exponent") }
            }
        }

        /// Reads a string; with `collect`, returns its decoded UTF-8 bytes (keys are compared decoded).
        mutating func string(collect: Bool) throws(Problem) -> [UInt8] {
            i += 1
            var out: [UInt8] = []
            while true {
                guard let c = peek else { throw problem("unterminated string") }
                switch c {
                case UInt8(ascii: "\""):
                    i += 1
                    return out
                case UInt8(ascii: "\\"):
                    let scalar = try escape()
                    if collect { out += Array(String(Character(scalar)).utf8) }
                case 0..<0x20:
                    throw problem("control character \(Self.show(c)) in a string (escape it)")
                case 0..<0x80:
                    if collect { out.append(c) }
                    i += 1
                default:
                    let n = try utf8Sequence()
                    if collect { out += bytes[i..<i + n] }
                    i += n
                }
            }
        }

        /// One backslash escape; `i` is at the backslash.
        mutating func escape() throws(Problem) -> Unicode.Scalar {
            i += 1
            guard let c = peek else { throw problem("unterminated escape") }
            i += 1
            switch c {
            case UInt8(ascii: "\""): return "\""
            case UInt8(ascii: "\\"): return "\\"
            case UInt8(ascii: "/"): return "/"
            case UInt8(ascii: "b"): return "\u{08}"
            case UInt8(ascii: "f"): return "\u{0C}"
            case UInt8(ascii: "n"): return "\n"
            case UInt8(ascii: "r"): return "\r"
            case UInt8(ascii: "t"): return "\t"
            case UInt8(ascii: "u"):
                let start = i - 2
                let unit = try hex4()
                if (0xDC00...0xDFFF).contains(unit) { throw Problem(offset: start, reason: "lone low surrogate \\u\(String(unit, radix: 16))") }
                if (0xD800...0xDBFF).contains(unit) {
                    guard peek == UInt8(ascii: "\\"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "u") else {
                        throw Problem(offset: start, reason: "lone high surrogate \\u\(String(unit, radix: 16))")
                    }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw Problem(offset: start, reason: "high surrogate \\u\(String(unit, radix: 16)) not followed by a low one")
                    }
                    return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))!
                }
                return Unicode.Scalar(unit)!
            default:
                i -= 1
                throw problem("invalid escape '\\\(Self.show(c))'")
            }
        }

        mutating func hex4() throws(Problem) -> UInt32 {
            guard i + 4 <= bytes.count else { throw problem("\\u needs four hex digits") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: throw problem("\\u needs four hex digits")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }

        /// The length of the well-formed UTF-8 sequence at `i` (Unicode Table 3-7), or a problem.
        func utf8Sequence() throws(Problem) -> Int {
            let b0 = bytes[i]
            func cont(_ k: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
                i + k < bytes.count && range.contains(bytes[i + k])
            }
            switch b0 {
            case 0xC2...0xDF where cont(1): return 2
            case 0xE0 where cont(1, 0xA0...0xBF) && cont(2): return 3
            case 0xE1...0xEC where cont(1) && cont(2): return 3
            case 0xED where cont(1, 0x80...0x9F) && cont(2): return 3
            case 0xEE...0xEF where cont(1) && cont(2): return 3
            case 0xF0 where cont(1, 0x90...0xBF) && cont(2) && cont(3): return 4
            case 0xF1...0xF3 where cont(1) && cont(2) && cont(3): return 4
            case 0xF4 where cont(1, 0x80...0x8F) && cont(2) && cont(3): return 4
            default: throw problem("invalid UTF-8 (byte 0x\(String(b0, radix: 16)))")
            }
        }

        static func show(_ c: UInt8) -> String {
            (0x21...0x7E).contains(c) ? "'\(Character(Unicode.Scalar(c)))'" : "0x\(String(c, radix: 16))"
        }
    }
}
