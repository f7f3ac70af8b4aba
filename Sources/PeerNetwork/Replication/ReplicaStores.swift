import FlowchainCrypto
import Foundation
import Ledger
import Synchronization

/// The copies this node keeps of other nodes' segment chains, one SQLite file per owner under
/// `<data-dir>/replicas/`, each a `LedgerStore` bound to its owner's key: the same schema, the
/// same queries, and the same verification (`flowchain check` verifies them too).
public final class ReplicaStores: Sendable {
    public let directory: String
    private let open = Mutex<[PublicKey: LedgerStore]>([:])
    /// Held while a copy's file is opened (created and migrated): two callers opening one new
    /// file at once both ran its migrations, and the second failed ("table meta already exists").
    private let opening = Mutex<Void>(())
    /// The owners with a copy here: read from the directory once, then kept as copies are made
    /// (every query asks, so the directory is not listed each time).
    private let known: Mutex<Set<PublicKey>>

    public init(directory: String) {
        self.directory = directory
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        known = Mutex(Set(files.compactMap { name in
            guard name.hasSuffix(".sqlite"), let bytes = Hex.decode(String(name.dropLast(7))) else { return nil }
            return try? PublicKey(bytes: bytes)
        }))
    }

    public func path(for owner: PublicKey) -> String {
        (directory as NSString).appendingPathComponent("\(owner.hex).sqlite")
    }

    /// The replica of `owner`'s chain, created on first use when `create`.
    public func store(for owner: PublicKey, create: Bool) throws -> LedgerStore? {
        if let s = open.withLock({ $0[owner] }) { return s }
        return try opening.withLock { _ -> LedgerStore? in
            if let s = open.withLock({ $0[owner] }) { return s }
            let path = path(for: owner)
            guard create || FileManager.default.fileExists(atPath: path) else { return nil }
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let store = try LedgerStore(path: path, owner: owner, journaled: false)
            known.withLock { _ = $0.insert(owner) }
            open.withLock { $0[owner] = store }
            return store
        }
    }

    /// The owners whose chains this node keeps a copy of.
    public func owners() -> [PublicKey] { Array(known.withLock { $0 }) }
}

/// The bodies of `replicate`:
///
///     request  expected position i64 (−1: only asking where the replica is)
///              · count u32 · (position i64 · reading (u32 length · encoding))…
///              · count u32 · block header (u32 length · encoding)…
///              [· owner's pruned height u64 · count u32
///                 · (first position i64 · block header (u32 length · encoding) · count u32 · id (32 bytes)…)…]
///     reply    position i64 · height i64 (−1: no block) [· pruned height u64]
///
/// The bracketed parts are present only once the owner (or the replica) has pruned, so a ring
/// without retention exchanges exactly what it did before retention existed.
/// A request whose expected position is not the replica's is not applied: the reply says where
/// the replica is, and the owner sends from there.
enum ReplicationCodec {
    static func encode(expected: Int64, _ batch: ReplicationBatch) -> [UInt8] {
        var w = BinaryWriter(capacity: 16 + batch.readings.count * 320)
        w.i64(expected)
        w.u32(UInt32(batch.readings.count))
        for (p, r) in batch.readings { w.i64(p); w.long(r.encoded) }
        w.u32(UInt32(batch.blocks.count))
        for b in batch.blocks { w.long(b.encoded) }
        if batch.prunedBelow > 0 || !batch.prunedBlocks.isEmpty {
            w.u64(batch.prunedBelow)
            w.u32(UInt32(batch.prunedBlocks.count))
            for b in batch.prunedBlocks {
                w.i64(b.firstRowid)
                w.long(b.header.encoded)
                w.u32(UInt32(b.ids.count))
                for id in b.ids { w.fixed(id.bytes) }
            }
        }
        return w.bytes
    }

    static func decodeRequest(_ bytes: [UInt8]) throws -> (expected: Int64, batch: ReplicationBatch) {
        var r = BinaryReader(bytes)
        let expected = try r.i64("expected position")
        let n = Int(try r.u32("readings.count"))
        guard n <= 10_000 else { throw DecodingError.oversize(field: "readings.count", length: n, limit: 10_000) }
        var batch = ReplicationBatch()
        batch.readings.reserveCapacity(n)
        for i in 0..<n {
            let p = try r.i64("readings[\(i)].position")
            batch.readings.append((p, try Reading(encoded: try r.long("readings[\(i)]", limit: Reading.maxEncodedPayload + 4096))))
        }
        let m = Int(try r.u32("blocks.count"))
        guard m <= 1024 else { throw DecodingError.oversize(field: "blocks.count", length: m, limit: 1024) }
        for i in 0..<m { batch.blocks.append(try BlockHeader(encoded: try r.long("blocks[\(i)]", limit: 4096))) }
        if r.remaining > 0 {
            batch.prunedBelow = try r.u64("pruned height")
            let k = Int(try r.u32("prunedBlocks.count"))
            guard k <= 1024 else { throw DecodingError.oversize(field: "prunedBlocks.count", length: k, limit: 1024) }
            var ids = 0
            for i in 0..<k {
                let first = try r.i64("prunedBlocks[\(i)].first")
                let header = try BlockHeader(encoded: try r.long("prunedBlocks[\(i)].header", limit: 4096))
                let c = Int(try r.u32("prunedBlocks[\(i)].ids.count"))
                ids += c
                guard ids <= 100_000 else { throw DecodingError.oversize(field: "prunedBlocks.ids", length: ids, limit: 100_000) }
                let blockIDs = try (0..<c).map { j in try Digest32(bytes: try r.fixed(32, "prunedBlocks[\(i)].ids[\(j)]")) }
                batch.prunedBlocks.append(PrunedBlock(firstRowid: first, header: header, ids: blockIDs))
            }
        }
        try r.finish()
        return (expected, batch)
    }

    static func encode(_ p: LedgerStore.ReplicaPosition) -> [UInt8] {
        var w = BinaryWriter(capacity: 24)
        w.i64(p.position)
        w.i64(p.height.map { Int64($0) } ?? -1)
        if p.prunedBelow > 0 { w.u64(p.prunedBelow) }
        return w.bytes
    }

    static func decodeReply(_ bytes: [UInt8]) throws -> LedgerStore.ReplicaPosition {
        var r = BinaryReader(bytes)
        let position = try r.i64("position")
        let height = try r.i64("height")
        let pruned = r.remaining > 0 ? try r.u64("pruned height") : 0
        try r.finish()
        return LedgerStore.ReplicaPosition(position: position, height: height < 0 ? nil : UInt64(height), prunedBelow: pruned)
    }
}
