import Foundation
import GRDB

extension LedgerStore {
    /// One queued submission (its encoding is the peer network's).
    public struct QueuedForward: Sendable {
        public let id: Int64
        public let device: String
        public let submission: [UInt8]
    }

    /// Appends submissions to the forward queue, durably, unless that would take it over `limit`
    /// entries; returns false (and stores nothing) then.
    public func enqueueForwards(_ items: [(device: String, submission: [UInt8])], now: Int64, limit: Int) async throws -> Bool {
        try await write("queue forwards") { db in
            let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM forward_queue") ?? 0
            guard count + items.count <= limit else { return false }
            let insert = try db.cachedStatement(sql: "INSERT INTO forward_queue(device, submission, queued_at) VALUES (?, ?, ?)")
            for (device, submission) in items { try insert.execute(arguments: [device, Data(submission), now]) }
            return true
        }
    }

    /// The oldest `limit` queued submissions, in queue order.
    public func queuedForwards(limit: Int) throws -> [QueuedForward] {
        try read("read forward queue") { db in
            try Row.fetchAll(db, sql: "SELECT id, device, submission FROM forward_queue ORDER BY id LIMIT ?", arguments: [limit]).map {
                QueuedForward(id: $0["id"], device: $0["device"], submission: Array($0["submission"] as Data))
            }
        }
    }

    public func removeForwards(_ ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        try await write("dequeue forwards") { db in
            let delete = try db.cachedStatement(sql: "DELETE FROM forward_queue WHERE id = ?")
            for id in ids { try delete.execute(arguments: [id]) }
        }
    }

    /// How many submissions wait, and for which devices.
    public func forwardQueueSummary() throws -> (count: Int, devices: Set<String>) {
        try read("forward queue summary") { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM forward_queue") ?? 0,
             Set(try String.fetchAll(db, sql: "SELECT DISTINCT device FROM forward_queue")))
        }
    }
}
