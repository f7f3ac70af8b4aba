public import Foundation
public import FlowchainCrypto

/// A point on the Chord ring: a 160-bit unsigned integer (SHA-1 sized), arithmetic modulo 2^160.
/// Held as three words, most significant first; the top word uses only its low 32 bits.
public struct ChordID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let bits = 160
    static let topMask: UInt64 = 0xFFFF_FFFF

    var w0: UInt64, w1: UInt64, w2: UInt64

    public static let zero = ChordID(w0: 0, w1: 0, w2: 0)
    public static let max = ChordID(w0: topMask, w1: .max, w2: .max)

    init(w0: UInt64, w1: UInt64, w2: UInt64) {
        self.w0 = w0 & Self.topMask
        self.w1 = w1
        self.w2 = w2
    }

    public init(_ v: UInt64) { self.init(w0: 0, w1: 0, w2: v) }

    /// Exactly 20 big-endian bytes; anything else is refused (a peer sending the wrong length).
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == 20 else { return nil }
        let b = Array(bytes)
        func word(_ r: Range<Int>) -> UInt64 { b[r].reduce(0) { $0 << 8 | UInt64($1) } }
        self.init(w0: word(0..<4), w1: word(4..<12), w2: word(12..<20))
    }

    public init?(hex: String) {
        guard let bytes = Hex.decode(hex) else { return nil }
        self.init(bytes: bytes)
    }

    /// The identifier of `data`: SHA-1, as in the paper (node id = SHA-1 of its public key,
    /// a device's key = SHA-1 of its id).
    public static func hashing<D: ContiguousBytes>(_ data: D) -> ChordID {
        ChordID(bytes: SHA1.hash(data))!
    }

    public var bytes: [UInt8] {
        (0..<4).reversed().map { UInt8(truncatingIfNeeded: w0 >> (8 * UInt64($0))) }
            + (0..<8).reversed().map { UInt8(truncatingIfNeeded: w1 >> (8 * UInt64($0))) }
            + (0..<8).reversed().map { UInt8(truncatingIfNeeded: w2 >> (8 * UInt64($0))) }
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { String(hex.prefix(12)) }

    public static func < (a: ChordID, b: ChordID) -> Bool {
        (a.w0, a.w1, a.w2) < (b.w0, b.w1, b.w2)
    }

    /// a + b mod 2^160.
    public static func &+ (a: ChordID, b: ChordID) -> ChordID {
        let (s2, c2) = a.w2.addingReportingOverflow(b.w2)
        let (s1a, c1a) = a.w1.addingReportingOverflow(b.w1)
        let (s1, c1b) = s1a.addingReportingOverflow(c2 ? 1 : 0)
        let s0 = a.w0 &+ b.w0 &+ ((c1a || c1b) ? 1 : 0)
        return ChordID(w0: s0, w1: s1, w2: s2)
    }

    /// a − b mod 2^160.
    public static func &- (a: ChordID, b: ChordID) -> ChordID {
        let (d2, b2) = a.w2.subtractingReportingOverflow(b.w2)
        let (d1a, b1a) = a.w1.subtractingReportingOverflow(b.w1)
        let (d1, b1b) = d1a.subtractingReportingOverflow(b2 ? 1 : 0)
        let d0 = a.w0 &- b.w0 &- ((b1a || b1b) ? 1 : 0)
        return ChordID(w0: d0, w1: d1, w2: d2)
    }

    /// 2^i mod 2^160, for 0 ≤ i < 160.
    public static func power(_ i: Int) -> ChordID {
        precondition((0..<bits).contains(i), "exponent out of range")
        switch i {
        case 0..<64: return ChordID(w0: 0, w1: 0, w2: 1 << UInt64(i))
        case 64..<128: return ChordID(w0: 0, w1: 1 << UInt64(i - 64), w2: 0)
        default: return ChordID(w0: 1 << UInt64(i - 128), w1: 0, w2: 0)
        }
    }

    /// The start of finger `i` (0-based): self + 2^i mod 2^160 (the paper's n + 2^(k−1)).
    public func fingerStart(_ i: Int) -> ChordID { self &+ Self.power(i) }

    /// Clockwise distance from self to `other`: (other − self) mod 2^160.
    public func distance(to other: ChordID) -> ChordID { other &- self }
}

extension ChordID {
    /// x ∈ (a, b) on the ring; when a == b this is every point but a.
    public func isBetween(_ a: ChordID, _ b: ChordID) -> Bool {
        if a == b { return self != a }
        let d = a.distance(to: self)
        return d != .zero && d < a.distance(to: b)
    }

    /// x ∈ (a, b] on the ring; when a == b this is the whole ring (a lone node owns every key).
    public func isBetween(_ a: ChordID, upTo b: ChordID) -> Bool {
        if a == b { return true }
        let d = a.distance(to: self)
        return d != .zero && d <= a.distance(to: b)
    }

    /// x ∈ [a, b) on the ring; when a == b this is the whole ring.
    public func isBetween(from a: ChordID, _ b: ChordID) -> Bool {
        if a == b { return true }
        return a.distance(to: self) < a.distance(to: b)
    }
}
