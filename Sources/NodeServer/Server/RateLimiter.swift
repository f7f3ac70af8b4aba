/// A token bucket: `rate` messages a second with bursts up to `burst`. One per connection, used by
/// that connection's loop only. A rate of 0 never limits.
struct RateLimiter {
    let rate: Double
    let burst: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant

    init(perSecond rate: Int, now: ContinuousClock.Instant = .now) {
        self.rate = Double(rate)
        burst = Double(max(1, rate * 2))
        tokens = burst
        last = now
    }

    /// Takes a token; false when the connection is over its rate.
    mutating func allow(now: ContinuousClock.Instant = .now) -> Bool {
        guard rate > 0 else { return true }
        let elapsed = now - last
        last = now
        tokens = min(burst, tokens + rate * (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
