import Chord
import FlowchainCrypto
import Foundation
import Ledger
import Logging
import Synchronization

/// Copies of other nodes' chains: taking keys over from the successor, serving pulls and copies.
extension PeerNode {
    /// This node's key range grew: the readings of its new keys may be in its successor's chain
    /// (committed there while this node was away, or before it joined). It pulls a copy of that
    /// chain, so its answers and its numbering include them. One pull at a time.
    func takeOver() async {
        guard let driver else { return }
        guard let successor = driver.view.successors.first, successor.id != transport.id else { return driver.view.release() }
        guard pulling.withLock({ p in defer { p = true }; return !p }) else { return }
        defer {
            pulling.withLock { $0 = false }
            driver.view.release()
        }
        do {
            let c = try await transport.connection(to: successor)
            // The successor gives the keys up when it takes this node as its predecessor; what it
            // committed for them until then must be in the copy before this node numbers them.
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline {
                if case let .success(body) = await c.request(.ring, [], timeout: .seconds(2)),
                   let v = try? JSONValue(parsing: body), v["predecessor"]?["id"]?.stringValue == transport.id.hex { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .milliseconds(300))  // its commits already under way land
            guard let store = try replicas.store(for: c.peer.key, create: true) else { return }
            var pulled = 0
            while true {
                let here = try store.replicaPosition()
                var w = BinaryWriter(capacity: 16)
                w.i64(here.position); w.i64(here.height.map { Int64($0) } ?? -1)
                let body = try await c.request(.pull, w.bytes, timeout: .seconds(30)).get()
                let (_, batch) = try ReplicationCodec.decodeRequest(body)
                if batch.isEmpty, batch.prunedBelow <= here.prunedBelow { break }
                let after = try await store.appendReplica(batch)
                if batch.isEmpty, after.prunedBelow == here.prunedBelow { break }
                await router.engine.raiseSeqs(Self.newestSeqs(batch.readings.map(\.reading)))
                pulled += batch.readings.count
            }
            await router.engine.raiseSeqsToFloors()
            if pulled > 0 { logger.info("took over keys from \(successor.address): copied \(pulled) reading(s) of its chain") }
        } catch {
            logger.warning("could not copy the chain of \(successor.address) after taking keys over: \(error)")
        }
    }

    /// The highest seq per device among `readings`.
    static func newestSeqs(_ readings: [Reading]) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for r in readings where r.seq > out[r.device] ?? 0 { out[r.device] = r.seq }
        return out
    }

    /// Serves `pull`: this node's own chain after the position asked for.
    func servePull(_ body: [UInt8]) async -> (PeerStatus, [UInt8]) {
        do {
            var r = BinaryReader(body)
            let position = try r.i64("position"), height = try r.i64("height")
            try r.finish()
            let batch = try await router.engine.store.offload { try $0.replicationBatch(after: position, height: height < 0 ? nil : UInt64(height), limit: 2000) }
            return (.ok, ReplicationCodec.encode(expected: position, batch))
        } catch {
            return (.error, Array("\(error)".utf8))
        }
    }

    /// Serves `replicateCopy`: a copy of a gone node's chain, pushed on by the node now owning its keys.
    func serveReplicateCopy(_ body: [UInt8], from connection: PeerConnection) async -> (PeerStatus, [UInt8]) {
        guard body.count >= 32, let owner = try? PublicKey(bytes: body.prefix(32)) else { return (.error, Array("malformed copy: no owner key".utf8)) }
        return await serveReplicate(Array(body.dropFirst(32)), from: connection, owner: owner)
    }

    /// The node that now owns a gone node's keys keeps its chain at r copies: it pushes its copy
    /// to its own r − 1 successors (once every 5 s).
    func keepCopies(view: RingView) async {
        var keepers: [PublicKey: Replicator] = [:]
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(5))
            if Task.isCancelled || view.alone { continue }
            for owner in replicas.owners() where view.owns(ChordID.hashing(owner.bytes)) && owner != transport.key.publicKey {
                guard let store = try? replicas.store(for: owner, create: false) else { continue }
                let keeper = keepers[owner] ?? Replicator(store: store, feed: router.engine.feed, transport: transport,
                                                         factor: configuration.replicationFactor, logger: logger, owner: owner)
                keepers[owner] = keeper
                await keeper.round(keeper.targets(view))
            }
        }
    }

    /// Copies follow their owners' retention (`LedgerStore.appendReplica`); the pages that frees
    /// are given back to the file system here, once a minute, so a copy's file shrinks as its
    /// owner's does.
    func shrinkCopies(every interval: Duration = .seconds(60)) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return }
            for owner in replicas.owners() {
                guard let store = try? replicas.store(for: owner, create: false) else { continue }
                do {
                    let (free, before) = try await store.offload { (try $0.freePages(), try $0.fileBytes()) }
                    guard free > 0 else { continue }
                    let converted = try await store.offload { try $0.releaseFreePages() }
                    let after = try await store.offload { try $0.fileBytes() }
                    logger.info("copy of \(owner.hex.prefix(12)): gave back \(free) free page(s) its owner's retention left, \(before) → \(after) bytes\(converted ? " (rewritten once, VACUUM)" : "")")
                } catch {
                    logger.warning("copy of \(owner.hex.prefix(12)): could not give free pages back: \(error)")
                }
            }
        }
    }

    func serveReplicate(_ body: [UInt8], from connection: PeerConnection, owner: PublicKey? = nil) async -> (PeerStatus, [UInt8]) {
        do {
            let (expected, batch) = try ReplicationCodec.decodeRequest(body)
            // Only asked where it is: a replica not yet holding anything gets no file for nothing.
            guard let store = try replicas.store(for: owner ?? connection.peer.key, create: expected >= 0) else {
                return (.ok, ReplicationCodec.encode(.init(position: 0, height: nil)))
            }
            let here = try store.replicaPosition()
            guard expected >= 0, expected == here.position else { return (.ok, ReplicationCodec.encode(here)) }
            let position = try await store.appendReplica(batch)
            await router.engine.raiseSeqs(Self.newestSeqs(batch.readings.map(\.reading)))
            return (.ok, ReplicationCodec.encode(position))
        } catch {
            logger.warning("refused a replication batch from \(connection.name): \(error)")
            return (.error, Array("\(error)".utf8))
        }
    }
}
