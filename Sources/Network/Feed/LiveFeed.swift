import Foundation
import Ledger
import Synchronization

/// Fans newly committed readings and blocks out to subscribers (viewers, RPC subscriptions,
/// the dashboard). Publishing never waits: each subscriber has a bounded buffer, and what does
/// not fit is dropped and counted for that subscriber alone.
public final class LiveFeed: Sendable {
    public enum Event: Sendable {
        case reading(StoredReading)
        case block(BlockHeader)
    }

    public enum Topic: Sendable, Equatable {
        case readings(device: String?)
        case blocks
    }

    /// One subscriber's view: its events, and how many were dropped because it fell behind.
    public final class Subscription: Sendable {
        public let id: UInt64
        public let topic: Topic
        public let events: AsyncStream<Event>
        let continuation: AsyncStream<Event>.Continuation
        private let droppedCount = Atomic<Int>(0)

        let onDrop: @Sendable () -> Void

        init(id: UInt64, topic: Topic, capacity: Int, onDrop: @escaping @Sendable () -> Void) {
            self.id = id
            self.topic = topic
            self.onDrop = onDrop
            (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingOldest(capacity))
        }

        /// Events dropped so far because this subscriber's buffer was full.
        public var dropped: Int { droppedCount.load(ordering: .relaxed) }

        func offer(_ event: Event) {
            if case .dropped = continuation.yield(event) {
                droppedCount.add(1, ordering: .relaxed)
                onDrop()
            }
        }
    }

    private let subscribers = Mutex<[UInt64: Subscription]>([:])
    private let nextID = Atomic<UInt64>(1)
    public let capacity: Int
    let onDrop: @Sendable () -> Void

    /// - Parameter onDrop: called for every event a subscriber had no room for (e.g. to count it).
    public init(capacity: Int = 1024, onDrop: @escaping @Sendable () -> Void = {}) {
        self.capacity = capacity
        self.onDrop = onDrop
    }

    public func subscribe(_ topic: Topic) -> Subscription {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let s = Subscription(id: id, topic: topic, capacity: capacity, onDrop: onDrop)
        subscribers.withLock { $0[id] = s }
        return s
    }

    public func unsubscribe(_ s: Subscription) {
        subscribers.withLock { _ = $0.removeValue(forKey: s.id) }
        s.continuation.finish()
    }

    public func publish(_ readings: [StoredReading]) {
        let current = subscribers.withLock { Array($0.values) }
        for s in current {
            guard case let .readings(device) = s.topic else { continue }
            for r in readings where device == nil || r.reading.device == device {
                s.offer(.reading(r))
            }
        }
    }

    public func publish(_ block: BlockHeader) {
        let current = subscribers.withLock { Array($0.values) }
        for s in current where s.topic == .blocks { s.offer(.block(block)) }
    }

    /// Ends every subscription (on shutdown).
    public func finishAll() {
        let all = subscribers.withLock { d in defer { d.removeAll() }; return Array(d.values) }
        for s in all { s.continuation.finish() }
    }
}
