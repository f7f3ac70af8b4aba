import Foundation

/// Waits, bounded, until `condition` holds; true when it did.
///
/// Gives up only once `timeout` has passed *and* the condition has been checked `checks` times.
/// The count is what makes a timeout mean "did not happen" on a loaded two-core machine: the
/// tests share Swift's cooperative threads (one per core) with CPU-bound tests, and a wait
/// starved of them for longer than its timeout would otherwise wake up past its deadline and
/// fail, with the work it waited for not yet scheduled either. The last check always happens
/// after the deadline, never instead of it.
public func eventually(timeout: Duration = .seconds(60), checks: Int = 300, every poll: Duration = .milliseconds(20),
                       _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    var checked = 0
    while true {
        if try await condition() { return true }
        checked += 1
        if ContinuousClock.now >= deadline, checked >= checks { return false }
        try await Task.sleep(for: poll)
    }
}

/// Runs `body` on a thread of its own and waits for it without holding a cooperative thread.
///
/// For a test's long computation or blocking call: Swift Testing runs every test on Swift's
/// cooperative threads (one per core), so two CPU-bound tests running synchronously there hold
/// all of them on a two-core machine, and every other test's tasks (an engine's commits, a
/// sampler, a wait's next check) stall until they end. On a thread of its own the computation
/// is scheduled by the kernel beside the rest.
/// `#expect` belongs after it, on the test's task: the thread has no test to attribute it to.
public func offPool<T>(_ body: @escaping @Sendable () throws -> sending T) async throws -> sending T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        Thread.detachNewThread {
            do { c.resume(returning: try body()) } catch { c.resume(throwing: error) }
        }
    }
}
