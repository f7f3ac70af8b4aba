/// Builds the canonical binary encoding: fixed field order, big-endian integers, length-prefixed bytes.
public struct BinaryWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }

    public mutating func u32(_ v: UInt32) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func u64(_ v: UInt64) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }

    /// Raw bytes of a length both sides know (digests, keys, signatures).
    public mutating func fixed<C: Collection>(_ v: C) where C.Element == UInt8 { bytes.append(contentsOf: v) }

    /// Up to 255 bytes, prefixed by a one-byte length.
    public mutating func short<C: Collection>(_ v: C) where C.Element == UInt8 {
        precondition(v.count <= 255, "short field longer than 255 bytes")
        u8(UInt8(v.count))
        bytes.append(contentsOf: v)
    }

    /// Bytes prefixed by a four-byte length.
    public mutating func long<C: Collection>(_ v: C) where C.Element == UInt8 {
        u32(UInt32(v.count))
        bytes.append(contentsOf: v)
    }
}
