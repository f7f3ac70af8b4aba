import FlowchainCrypto
import Foundation

/// Takes readings, validates them, and acknowledges each only after it is durably committed.
///
/// Validation (including the signature check) runs in the caller's task, so it spreads over all
/// cores; storing goes through one queue that commits everything waiting in one transaction
/// (group commit), so throughput grows with load while every acknowledgement stays durable.
public actor IngestEngine {
    public struct Configuration: Sendable {
        public var maxPayloadBytes = 16 * 1024
        /// A block is cut at once when this many readings are pending.
        public var maxBlockReadings = 4096
        /// Upper bound on readings per transaction, to bound acknowledgement latency.
        public var maxBatch = 4096

        public init() {}
    }

    public nonisolated let store: LedgerStore
    public nonisolated let key: PrivateKey
    public nonisolated let validator: ReadingValidator
    nonisolated let configuration: Configuration
    public nonisolated let now: @Sendable () -> Int64
    nonisolated let onBlock: @Sendable (BlockHeader) -> Void
    nonisolated let onStored: @Sendable ([StoredReading]) -> Void

    private var queue: [(reading: Reading, continuation: CheckedContinuation<Ack, Error>)] = []
    private var flushing = false
    private var pending: Int
    private var closed = false
    /// Newest seq per device among stored and queued readings, for readings the node numbers.
    private var lastSeq: [String: UInt64] = [:]

    /// - Parameters:
    ///   - now: the clock, in ms since the epoch (injected so tests can control block times).
    ///   - onBlock: called after each block is committed (e.g. to log or publish it).
    ///   - onStored: called after each commit with the newly stored readings, in arrival order.
    public init(
        store: LedgerStore, key: PrivateKey, configuration: Configuration = .init(),
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) },
        onBlock: @escaping @Sendable (BlockHeader) -> Void = { _ in },
        onStored: @escaping @Sendable ([StoredReading]) -> Void = { _ in }
    ) throws {
        self.store = store
        self.key = key
        self.configuration = configuration
        validator = ReadingValidator(maxPayloadBytes: configuration.maxPayloadBytes)
        self.now = now
        self.onBlock = onBlock
        self.onStored = onStored
        pending = try store.counts().pending
    }

    /// Validates and durably stores a signed `reading`; returns its acknowledgement. A re-sent
    /// reading (same id) returns the same acknowledgement and is stored once.
    public nonisolated func submit(_ reading: Reading) async throws(IngestError) -> Ack {
        try validator.validate(reading)
        return try await run { try await $0.enqueue(reading) }
    }

    /// Stores a reading the node signs on the device's behalf (a device that cannot sign): the
    /// node gives it the device's next `seq`. `time` defaults to now.
    public nonisolated func submitUnsigned(
        device: String, payload: [UInt8], time: Int64? = nil, timeQuality: TimeQuality = .synced, source: ReadingSource
    ) async throws(IngestError) -> Ack {
        if let why = DeviceID.problem(with: device) { throw .badDevice(why) }
        guard payload.count <= validator.maxPayloadBytes else {
            throw .payloadTooLarge(size: payload.count, limit: validator.maxPayloadBytes)
        }
        try ReadingValidator.checkPayload(payload)
        let stamp = time ?? now()
        return try await run { try await $0.enqueueNumbered(device: device, payload: payload, time: stamp, timeQuality: timeQuality, source: source) }
    }

    private nonisolated func run(_ body: (IngestEngine) async throws -> Ack) async throws(IngestError) -> Ack {
        do {
            return try await body(self)
        } catch let e as IngestError {
            throw e
        } catch {
            throw .storeFailed(String(describing: error))
        }
    }

    private func enqueueNumbered(device: String, payload: [UInt8], time: Int64, timeQuality: TimeQuality, source: ReadingSource) async throws -> Ack {
        if closed { throw IngestError.shuttingDown }
        let seq = try nextSeq(device)
        let reading: Reading
        do {
            reading = try Reading(device: device, seq: seq, time: time, timeQuality: timeQuality, source: source, payload: payload, signedBy: key)
        } catch {
            throw IngestError.malformed(String(describing: error))
        }
        return try await enqueue(reading)
    }

    private func nextSeq(_ device: String) throws -> UInt64 {
        let last: UInt64
        if let known = lastSeq[device] {
            last = known
        } else {
            last = try store.lastSeq(device: device) ?? 0
        }
        lastSeq[device] = last + 1
        return last + 1
    }

    private func enqueue(_ reading: Reading) async throws -> Ack {
        if closed { throw IngestError.shuttingDown }
        if let known = lastSeq[reading.device], reading.seq > known { lastSeq[reading.device] = reading.seq }
        return try await withCheckedThrowingContinuation { continuation in
            queue.append((reading, continuation))
            if !flushing {
                flushing = true
                Task { await self.flush() }
            }
        }
    }

    private func flush() async {
        while !queue.isEmpty {
            let take = min(queue.count, configuration.maxBatch)
            let batch = Array(queue.prefix(take))
            queue.removeFirst(take)
            var stored: [StoredReading] = []
            do {
                let outcomes = try await store.commit(batch.map(\.reading))
                for (item, outcome) in zip(batch, outcomes) {
                    let r = item.reading
                    switch outcome {
                    case let .stored(rowid):
                        pending += 1
                        stored.append(StoredReading(reading: r, rowid: rowid, block: nil, leaf: nil))
                        item.continuation.resume(returning: Ack(id: r.id, device: r.device, seq: r.seq))
                    case .duplicate:
                        item.continuation.resume(returning: Ack(id: r.id, device: r.device, seq: r.seq))
                    case let .seqNotIncreasing(last):
                        item.continuation.resume(throwing: IngestError.seqNotIncreasing(device: r.device, seq: r.seq, last: last))
                    }
                }
            } catch {
                // Nothing of this batch is stored; forget cached seqs so numbering restarts from the store.
                lastSeq.removeAll()
                for item in batch { item.continuation.resume(throwing: IngestError.storeFailed(String(describing: error))) }
            }
            if !stored.isEmpty { onStored(stored) }
            while pending >= configuration.maxBlockReadings {
                guard (try? await cutBlock()) ?? nil != nil else { break }
            }
        }
        flushing = false
    }

    /// Seals the pending readings into the next block; nil when none are pending.
    @discardableResult
    public func cutBlock() async throws -> BlockHeader? {
        guard pending > 0 else { return nil }
        guard let header = try await store.cutBlock(signedBy: key, now: now(), maxReadings: configuration.maxBlockReadings) else {
            pending = 0
            return nil
        }
        pending = max(0, pending - Int(header.count))
        onBlock(header)
        return header
    }

    /// Readings stored but not yet in a block.
    public var pendingCount: Int { pending }

    /// Refuses new readings and waits until every accepted one is committed and sealed in a block.
    public func drain() async throws {
        closed = true
        while flushing || !queue.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
        while try await cutBlock() != nil {}
    }
}
