@testable import Consensus
import FlowchainCrypto
import FlowchainTesting
import Testing

@Suite("256-bit arithmetic and the difficulty rules")
struct ArithmeticTests {
    func random(_ rng: inout SeededRandom) -> UInt256 {
        UInt256(limbs: (rng.next() >> UInt64.random(in: 0...63, using: &rng), rng.next(), rng.next(), rng.next()))
    }

    @Test func hexRoundTripAndOrder() throws {
        var rng = SeededRandom(seed: 1)
        for _ in 0..<500 {
            let a = random(&rng), b = random(&rng)
            #expect(UInt256(hex: a.hex) == a)
            #expect((a < b) == (a.hex < b.hex), "numeric order is hex order for fixed-width hex")
        }
        #expect(UInt256(hex: "ff") == UInt256(255))
        #expect(UInt256(hex: String(repeating: "f", count: 65)) == nil)
    }

    @Test func multiplyThenDivideIsIdentityWhenItFits() {
        var rng = SeededRandom(seed: 2)
        for _ in 0..<2000 {
            let a = random(&rng)
            let m = UInt64.random(in: 1...UInt64.max, using: &rng) >> UInt64.random(in: 0...63, using: &rng)
            let p = a.multipliedSaturating(by: max(1, m))
            if p != .max { #expect(p.divided(by: max(1, m)) == a) }
        }
        #expect(UInt256.max.multipliedSaturating(by: 2) == .max)
        #expect(UInt256(1).multipliedSaturating(by: 0) == .zero)
    }

    @Test func wideDivisionAgreesWithNarrowDivision() {
        var rng = SeededRandom(seed: 3)
        for _ in 0..<1000 {
            let a = random(&rng)
            let d = max(1, rng.next() >> UInt64.random(in: 0...63, using: &rng))
            #expect(a.divided(by: UInt256(d)) == a.divided(by: d))
        }
        let a = UInt256(hex: "1" + String(repeating: "0", count: 63))!   // 2^252
        let b = UInt256(hex: "1" + String(repeating: "0", count: 32))!   // 2^128
        #expect(a.divided(by: b) == UInt256(hex: "1" + String(repeating: "0", count: 31))!)   // 2^124
        #expect(UInt256.max.divided(by: UInt256.max) == UInt256(1))
        #expect(UInt256(5).divided(by: UInt256(7)) == .zero)
    }

    @Test func addAndSubtract() {
        var rng = SeededRandom(seed: 4)
        for _ in 0..<1000 {
            let a = random(&rng), b = random(&rng)
            let (s, overflow) = a.addingReportingOverflow(b)
            if !overflow { #expect(s.subtracting(b) == a && s >= a) }
        }
        #expect(UInt256.max.addingReportingOverflow(UInt256(1)) == (.zero, true))
    }

    @Test func workIsTwoTo256OverTargetPlusOne() {
        #expect(Kernel.work(.max) == UInt256(1))
        #expect(Kernel.work(UInt256(1)) == UInt256(hex: "8" + String(repeating: "0", count: 63))!)          // 2^255
        #expect(Kernel.work(UInt256(hex: "8" + String(repeating: "0", count: 63))!.subtracting(UInt256(1))) == UInt256(2))
        // Halving the target doubles the work.
        let t = UInt256(hex: "0000ffff" + String(repeating: "0", count: 56))!
        let w1 = Kernel.work(t), w2 = Kernel.work(t.divided(by: 2))
        #expect(w2.divided(by: 2) == w1 || w2.divided(by: 2).addingReportingOverflow(UInt256(1)).0 == w1)
    }

    @Test func retargetMovesTowardsTheIntervalInBoundedSteps() {
        let t = UInt256(hex: "00ff" + String(repeating: "0", count: 60))!
        let limit = UInt256.max
        let same = Kernel.retarget(t, spacing: 10, interval: 10, limit: limit)
        #expect(same == t, "on time: unchanged")
        let slow = Kernel.retarget(t, spacing: 30, interval: 10, limit: limit)
        let fast = Kernel.retarget(t, spacing: 1, interval: 10, limit: limit)
        #expect(slow > t && fast < t, "slow blocks raise the target, fast ones lower it")
        let slowest = Kernel.retarget(t, spacing: 1_000_000, interval: 10, limit: limit)
        #expect(slowest.approximate / t.approximate < 1.19, "one block moves it by at most 18%")
        #expect(fast.approximate / t.approximate > 0.979)
        #expect(Kernel.retarget(limit, spacing: 100, interval: 10, limit: limit) == limit, "never above the limit")
    }

    @Test func theKernelComparesAsNumbersAndScalesWithStake() {
        let key = Fixtures.key(1).publicKey
        let m = SHA256.hash([1])
        var wins = [0, 0]
        let target = UInt256.max.divided(by: 100)
        for t in Int64(0)..<20_000 {
            if Kernel.check(modifier: m, key: key, time: t, target: target, stake: 1) { wins[0] += 1 }
            if Kernel.check(modifier: m, key: key, time: t, target: target, stake: 4) { wins[1] += 1 }
        }
        // p = 1% and 4% a second: 200 and 800 expected.
        #expect((150...250).contains(wins[0]) && (700...900).contains(wins[1]), "\(wins)")
        #expect(!Kernel.check(modifier: m, key: key, time: 0, target: .max, stake: 0), "no stake never mints")
    }

    @Test func chiSquarePValuesMatchTables() {
        // Critical values: χ²(9) = 16.919 at p = 0.05, 27.877 at p = 0.001; χ²(1) = 3.841 at 0.05.
        #expect(abs(ChiSquare.pValue(16.919, degreesOfFreedom: 9) - 0.05) < 1e-3)
        #expect(abs(ChiSquare.pValue(27.877, degreesOfFreedom: 9) - 0.001) < 1e-4)
        #expect(abs(ChiSquare.pValue(3.841, degreesOfFreedom: 1) - 0.05) < 1e-3)
        #expect(abs(ChiSquare.pValue(2, degreesOfFreedom: 9) - 0.9910) < 1e-3)
        #expect(ChiSquare.pValue(0, degreesOfFreedom: 4) == 1)
    }
}
