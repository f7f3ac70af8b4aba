import Foundation
import BigInt
import Chord
import FlowchainCrypto
import FlowchainTesting
import Testing

/// Ring arithmetic and intervals, checked against an independent arbitrary-precision reference.
@Suite("Chord identifiers and ring intervals")
struct ChordIDTests {
    static let modulus = BigUInt(1) << 160

    static func big(_ id: ChordID) -> BigUInt { BigUInt(Data(id.bytes)) }

    static func id(_ b: BigUInt) -> ChordID {
        let bytes = Array(b.serialize())
        return ChordID(bytes: [UInt8](repeating: 0, count: 20 - bytes.count) + bytes)!
    }

    /// Random ids, biased towards the edges where wrap-around bugs live.
    static func random(_ rng: inout SeededRandom) -> ChordID {
        switch Int.random(in: 0..<10, using: &rng) {
        case 0: return .zero
        case 1: return .max
        case 2: return ChordID(UInt64.random(in: 0...3, using: &rng))
        case 3: return .max &- ChordID(UInt64.random(in: 0...3, using: &rng))
        default: return ChordID(bytes: rng.bytes(20))!
        }
    }

    // The paper's definitions, written directly on integers.
    static func open(_ x: BigUInt, _ a: BigUInt, _ b: BigUInt) -> Bool {
        if a < b { return a < x && x < b }
        if a > b { return x > a || x < b }
        return x != a
    }

    static func halfOpen(_ x: BigUInt, _ a: BigUInt, _ b: BigUInt) -> Bool {
        if a < b { return a < x && x <= b }
        if a > b { return x > a || x <= b }
        return true
    }

    @Test func additionSubtractionAndFingersMatchTheReference() {
        var rng = SeededRandom(seed: 160)
        for _ in 0..<3000 {
            let a = Self.random(&rng), b = Self.random(&rng)
            #expect(Self.big(a &+ b) == (Self.big(a) + Self.big(b)) % Self.modulus)
            #expect(Self.big(a &- b) == (Self.big(a) + Self.modulus - Self.big(b)) % Self.modulus)
            let i = Int.random(in: 0..<160, using: &rng)
            #expect(Self.big(a.fingerStart(i)) == (Self.big(a) + (BigUInt(1) << i)) % Self.modulus)
            #expect(ChordID(hex: a.hex) == a)
            #expect((a < b) == (Self.big(a) < Self.big(b)))
        }
    }

    @Test func intervalsMatchThePapersDefinitionAcrossTheWrap() {
        var rng = SeededRandom(seed: 2001)
        for _ in 0..<5000 {
            let (a, b) = (Self.random(&rng), Self.random(&rng))
            // x often equal to an end point: that is where off-by-one bugs show.
            let x = [a, b, a &+ ChordID(1), b &- ChordID(1), Self.random(&rng)][Int.random(in: 0..<5, using: &rng)]
            let (X, A, B) = (Self.big(x), Self.big(a), Self.big(b))
            #expect(x.isBetween(a, b) == Self.open(X, A, B), "\(x) in (\(a), \(b))")
            #expect(x.isBetween(a, upTo: b) == Self.halfOpen(X, A, B), "\(x) in (\(a), \(b)]")
        }
    }

    @Test func specificWrapAroundCases() {
        let max = ChordID.max, zero = ChordID.zero, one = ChordID(1)
        #expect(zero.isBetween(max, one), "0 lies in (2^160−1, 1)")
        #expect(!one.isBetween(max, one) && one.isBetween(max, upTo: one))
        #expect(!max.isBetween(max, one))
        #expect(ChordID(5).isBetween(ChordID(7), ChordID(7)), "(a, a) is everything but a")
        #expect(!ChordID(7).isBetween(ChordID(7), ChordID(7)))
        #expect(ChordID(7).isBetween(ChordID(7), upTo: ChordID(7)), "(a, a] is the whole ring")
        #expect(max.fingerStart(0) == zero)
        #expect(ChordID.power(159) &+ ChordID.power(159) == zero)
    }

    @Test func identifiersAreSHA1AndWrongLengthsAreRefused() {
        #expect(ChordID.hashing(Array("abc".utf8)).hex == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(ChordID(bytes: [UInt8](repeating: 1, count: 19)) == nil)
        #expect(ChordID(bytes: [UInt8](repeating: 1, count: 21)) == nil)
        #expect(ChordID(hex: "zz") == nil)
    }
}
