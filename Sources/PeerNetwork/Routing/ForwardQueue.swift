import Foundation
import Ledger
import Logging
import Synchronization

/// Readings from sources that cannot send again (MQTT messages already acknowledged to their
/// broker, sensor samples, the demo feed) whose owner could not be reached: kept durably in the
/// ledger file (`forward_queue`), in arrival order, and delivered when the owner can be reached.
/// Bounded: beyond `limit` entries readings are refused (counted), never dropped silently.
final class ForwardQueue: Sendable {
    let store: LedgerStore
    let limit: Int
    let logger: Logger
    /// Devices with readings waiting: their new readings queue behind them, to keep their order.
    private let waiting = Mutex<(devices: Set<String>, count: Int)>(([], 0))
    let depth: @Sendable (Int) -> Void

    /// Sources whose senders cannot be asked to send again: the bridge and the sensors take a
    /// reading once, and Web-of-Things devices push frames without reading replies (the original
    /// devices never do). RPC clients are told `owner_unreachable` instead and keep the reading.
    static let queueable: Set<ReadingSource> = [.ws, .mqtt, .gpio, .iio, .w1, .demo]

    init(store: LedgerStore, limit: Int, logger: Logger, depth: @escaping @Sendable (Int) -> Void) throws {
        self.store = store
        self.limit = limit
        self.logger = logger
        self.depth = depth
        let summary = try store.forwardQueueSummary()
        waiting.withLock { $0 = (summary.devices, summary.count) }
        depth(summary.count)
        if summary.count > 0 { logger.notice("forward queue: \(summary.count) reading(s) of \(summary.devices.count) device(s) wait for their owners") }
    }

    static func source(of s: Submission) -> ReadingSource {
        switch s {
        case let .signed(r): r.source
        case let .unsigned(_, _, _, _, source): source
        }
    }

    static func canQueue(_ s: Submission) -> Bool { queueable.contains(source(of: s)) }

    func isWaiting(_ device: String) -> Bool { waiting.withLock { $0.devices.contains(device) } }
    var count: Int { waiting.withLock { $0.count } }

    /// Queues `items` durably, in order; false when the queue is full (nothing queued).
    func enqueue(_ items: [Submission], tokens: [ForwardToken?] = [], now: Int64) async -> Bool {
        guard !items.isEmpty else { return true }
        let encoded = items.enumerated().map { i, s in
            (device: s.device, submission: SubmissionCodec.encode([s], tokens: i < tokens.count ? [tokens[i]] : []))
        }
        do {
            guard try await store.enqueueForwards(encoded, now: now, limit: limit) else { return false }
        } catch {
            logger.error("forward queue: cannot store \(items.count) reading(s): \(error)")
            return false
        }
        let n = waiting.withLock { w in
            for i in items { w.devices.insert(i.device) }
            w.count += items.count
            return w.count
        }
        depth(n)
        return true
    }

    /// Delivers what waits, oldest first, through `deliver`; a device whose owner is still
    /// unreachable keeps its readings (and its later ones) for the next round. Returns how many
    /// left the queue.
    func drain(deliver: ([Submission], [ForwardToken?]) async -> [Result<Ack, IngestError>]) async -> Int {
        guard count > 0, let batch = try? store.queuedForwards(limit: 500), !batch.isEmpty else { return 0 }
        var blocked = Set<String>()
        var done: [Int64] = []
        var items: [(LedgerStore.QueuedForward, (submission: Submission, token: ForwardToken?))] = []
        for q in batch {
            guard let s = try? SubmissionCodec.decodeForwards(q.submission).first else {
                logger.error("forward queue: entry \(q.id) of device \(q.device) does not decode; removed")
                done.append(q.id)
                continue
            }
            items.append((q, s))
        }
        let outcomes = await deliver(items.map(\.1.submission), items.map(\.1.token))
        for ((q, _), outcome) in zip(items, outcomes) {
            if blocked.contains(q.device) { continue }
            switch outcome {
            case .success:
                done.append(q.id)
            case .failure(.ownerUnreachable), .failure(.queued):
                blocked.insert(q.device)
            case let .failure(e):
                logger.warning("forward queue: the owner of device \(q.device) refused a queued reading: \(e)")
                done.append(q.id)
            }
        }
        do { try await store.removeForwards(done) } catch {
            logger.error("forward queue: cannot remove delivered entries: \(error)")
            return 0
        }
        let summary = (try? store.forwardQueueSummary()) ?? (count: 0, devices: [])
        waiting.withLock { $0 = (summary.devices, summary.count) }
        depth(summary.count)
        if !done.isEmpty { logger.info("forward queue: \(done.count) reading(s) delivered to their owners, \(summary.count) waiting") }
        return done.count
    }
}
