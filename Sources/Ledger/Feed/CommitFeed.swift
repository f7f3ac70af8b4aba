import Synchronization

/// The one way out of the ledger: every reading the ingest engine commits and every block it seals
/// is published here, and every listener (viewers, RPC subscriptions, metrics, the log, later MQTT
/// out and peers) subscribes here. Publishing never waits: each subscriber has a bounded buffer,
/// and what does not fit is dropped and counted for that subscriber alone (a subscriber may ask for
/// an unbounded buffer when it drains at once, e.g. counters).
public final class CommitFeed: Sendable {
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

        /// Internal listeners (counters, the log) outlive the client subscriptions at shutdown.
        let isInternal: Bool

        init(id: UInt64, topic: Topic, capacity: Int?, isInternal: Bool, newestOnly: Bool = false, onDrop: @escaping @Sendable () -> Void) {
            self.id = id
            self.topic = topic
            self.onDrop = onDrop
            self.isInternal = isInternal
            let policy: AsyncStream<Event>.Continuation.BufferingPolicy = newestOnly ? .bufferingNewest(1) : capacity.map { .bufferingOldest($0) } ?? .unbounded
            (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: policy)
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

    /// A client subscription (a viewer, an RPC subscription) with the feed's bounded buffer.
    public func subscribe(_ topic: Topic) -> Subscription {
        add(Subscription(id: nextID.add(1, ordering: .relaxed).oldValue, topic: topic, capacity: capacity, isInternal: false, onDrop: onDrop))
    }

    /// An internal listener that handles every event at once (counters, the log): unbounded, and
    /// not ended by `finishClients()`, so it also hears the blocks sealed during shutdown.
    public func subscribeInternal(_ topic: Topic) -> Subscription {
        add(Subscription(id: nextID.add(1, ordering: .relaxed).oldValue, topic: topic, capacity: nil, isInternal: true, onDrop: onDrop))
    }

    /// Wake-ups for a listener that reads what changed from the store itself (e.g. the MQTT
    /// bridge's publisher): only the newest event is kept, and replacing older ones is not a drop.
    public func subscribeWakeUps(_ topic: Topic) -> Subscription {
        add(Subscription(id: nextID.add(1, ordering: .relaxed).oldValue, topic: topic, capacity: nil, isInternal: true, newestOnly: true, onDrop: {}))
    }

    private func add(_ s: Subscription) -> Subscription {
        subscribers.withLock { $0[s.id] = s }
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

    /// Ends every client subscription (on shutdown), so their connections close promptly.
    public func finishClients() {
        let clients = subscribers.withLock { d -> [Subscription] in
            let out = d.values.filter { !$0.isInternal }
            for s in out { d[s.id] = nil }
            return out
        }
        for s in clients { s.continuation.finish() }
    }

    /// Ends every subscription, internal ones included.
    public func finishAll() {
        let all = subscribers.withLock { d in defer { d.removeAll() }; return Array(d.values) }
        for s in all { s.continuation.finish() }
    }
}
