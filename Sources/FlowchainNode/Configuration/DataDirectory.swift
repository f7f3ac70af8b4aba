import Foundation

/// The files of one node: `node.key` (Ed25519 seed, mode 0600) and `ledger.sqlite` (+ WAL files).
public struct DataDirectory: Sendable {
    public static let defaultPath = "./flowchain-data"
    public let path: String

    public init(_ path: String) { self.path = path }

    public var keyPath: String { (path as NSString).appendingPathComponent("node.key") }
    public var ledgerPath: String { (path as NSString).appendingPathComponent("ledger.sqlite") }
    /// The copies a node in a ring keeps of other nodes' chains, one file per owner.
    public var replicasPath: String { (path as NSString).appendingPathComponent("replicas") }

    /// Creates the directory (mode 0700) when missing.
    public func create() throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw NodeError.dataDirectory(path, "exists and is not a directory") }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw NodeError.dataDirectory(path, "cannot create it: \(error.localizedDescription)")
        }
    }
}

/// Errors that stop a node from starting, each saying what to do about it.
public enum NodeError: Error, CustomStringConvertible, Sendable {
    case dataDirectory(String, String)
    case configuration(String)

    public var description: String {
        switch self {
        case let .dataDirectory(path, why): return "data directory \(path) \(why)"
        case let .configuration(why): return "configuration: \(why)"
        }
    }
}
