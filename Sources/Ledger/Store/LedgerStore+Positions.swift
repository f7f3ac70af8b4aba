import Foundation
import GRDB

extension LedgerStore {
    /// A named position kept with the ledger (e.g. how far the MQTT bridge has published), so a
    /// consumer of the ledger resumes where it stopped after a restart or a crash.
    public func position(_ name: String) throws -> Int64? {
        try read("read position \(name)") { db in
            try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: ["position:" + name])
                .flatMap { Int64(String(decoding: $0, as: UTF8.self)) }
        }
    }

    /// Saves positions in one transaction.
    public func setPositions(_ positions: [String: Int64]) throws {
        try writeSync("save positions") { db in
            for (name, value) in positions {
                try db.execute(sql: "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", arguments: ["position:" + name, Data(String(value).utf8)])
            }
        }
    }
}
