import CClock
import LedgerModel
import Synchronization

/// Whether the system clock can be trusted for the time stamps the node puts on readings: by
/// default what the kernel says (adjtimex: synchronised while its maximum error is below 16 s,
/// as systemd's `NTPSynchronized` reads it), read at most once a second. A board without a
/// real-time clock starts with a wrong clock until NTP (or GPS) sets it; what the node stamps
/// meanwhile carries `timeSynced: false`.
public final class ClockSync: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        /// Ask the kernel (the default).
        case kernel
        /// Always synchronised (a clock disciplined in a way the kernel does not report).
        case trusted
        /// Never synchronised.
        case untrusted
    }

    public struct State: Sendable, Equatable {
        public let synchronised: Bool
        /// The kernel's maximum error estimate in µs (−1 when it could not be read).
        public let maxErrorMicroseconds: Int
        public init(synchronised: Bool, maxErrorMicroseconds: Int) {
            self.synchronised = synchronised
            self.maxErrorMicroseconds = maxErrorMicroseconds
        }
    }

    public let mode: Mode
    private let readKernel: @Sendable () -> State
    private let cache = Mutex<(at: ContinuousClock.Instant, state: State)?>(nil)

    public init(mode: Mode = .kernel, readKernel: (@Sendable () -> State)? = nil) {
        self.mode = mode
        self.readKernel = readKernel ?? {
            let s = fio_clock_read()
            return State(synchronised: s.synchronised, maxErrorMicroseconds: s.maxerror_us)
        }
    }

    /// The clock's state now (cached for a second).
    public var state: State {
        switch mode {
        case .trusted: return State(synchronised: true, maxErrorMicroseconds: 0)
        case .untrusted: return State(synchronised: false, maxErrorMicroseconds: -1)
        case .kernel:
            let now = ContinuousClock.now
            if let c = cache.withLock({ $0 }), now - c.at < .seconds(1) { return c.state }
            let fresh = readKernel()
            cache.withLock { $0 = (now, fresh) }
            return fresh
        }
    }

    public var synchronised: Bool { state.synchronised }
    /// The quality of a time stamp taken from the system clock now.
    public var quality: TimeQuality { synchronised ? .synced : .unsynced }
}
