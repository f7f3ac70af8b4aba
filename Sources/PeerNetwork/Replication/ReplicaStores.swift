import FlowchainCrypto
import Foundation
import Ledger
import Synchronization

/// The copies this node keeps of other nodes' segment chains, one SQLite file per owner under
/// `<data-dir>/replicas/`, each a `LedgerStore` bound to its owner's key: the same schema, the
/// same queries, and the same verification (`flowchain check` reads them too).
public final class ReplicaStores: Sendable {
    public let directory: String
    private let open = Mutex<[PublicKey: LedgerStore]>([:])
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
        let path = path(for: owner)
        guard create || FileManager.default.fileExists(atPath: path) else { return nil }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let store = try LedgerStore(path: path, owner: owner, journaled: false)
        known.withLock { _ = $0.insert(owner) }
        return open.withLock { stores in
            if let existing = stores[owner] { return existing }
            stores[owner] = store
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
///     reply    position i64 · height i64 (−1: no block)
///
/// A request whose expected position is not the replica's is not applied: the reply says where
/// the replica is, and the owner sends from there.
enum ReplicationCodec {
    static func encode(expected: Int64, readings: [(position: Int64, reading: Reading)], blocks: [BlockHeader]) -> [UInt8] {
        var w = BinaryWriter(capacity: 16 + readings.count * 320)
        w.i64(expected)
        w.u32(UInt32(readings.count))
        for (p, r) in readings { w.i64(p); w.long(r.encoded) }
        w.u32(UInt32(blocks.count))
        for b in blocks { w.long(b.encoded) }
        return w.bytes
    }

    static func decodeRequest(_ bytes: [UInt8]) throws -> (expected: Int64, readings: [(position: Int64, reading: Reading)], blocks: [BlockHeader]) {
        var r = BinaryReader(bytes)
        let expected = try r.i64("expected position")
        let n = Int(try r.u32("readings.count"))
        guard n <= 10_000 else { throw DecodingError.oversize(field: "readings.count", length: n, limit: 10_000) }
        var readings: [(Int64, Reading)] = []
        readings.reserveCapacity(n)
        for i in 0..<n {
            let p = try r.i64("readings[\(i)].position")
            readings.append((p, try Reading(encoded: try r.long("readings[\(i)]", limit: Reading.maxEncodedPayload + 4096))))
        }
        let m = Int(try r.u32("blocks.count"))
        guard m <= 1024 else { throw DecodingError.oversize(field: "blocks.count", length: m, limit: 1024) }
        var blocks: [BlockHeader] = []
        for i in 0..<m { blocks.append(try BlockHeader(encoded: try r.long("blocks[\(i)]", limit: 4096))) }
        try r.finish()
        return (expected, readings, blocks)
    }

    static func encode(_ p: LedgerStore.ReplicaPosition) -> [UInt8] {
        var w = BinaryWriter(capacity: 16)
        w.i64(p.position)
        w.i64(p.height.map { Int64($0) } ?? -1)
        return w.bytes
    }

    static func decodeReply(_ bytes: [UInt8]) throws -> LedgerStore.ReplicaPosition {
        var r = BinaryReader(bytes)
        let position = try r.i64("position")
        let height = try r.i64("height")
        try r.finish()
        return LedgerStore.ReplicaPosition(position: position, height: height < 0 ? nil : UInt64(height))
    }
}
