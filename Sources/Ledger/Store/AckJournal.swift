import FlowchainCrypto
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The acknowledgement journal (`<ledger>.acklog`): what makes the ingest engine's commits
/// durable without an fsynced SQLite transaction each.
///
/// Each commit appends one record (the readings it stored, with their rowids, and the block it
/// sealed, if any) and `fdatasync`s it: one 4 KiB block written per acknowledgement at low rates,
/// where a SQLite commit rewrites a leaf of the table and of each index (2–3 blocks, then again at
/// checkpoint). The same commit runs in SQLite inside a transaction that is committed without an
/// fsync when a read needs it and made durable ("settled") on `LedgerStore.SettlePolicy`'s schedule,
/// after which the journal starts again from its first byte. On open, records the durable SQLite
/// state has not got yet (their sequence number is above `meta.journal_lsn`) are applied again.
///
/// The file has a fixed size, allocated once (`posix_fallocate`) and overwritten in place, so an
/// append changes no file-system metadata; it is never read while the node runs. Records:
/// `"FCJ1"`, body length (u32), lsn (u64), body, then the first 8 bytes of SHA-256(lsn ‖ body).
/// Reading stops at the first record that is torn, fails its checksum or does not continue the
/// lsn sequence (what an earlier pass left behind). Like SQLite's WAL, it assumes that rewriting
/// a block's tail does not damage the bytes before it (powersafe overwrite).
final class AckJournal: Sendable {
    /// Bytes the file is allocated with; a settle is due once half of it is used.
    static let capacity = 2 << 20
    /// Commits whose record could be larger go to SQLite directly (see `LedgerStore.journaled`).
    static let largestRecord = 256 << 10
    static let magic: [UInt8] = Array("FCJ1".utf8)
    static let overhead = 4 + 4 + 8 + 8

    /// The journal of the ledger at `ledgerPath`, and the file another process creates to ask the
    /// node writing that ledger to publish its batch.
    static func path(for ledgerPath: String) -> String { ledgerPath + ".acklog" }
    static func publishRequestPath(for ledgerPath: String) -> String { ledgerPath + ".acklog.publish" }

    let path: String
    /// `FLOWCHAIN_UNSAFE_SYNCHRONOUS_OFF=1` (the power-loss test's negative control only).
    let unsafeNoSync: Bool
    private struct State {
        var fd: Int32 = -1
        var used = 0
    }
    private let state = Mutex(State())

    init(path: String, unsafeNoSync: Bool) {
        self.path = path
        self.unsafeNoSync = unsafeNoSync
    }

    deinit { state.withLock { if $0.fd >= 0 { close($0.fd) } } }

    /// Bytes appended since the last reset.
    var used: Int { state.withLock { $0.used } }

    /// One record as it is stored: a block sealed first (with where its range starts), then readings.
    struct Entry {
        var block: (header: [UInt8], firstRowid: Int64)?
        var readings: [(rowid: Int64, encoded: [UInt8])] = []
        /// Anchor blocks stored (a record of its own: kind 2).
        var anchors: [(hash: Digest32, height: UInt64, encoded: [UInt8])] = []

        var isEmpty: Bool { block == nil && readings.isEmpty && anchors.isEmpty }

        func encoded() -> [UInt8] {
            var w = BinaryWriter(capacity: 16 + (block?.header.count ?? 0) + readings.reduce(0) { $0 + $1.encoded.count + 12 })
            if !anchors.isEmpty {
                w.u8(2)
                w.u32(UInt32(anchors.count))
                for a in anchors {
                    w.fixed(a.hash.bytes)
                    w.u64(a.height)
                    w.long(a.encoded)
                }
                return w.bytes
            }
            if let block {
                w.u8(1)
                w.i64(block.firstRowid)
                w.long(block.header)
            } else {
                w.u8(0)
            }
            w.u32(UInt32(readings.count))
            for r in readings {
                w.i64(r.rowid)
                w.long(r.encoded)
            }
            return w.bytes
        }

        init(block: (header: [UInt8], firstRowid: Int64)? = nil, readings: [(rowid: Int64, encoded: [UInt8])] = [],
             anchors: [(hash: Digest32, height: UInt64, encoded: [UInt8])] = []) {
            self.block = block
            self.readings = readings
            self.anchors = anchors
        }

        init(decoding bytes: [UInt8]) throws {
            var r = BinaryReader(bytes)
            switch try r.u8("kind") {
            case 0: break
            case 1: block = (header: [], firstRowid: try r.i64("block.firstRowid")); block?.header = try r.long("block.header", limit: 4096)
            case 2:
                for _ in 0..<(try r.u32("anchors")) {
                    let hash = try Digest32(bytes: r.fixed(32, "anchor.hash"))
                    anchors.append((hash, try r.u64("anchor.height"), try r.long("anchor.encoded", limit: AckJournal.capacity)))
                }
                try r.finish()
                return
            case let k: throw DecodingError.invalid(field: "kind", reason: "unknown record kind \(k)")
            }
            let n = try r.u32("count")
            for _ in 0..<n {
                let rowid = try r.i64("reading.rowid")
                readings.append((rowid, try r.long("reading.encoded", limit: AckJournal.capacity)))
            }
            try r.finish()
        }

        /// Upper bound of the bytes a record of `readings` (and a sealed block) takes.
        static func bound(readings: [Reading]) -> Int {
            AckJournal.overhead + 16 + 4096 + readings.reduce(0) { $0 + $1.encoded.count + 12 }
        }
    }

