/// Why a canonical encoding could not be decoded, naming the field at fault.
public enum DecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(field: String, needed: Int, available: Int)
    case trailingBytes(count: Int)
    case oversize(field: String, length: Int, limit: Int)
    case invalid(field: String, reason: String)

    public var description: String {
        switch self {
        case let .truncated(field, needed, available):
            return "truncated encoding: field '\(field)' needs \(needed) bytes, \(available) left"
        case let .trailingBytes(count):
            return "\(count) unexpected trailing bytes after the last field"
        case let .oversize(field, length, limit):
            return "field '\(field)' is \(length) bytes, over the limit of \(limit)"
        case let .invalid(field, reason):
            return "field '\(field)' is invalid: \(reason)"
        }
    }
}

/// Reads a canonical encoding field by field; every read names its field for the error.
public struct BinaryReader {
    private let bytes: ArraySlice<UInt8>
    private var offset: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes[...]
        offset = bytes.startIndex
    }

    public var remaining: Int { bytes.endIndex - offset }

    private mutating func take(_ n: Int, _ field: String) throws -> ArraySlice<UInt8> {
        guard n <= remaining else { throw DecodingError.truncated(field: field, needed: n, available: remaining) }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    public mutating func u8(_ field: String) throws -> UInt8 { try take(1, field).first! }

    public mutating func u32(_ field: String) throws -> UInt32 {
        try take(4, field).reduce(0) { $0 << 8 | UInt32($1) }
    }

    public mutating func u64(_ field: String) throws -> UInt64 {
        try take(8, field).reduce(0) { $0 << 8 | UInt64($1) }
    }

    public mutating func i64(_ field: String) throws -> Int64 { Int64(bitPattern: try u64(field)) }

    public mutating func fixed(_ n: Int, _ field: String) throws -> [UInt8] { Array(try take(n, field)) }

    public mutating func short(_ field: String, limit: Int = 255) throws -> [UInt8] {
        let n = Int(try u8("\(field).length"))
        guard n <= limit else { throw DecodingError.oversize(field: field, length: n, limit: limit) }
        return Array(try take(n, field))
    }

    public mutating func long(_ field: String, limit: Int) throws -> [UInt8] {
        let n = Int(try u32("\(field).length"))
        guard n <= limit else { throw DecodingError.oversize(field: field, length: n, limit: limit) }
        return Array(try take(n, field))
    }

    /// Call after the last field: anything left over is an error, not ignored.
    public func finish() throws {
        if remaining != 0 { throw DecodingError.trailingBytes(count: remaining) }
    }
}
