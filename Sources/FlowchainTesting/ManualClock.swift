import Synchronization

/// A monotonic clock that moves only when a test moves it: code that schedules by it sees exactly
/// the time the test says has passed, however late a loaded machine wakes the test.
public final class ManualMonotonicClock: Sendable {
    private let origin = ContinuousClock.now
    private let elapsedNanoseconds = Atomic<Int64>(0)

    public init() {}

    public func advance(by duration: Duration) {
        let c = duration.components
        elapsedNanoseconds.add(c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000, ordering: .relaxed)
    }

    public var now: ContinuousClock.Instant { origin + .nanoseconds(elapsedNanoseconds.load(ordering: .relaxed)) }

    /// The clock as the closure `IngestEngine.Configuration.monotonic` takes.
    public var reading: @Sendable () -> ContinuousClock.Instant { { self.now } }
}
