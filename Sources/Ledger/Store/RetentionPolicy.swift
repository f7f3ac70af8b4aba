import Foundation
import GRDB

/// How much of the ledger to keep: readings sealed in blocks older than `maxAge`, and the oldest
/// readings while the file is larger than `maxBytes`, lose their payloads (`LedgerStore.prune`).
/// The newest `LedgerStore.unprunableTail` blocks and the pending readings are always kept.
public struct RetentionPolicy: Sendable, Equatable {
    /// Milliseconds: blocks sealed longer ago than this are pruned.
    public var maxAge: Int64?
    /// Bytes: the oldest blocks are pruned until the file is at most this large (to 95 % of it,
    /// so a file at its limit is not pruned on every pass).
    public var maxBytes: Int64?

    public init(maxAge: Int64? = nil, maxBytes: Int64? = nil) {
        self.maxAge = maxAge
        self.maxBytes = maxBytes
    }

    public var isEmpty: Bool { maxAge == nil && maxBytes == nil }

    /// Prunes what the policy says at time `now` (ms). Several passes for a size limit: each
    /// prunes about the excess at the file's current bytes per reading, then measures again.
    public func apply(to store: LedgerStore, now: Int64) async throws -> PruneReport {
        var report = PruneReport()
        report.bytesBefore = try store.fileBytes()
        report.prunedBelow = try store.prunedBelow()
        func add(_ r: PruneReport) {
            report.blocks += r.blocks
            report.readings += r.readings
            report.prunedBelow = r.prunedBelow
            report.convertedToIncrementalVacuum = report.convertedToIncrementalVacuum || r.convertedToIncrementalVacuum
        }
        // Pages a pass frees stay free for the next readings unless the file must shrink: moving
        // pages to give them back writes about as much as was freed (docs/ledger.md, Retention).
        if let maxAge {
            add(try await store.prune(below: try store.firstBlock(notOlderThan: now - maxAge), release: maxBytes.map { .downTo($0) } ?? .whenOverTenth))
        }
        if let maxBytes {
            // What the readings use decides what to prune; free pages are given back only as far
            // as the file must shrink to fit.
            for _ in 0..<12 {
                let used = try store.usedBytes()
                guard used > maxBytes else { break }
                let live = try store.counts().readings
                guard live > 0 else { break }
                let goal = maxBytes / 100 * 95
                let perReading = Double(used) / Double(live)
                let wanted = Int((Double(used - goal) / perReading).rounded(.up))
                let r = try await store.prune(below: try store.pruneBound(readings: wanted), release: .downTo(maxBytes))
                add(r)
                if r.blocks == 0 { break }
            }
            if try store.fileBytes() > maxBytes, try store.freePages() > 0 {
                report.convertedToIncrementalVacuum = try store.releaseFreePages(.downTo(maxBytes)) || report.convertedToIncrementalVacuum
            }
        }
        report.bytesAfter = try store.fileBytes()
        return report
    }

    /// `30d`, `12h`, `90m`, `3600s` (or a bare number of seconds) in ms.
    public static func parseAge(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000)]
        for (suffix, factor) in units.sorted(by: { $0.0.count > $1.0.count }) where t.hasSuffix(suffix) {
            guard let n = Double(t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), n > 0, n * factor < 1e15 else { return nil }
            return Int64(n * factor)
        }
        guard let n = Double(t), n > 0, n < 1e12 else { return nil }
        return Int64(n * 1000)
    }

    /// `500MB`, `2GB`, `1.5GiB`, `64KiB` (or a bare number of bytes) in bytes. KB/MB/GB are
    /// powers of 1000, KiB/MiB/GiB of 1024.
    public static func parseSize(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("kib", 1024), ("mib", 1_048_576), ("gib", 1_073_741_824), ("tib", 1_099_511_627_776),
                                         ("kb", 1e3), ("mb", 1e6), ("gb", 1e9), ("tb", 1e12), ("k", 1e3), ("m", 1e6), ("g", 1e9), ("b", 1)]
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            guard let n = Double(t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), n > 0, n * factor < 1e16 else { return nil }
            return Int64(n * factor)
        }
        guard let n = Int64(t), n > 0 else { return nil }
        return n
    }
}

extension LedgerStore {
    /// Pages in the file's free list (given back to the file system by `releaseFreePages`).
    public func freePages() throws -> Int {
        try read("free pages") { db in try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0 }
    }

    /// The file's bytes in use: its size less its free pages.
    public func usedBytes() throws -> Int64 {
        try read("used bytes") { db in
            let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
            return (pages - free) * (try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 0)
        }
    }
}
