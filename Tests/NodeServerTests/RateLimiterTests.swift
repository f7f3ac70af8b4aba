@testable import NodeServer
import Testing

@Suite("Rate limiter")
struct RateLimiterTests {
    @Test func aBurstOfTwiceTheRateThenTheRateItself() {
        let start = ContinuousClock.now
        var limiter = RateLimiter(perSecond: 10, now: start)
        let burst = (0..<30).filter { _ in limiter.allow(now: start) }.count
        #expect(burst == 20, "a burst of up to twice the rate")
        // Half a second later, five more tokens.
        let later = start + .milliseconds(500)
        #expect((0..<30).filter { _ in limiter.allow(now: later) }.count == 5)
        // Idle for a minute: the bucket refills to the burst, not beyond.
        let idle = later + .seconds(60)
        #expect((0..<100).filter { _ in limiter.allow(now: idle) }.count == 20)
    }

    @Test func aRateOfZeroNeverLimits() {
        var limiter = RateLimiter(perSecond: 0)
        #expect((0..<10_000).allSatisfy { _ in limiter.allow() })
    }
}
