import Synchronization

/// Keeps one connection's (or one batch's) submissions in the order they were received.
///
/// Validation — the signature check, the expensive part — runs in parallel, but each submission
/// enters the engine's queue only after the one received before it, so a device's seq 5 can
/// never be stored before its seq 4 (after which seq 4 would be refused for good).
public final class IngestOrder: Sendable {
    private let last = Mutex<Gate?>(nil)

    public init() {}

    /// The next place in line. Call it in receive order (e.g. in the connection's read loop).
    public func next() -> IngestTurn {
        let mine = Gate()
        let previous = last.withLock { last in
            defer { last = mine }
            return last
        }
        return IngestTurn(previous: previous, mine: mine)
    }
}

/// One place in an `IngestOrder`: wait for the previous place, enqueue, then `finish`.
public struct IngestTurn: Sendable {
    let previous: Gate?
    let mine: Gate

    /// A turn with nobody before it.
    public static func first() -> IngestTurn { IngestTurn(previous: nil, mine: Gate()) }

    /// Returns once everything received before this turn has been enqueued (or given up).
    public func waitForPrevious() async { await previous?.wait() }

    /// `count` consecutive turns taking this one's place in line (e.g. one per request of a
    /// JSON-RPC batch): the first waits for this turn's predecessor, the last lets its successor go.
    public func split(_ count: Int) -> [IngestTurn] {
        guard count > 1 else { return count == 1 ? [self] : [] }
        var turns: [IngestTurn] = []
        var previous = self.previous
        for i in 0..<count {
            let gate = i == count - 1 ? mine : Gate()
            turns.append(IngestTurn(previous: previous, mine: gate))
            previous = gate
        }
        return turns
    }

    /// Lets the next turn go. Idempotent; must be called on every path, errors included.
    public func finish() { mine.open() }
}

/// A one-shot event: `wait` returns once `open` has been called.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard !s.open else { return [] }
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s -> Bool in
                if s.open { return true }
                s.waiters.append(c)
                return false
            }
            if ready { c.resume() }
        }
    }
}
