/// Why the store cannot be opened or used. Every case says what is wrong and where.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// SQLite reported the file as damaged or not a database.
    case corrupted(path: String, detail: String)
    /// The file is a database, but the chain inside it breaks a rule.
    case chainBroken(path: String, violation: String)
    /// The data directory belongs to another node key.
    case ownerMismatch(path: String, stored: String, key: String)
    /// Opened read-only, but the database has never been created by a node.
    case notInitialised(path: String)
    case sqlite(operation: String, detail: String)

    public var description: String {
        switch self {
        case let .corrupted(path, detail):
            return "the database \(path) is corrupted (\(detail)); refusing to run on it. Restore it from a replica or backup; it has not been modified."
        case let .chainBroken(path, violation):
            return "the chain in \(path) does not verify: \(violation); refusing to run on it. It has not been modified."
        case let .ownerMismatch(path, stored, key):
            return "the database \(path) belongs to node key \(stored), but this node's key is \(key); use the matching data directory or key"
        case let .notInitialised(path):
            return "no ledger at \(path); start a node on this data directory first (`flowchain node --data-dir ...`)"
        case let .sqlite(operation, detail):
            return "\(operation): \(detail)"
        }
    }
}
