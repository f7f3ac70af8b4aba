public import FlowchainCrypto

/// An unsigned 256-bit integer, enough for PoS targets, kernel hashes and chain weights.
/// Limbs are most significant first. Every operation is exact; overflow saturates or is reported.
public struct UInt256: Hashable, Comparable, Sendable, CustomStringConvertible {
    var limbs: (UInt64, UInt64, UInt64, UInt64)

    public static let zero = UInt256(0)
    public static let max = UInt256(limbs: (.max, .max, .max, .max))

    init(limbs: (UInt64, UInt64, UInt64, UInt64)) { self.limbs = limbs }

    public init(_ v: UInt64) { limbs = (0, 0, 0, v) }

    /// A digest read as a big-endian number.
    public init(_ d: Digest32) {
        limbs = d.withUnsafeBytes { raw in
            func word(_ i: Int) -> UInt64 { UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
            return (word(0), word(1), word(2), word(3))
        }
    }

    public init?(hex: String) {
        guard hex.count <= 64, let bytes = Hex.decode(String(repeating: "0", count: 64 - hex.count) + hex),
              let d = try? Digest32(bytes: bytes) else { return nil }
        self.init(d)
    }

    var array: [UInt64] { [limbs.0, limbs.1, limbs.2, limbs.3] }
    init(array a: [UInt64]) { limbs = (a[0], a[1], a[2], a[3]) }

    /// 32 big-endian bytes.
    public var bytes: [UInt8] { array.flatMap { w in (0..<8).reversed().map { UInt8(truncatingIfNeeded: w >> (8 * UInt64($0))) } } }
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
    public var isZero: Bool { self == .zero }

    public static func < (a: UInt256, b: UInt256) -> Bool {
        if a.limbs.0 != b.limbs.0 { return a.limbs.0 < b.limbs.0 }
        if a.limbs.1 != b.limbs.1 { return a.limbs.1 < b.limbs.1 }
        if a.limbs.2 != b.limbs.2 { return a.limbs.2 < b.limbs.2 }
        return a.limbs.3 < b.limbs.3
    }

    public static func == (a: UInt256, b: UInt256) -> Bool {
        a.limbs.0 == b.limbs.0 && a.limbs.1 == b.limbs.1 && a.limbs.2 == b.limbs.2 && a.limbs.3 == b.limbs.3
    }

    public func hash(into h: inout Hasher) {
        h.combine(limbs.0); h.combine(limbs.1); h.combine(limbs.2); h.combine(limbs.3)
    }

    /// Sum and whether it overflowed.
    public func addingReportingOverflow(_ o: UInt256) -> (UInt256, Bool) {
        var a = array, carry: UInt64 = 0
        let b = o.array
        for i in (0..<4).reversed() {
            let (s1, c1) = a[i].addingReportingOverflow(b[i])
            let (s2, c2) = s1.addingReportingOverflow(carry)
            a[i] = s2
            carry = (c1 ? 1 : 0) + (c2 ? 1 : 0)
        }
        return (UInt256(array: a), carry != 0)
    }

    /// Difference; the caller guarantees `o <= self`.
    public func subtracting(_ o: UInt256) -> UInt256 {
        var a = array, borrow: UInt64 = 0
        let b = o.array
        for i in (0..<4).reversed() {
            let (d1, b1) = a[i].subtractingReportingOverflow(b[i])
            let (d2, b2) = d1.subtractingReportingOverflow(borrow)
            a[i] = d2
            borrow = (b1 ? 1 : 0) + (b2 ? 1 : 0)
        }
        return UInt256(array: a)
    }

    /// Product with a 64-bit factor, saturating at `max`.
    public func multipliedSaturating(by m: UInt64) -> UInt256 {
        func step(_ w: UInt64, _ carry: UInt64) -> (UInt64, UInt64) {
            let (hi, lo) = w.multipliedFullWidth(by: m)
            let (sum, c) = lo.addingReportingOverflow(carry)
            return (sum, hi &+ (c ? 1 : 0))
        }
        let (r3, c3) = step(limbs.3, 0)
        let (r2, c2) = step(limbs.2, c3)
        let (r1, c1) = step(limbs.1, c2)
        let (r0, c0) = step(limbs.0, c1)
        return c0 == 0 ? UInt256(limbs: (r0, r1, r2, r3)) : .max
    }

    /// Quotient by a 64-bit divisor (> 0).
    public func divided(by d: UInt64) -> UInt256 {
        precondition(d > 0, "division by zero")
        var out = [UInt64](repeating: 0, count: 4), rem: UInt64 = 0
        for (i, w) in array.enumerated() {
            let (q, r) = d.dividingFullWidth((rem, w))
            out[i] = q
            rem = r
        }
        return UInt256(array: out)
    }

    func shiftedLeftOne() -> (UInt256, Bool) {
        let a = array
        var out = [UInt64](repeating: 0, count: 4)
        for i in 0..<4 { out[i] = a[i] << 1 | (i < 3 ? a[i + 1] >> 63 : 0) }
        return (UInt256(array: out), a[0] >> 63 == 1)
    }

    func bit(_ i: Int) -> Bool { (array[i / 64] >> (63 - UInt64(i % 64))) & 1 == 1 }

    /// Quotient by a 256-bit divisor (> 0): schoolbook long division, one bit at a time.
    public func divided(by d: UInt256) -> UInt256 {
        precondition(!d.isZero, "division by zero")
        var q = [UInt64](repeating: 0, count: 4)
        var r = UInt256.zero
        for i in 0..<256 {
            let (shifted, overflow) = r.shiftedLeftOne()
            r = bit(i) ? UInt256(array: [shifted.limbs.0, shifted.limbs.1, shifted.limbs.2, shifted.limbs.3 | 1]) : shifted
            if overflow || !(r < d) {
                r = r.subtracting(d)
                q[i / 64] |= 1 << (63 - UInt64(i % 64))
            }
        }
        return UInt256(array: q)
    }

    public var inverted: UInt256 { UInt256(limbs: (~limbs.0, ~limbs.1, ~limbs.2, ~limbs.3)) }

    /// The value as a Double (approximate), for reports and statistics only.
    public var approximate: Double { array.reduce(0.0) { $0 * 18446744073709551616.0 + Double($1) } }
}