    /// The records from the start of the file up to the first that is missing, torn or out of
    /// sequence. A missing file has none.
    func records() throws -> [(lsn: UInt64, entry: Entry)] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return [] }
            throw StoreError.sqlite(operation: "open \(path)", detail: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: Self.capacity)
        // Read to the end: a read may return less than asked (FUSE hands out 128 KiB at a time).
        var n = 0
        while n < bytes.count {
            let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + n, $0.count - n, off_t(n)) }
            if got < 0, errno == EINTR { continue }
            guard got >= 0 else { throw StoreError.sqlite(operation: "read \(path)", detail: String(cString: strerror(errno))) }
            if got == 0 { break }
            n += got
        }
        // Drop what was read from the page cache: appends later rewrite single blocks, and each
        // one into a large cached folio dirties the whole folio — the device gets only the blocks
        // written, but /proc/PID/io, which `flowchain bench disk` reads, counts all of it.
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        var out: [(UInt64, Entry)] = []
        var offset = 0
        while offset + Self.overhead <= n {
            guard Array(bytes[offset..<offset + 4]) == Self.magic else { break }
            let length = Int(be32(bytes, offset + 4))
            guard length <= n - offset - Self.overhead else { break }
            let lsn = be64(bytes, offset + 8)
            let body = Array(bytes[offset + 16..<offset + 16 + length])
            let sum = Array(bytes[offset + 16 + length..<offset + 24 + length])
            guard sum == Self.checksum(lsn: lsn, body: body) else { break }
            if let last = out.last, lsn != last.0 + 1 { break }
            let entry: Entry
            do { entry = try Entry(decoding: body) } catch {
                throw StoreError.corrupted(path: path, detail: "acknowledgement journal record \(lsn) has a valid checksum but cannot be decoded: \(error)")
            }
            out.append((lsn, entry))
            offset += Self.overhead + length
        }
        return out
    }

    /// Appends one record and makes it durable (`fdatasync`) before returning.
    func append(lsn: UInt64, _ entry: Entry) throws {
        let body = entry.encoded()
        var frame = Self.magic
        frame.reserveCapacity(Self.overhead + body.count)
        withUnsafeBytes(of: UInt32(body.count).bigEndian) { frame.append(contentsOf: $0) }
        withUnsafeBytes(of: lsn.bigEndian) { frame.append(contentsOf: $0) }
        frame.append(contentsOf: body)
        frame.append(contentsOf: Self.checksum(lsn: lsn, body: body))
        try state.withLock { s in
            guard s.used + frame.count <= Self.capacity else {
                throw StoreError.sqlite(operation: "append to \(path)", detail: "the record (\(frame.count) bytes) does not fit")
            }
            if s.fd < 0 { s.fd = try openForWriting() }
            var done = 0
            while done < frame.count {
                let n = frame.withUnsafeBytes { pwrite(s.fd, $0.baseAddress! + done, frame.count - done, off_t(s.used + done)) }
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { throw StoreError.sqlite(operation: "write \(path)", detail: String(cString: strerror(errno))) }
                done += n
            }
            if !unsafeNoSync, fdatasync(s.fd) != 0 {
                throw StoreError.sqlite(operation: "fdatasync \(path)", detail: String(cString: strerror(errno)))
            }
            s.used += frame.count
        }
    }

    /// Opens the file for appending (creating and allocating it when missing).
    func prepare() throws {
        try state.withLock { s in
            if s.fd < 0 { s.fd = try openForWriting() }
        }
    }

    /// Whether a record of `bytes` fits after what is there.
    func fits(_ bytes: Int) -> Bool { state.withLock { $0.used + bytes <= Self.capacity } }

    /// Everything in the journal is durable in SQLite: the next record goes to the first byte.
    func reset() { state.withLock { $0.used = 0 } }

    /// Opens the file, creating and allocating it on first use (then syncing its directory).
    private func openForWriting() throws -> Int32 {
        let created = access(path, F_OK) != 0
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError.sqlite(operation: "open \(path)", detail: String(cString: strerror(errno))) }
        var st = stat()
        fstat(fd, &st)
        if Int(st.st_size) < Self.capacity {
            // Allocated, not written: the first pass converts extents, later passes change nothing.
            let rc = posix_fallocate(fd, 0, off_t(Self.capacity))
            if rc != 0, ftruncate(fd, off_t(Self.capacity)) != 0 {
                close(fd)
                throw StoreError.sqlite(operation: "allocate \(path)", detail: String(cString: strerror(rc)))
            }
            fsync(fd)
        }
        if created {
            let dir = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dir >= 0 { fsync(dir); close(dir) }
        }
        posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM)
        return fd
    }

    static func checksum(lsn: UInt64, body: [UInt8]) -> [UInt8] {
        var input: [UInt8] = []
        input.reserveCapacity(8 + body.count)
        withUnsafeBytes(of: lsn.bigEndian) { input.append(contentsOf: $0) }
        input.append(contentsOf: body)
        return Array(SHA256.hash(input).bytes.prefix(8))
    }

    private func be32(_ b: [UInt8], _ at: Int) -> UInt32 { b[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) } }
    private func be64(_ b: [UInt8], _ at: Int) -> UInt64 { b[at..<at + 8].reduce(0) { $0 << 8 | UInt64($1) } }
}
