import Chord
import FlowchainCrypto
import Foundation
import Ledger
import Logging
import Synchronization

/// Keeps copies of this node's segment chain on its next r − 1 successors (Kafka-style: the
/// owner pushes what each replica lacks, from the position the replica reports, so a replica
/// that was away or new catches up by itself). Wakes on every commit; otherwise checks twice a
/// second, so sealed blocks and new successors are covered too.
final class Replicator: Sendable {
    let store: LedgerStore
    let feed: CommitFeed
    let transport: PeerTransport
    let factor: Int
    let logger: Logger
    let batchLimit = 2000
    /// Readings of this node's chain not yet on every replica (reported after each round).
    let lag: @Sendable (Int) -> Void
    /// Whose chain `store` holds: nil for this node's own; else a copy of a node that is gone,
    /// pushed on so r copies exist again.
    let owner: PublicKey?
    private let positions = Mutex<[ChordID: (ref: NodeRef, position: LedgerStore.ReplicaPosition)]>([:])
    private let waiters = Mutex<[(ticket: UInt64, position: Int64, continuation: CheckedContinuation<Bool, Never>)]>([])
    private let nextTicket = Atomic<UInt64>(0)

    init(store: LedgerStore, feed: CommitFeed, transport: PeerTransport, factor: Int, logger: Logger, owner: PublicKey? = nil,
         lag: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.owner = owner
        self.lag = lag
        self.store = store
        self.feed = feed
        self.transport = transport
        self.factor = factor
        self.logger = logger
    }

    /// The replicas and how far each has got.
    var replicas: [(ref: NodeRef, position: LedgerStore.ReplicaPosition)] { positions.withLock { Array($0.values) } }

    /// The newest position at least one replica holds durably.
    var replicated: Int64 { positions.withLock { $0.values.map(\.position.position).max() ?? 0 } }

    func run(view: RingView) async {
        guard factor > 1 else { return }
        let (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let readings = feed.subscribeWakeUps(.readings(device: nil)), blocks = feed.subscribeWakeUps(.blocks)
        defer { feed.unsubscribe(readings); feed.unsubscribe(blocks) }
        await withTaskGroup(of: Void.self) { group in
            for s in [readings, blocks] {
                group.addTask { for await _ in s.events { wake.yield() } }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(500))
                    wake.yield()
                }
            }
            group.addTask {
                var iterator = wakes.makeAsyncIterator()
                while !Task.isCancelled {
                    var more = false
                    let targets = self.targets(view)
                    self.positions.withLock { p in p = p.filter { id, _ in targets.contains { $0.id == id } } }
                    await withTaskGroup(of: Bool.self) { g in
                        for t in targets { g.addTask { await self.push(to: t) } }
                        for await m in g { more = more || m }
                    }
                    let newest = (try? self.store.pendingBounds().newest ?? 0) ?? 0
                    let held = self.positions.withLock { p in targets.map { p[$0.id]?.position.position ?? 0 } }
                    self.lag(Int(newest - (held.min() ?? newest)))
                    if !more { guard await iterator.next() != nil else { return } }
                }
            }
            // Ends when the node shuts down (the caller's task is cancelled).
            await group.next()
            group.cancelAll()
        }
        wake.finish()
        let pending = waiters.withLock { w in defer { w.removeAll() }; return w }
        for w in pending { w.continuation.resume(returning: false) }
    }

    /// This node's next r − 1 distinct successors.
    func targets(_ view: RingView) -> [NodeRef] {
        var out: [NodeRef] = []
        for s in view.successors where s.id != view.me.id && !out.contains(where: { $0.id == s.id }) {
            out.append(s)
            if out.count == factor - 1 { break }
        }
        return out
    }

    /// One round for a copy of a gone node's chain: every target gets what it lacks.
    func round(_ targets: [NodeRef]) async {
        for t in targets { while await push(to: t) {} }
    }

    /// The request for `body`: this node's own chain, or a copy of `owner`'s.
    private func replicate(_ c: PeerConnection, _ body: [UInt8], timeout: Duration) async -> Result<[UInt8], PeerRequestError> {
        guard let owner else { return await c.request(.replicate, body, timeout: timeout) }
        return await c.request(.replicateCopy, owner.bytes + body, timeout: timeout)
    }

    /// Sends `target` the next batch it lacks; true when more is waiting.
    private func push(to target: NodeRef) async -> Bool {
        guard let c = try? await transport.connection(to: target) else { return false }
        var known = positions.withLock { $0[target.id]?.position }
        if known == nil {
            guard case let .success(body) = await replicate(c, ReplicationCodec.encode(expected: -1, ReplicationBatch()), timeout: .seconds(10)),
                  let p = try? ReplicationCodec.decodeReply(body) else { return false }
            known = p
            record(target, p)
        }
        guard let known else { return false }
        let batch: ReplicationBatch
        do { batch = try await store.offload { try $0.replicationBatch(after: known.position, height: known.height, limit: self.batchLimit) } } catch {
            logger.warning("replication: cannot read the ledger: \(error)")
            return false
        }
        // Nothing new, unless the replica has yet to drop what this node's retention pruned.
        if batch.isEmpty, batch.prunedBelow <= known.prunedBelow { return false }
        switch await replicate(c, ReplicationCodec.encode(expected: known.position, batch), timeout: .seconds(30)) {
        case let .success(body):
            guard let p = try? ReplicationCodec.decodeReply(body) else { return false }
            record(target, p)
            if !batch.prunedBlocks.isEmpty { return p.height != known.height || p.prunedBelow != known.prunedBelow }
            if batch.isEmpty { return p.prunedBelow != known.prunedBelow }
            return batch.readings.count == batchLimit || p.position != batch.readings.last?.position ?? known.position
        case let .failure(e):
            logger.warning("replication to \(target.address) failed: \(e)")
            positions.withLock { _ = $0.removeValue(forKey: target.id) }
            return false
        }
    }

    private func record(_ target: NodeRef, _ p: LedgerStore.ReplicaPosition) {
        positions.withLock { $0[target.id] = (target, p) }
        let best = replicated
        let ready = waiters.withLock { w -> [CheckedContinuation<Bool, Never>] in
            let done = w.filter { $0.position <= best }.map(\.continuation)
            w.removeAll { $0.position <= best }
            return done
        }
        for k in ready { k.resume(returning: true) }
    }

    /// Returns once some replica holds `position` (true), or after `timeout` (false).
    func waitReplicated(_ position: Int64, timeout: Duration) async -> Bool {
        if replicated >= position { return true }
        let ticket = nextTicket.add(1, ordering: .relaxed).oldValue
        let timer = Task {
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled else { return }
            let expired = self.waiters.withLock { w -> CheckedContinuation<Bool, Never>? in
                guard let i = w.firstIndex(where: { $0.ticket == ticket }) else { return nil }
                return w.remove(at: i).continuation
            }
            expired?.resume(returning: false)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { k in
            // Checked under the waiters' lock, which `record` takes after updating the positions.
            let now = waiters.withLock { w -> Bool in
                if replicated >= position { return true }
                w.append((ticket, position, k))
                return false
            }
            if now { k.resume(returning: true) }
        }
    }
}
