import FlowchainCrypto
import Foundation
import GRDB

/// A device's entry in the registry: the key its readings must be signed by, and its own token.
public struct DeviceRecord: Sendable, Equatable {
    public enum BoundBy: String, Sendable {
        /// Bound to the signer of its first reading (trust on first use, as SSH does).
        case firstUse = "first-use"
        /// Bound by `flowchain devices add --key` or the `addDevice` RPC.
        case registration
        /// Re-bound to a new key by `flowchain devices rekey` or the `rekeyDevice` RPC.
        case rekey
    }

    public let device: String
    /// nil until the device's first reading or a registration with a key.
    public let signer: PublicKey?
    /// SHA-256 of the device's own token; nil when the device writes with the node's token.
    public let tokenHash: Digest32?
    public let boundBy: BoundBy
    /// ms since the epoch.
    public let boundAt: Int64

    /// True when `presented` is this device's own token (compared as hashes, in constant time).
    public func acceptsToken(_ presented: String?) -> Bool {
        guard let tokenHash, let presented else { return false }
        return SHA256.hash(Array(presented.utf8)).constantTimeEquals(tokenHash)
    }
}

/// Why a registration was refused.
public enum DeviceRegistrationError: Error, Equatable, Sendable, CustomStringConvertible {
    case badDevice(String)
    case unacceptableKey(String)
    case boundToAnotherKey(device: String, bound: String)

    public var description: String {
        switch self {
        case let .badDevice(why): "bad device id: \(why)"
        case let .unacceptableKey(key): "\(key) is not a usable Ed25519 public key (not a canonical point of the prime-order subgroup, or of small order)"
        case let .boundToAnotherKey(device, bound):
            "device \(device) is already bound to key \(bound); re-keying is a separate, explicit act: flowchain devices rekey \(device) --key NEW"
        }
    }
}

extension LedgerStore {
    /// See `Reading.maxSeqJump`.
    public static let maxSeqJump = Reading.maxSeqJump

    public func device(_ id: String) throws -> DeviceRecord? {
        try read("get device") { db in try Self.deviceRecord(id, db) }
    }

    /// The device as every submission's credential check reads it: from the committed ledger,
    /// without publishing the open journaled batch. Its token is current (tokens change only in
    /// writes of their own, which settle the batch first); its signer may not be, when the batch
    /// bound it on first use.
    public func deviceCredentials(_ id: String) throws -> DeviceRecord? {
        try read("get device credentials", publish: false) { db in try Self.deviceRecord(id, db) }
    }

    /// Every registered or bound device, by id.
    public func registeredDevices(limit: Int = 10_000) throws -> [DeviceRecord] {
        try read("list registered devices") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM device ORDER BY device LIMIT ?", arguments: [limit]).map(Self.record)
        }
    }

    /// Binds `device` to `key` (a registration). Registering the key it already has is a no-op;
    /// a different key is refused: use `rekey`.
    @discardableResult
    public func register(device: String, key: PublicKey, now: Int64) throws -> DeviceRecord {
        try Self.checkRegistration(device: device, key: key)
        return try writeSync("register device") { db in
            if let known = try Self.deviceRecord(device, db) {
                if let bound = known.signer {
                    guard bound == key else { throw DeviceRegistrationError.boundToAnotherKey(device: device, bound: bound.hex) }
                    return known
                }
                try db.execute(sql: "UPDATE device SET signer = ?, bound_by = ?, bound_at = ? WHERE device = ?",
                               arguments: [Data(key.bytes), DeviceRecord.BoundBy.registration.rawValue, now, device])
            } else {
                try db.execute(sql: "INSERT INTO device(device, signer, token_hash, bound_by, bound_at) VALUES (?, ?, NULL, ?, ?)",
                               arguments: [device, Data(key.bytes), DeviceRecord.BoundBy.registration.rawValue, now])
            }
            return try Self.deviceRecord(device, db)!
        }
    }

    /// Re-binds `device` to `key`: later readings must be signed by the new key. The caller logs it.
    @discardableResult
    public func rekey(device: String, key: PublicKey, now: Int64) throws -> (old: PublicKey?, record: DeviceRecord) {
        try Self.checkRegistration(device: device, key: key)
        return try writeSync("rekey device") { db in
            let old = try Self.deviceRecord(device, db)
            try db.execute(sql: """
                INSERT INTO device(device, signer, token_hash, bound_by, bound_at) VALUES (?, ?, NULL, ?, ?)
                ON CONFLICT(device) DO UPDATE SET signer = excluded.signer, bound_by = excluded.bound_by, bound_at = excluded.bound_at
                """, arguments: [device, Data(key.bytes), DeviceRecord.BoundBy.rekey.rawValue, now])
            return (old?.signer, try Self.deviceRecord(device, db)!)
        }
    }

    /// Gives `device` a new token of its own (replacing any earlier one) and returns it. Only its
    /// hash is stored: the token is shown once.
    public func issueToken(device: String, now: Int64) throws -> String {
        if let why = DeviceID.problem(with: device) { throw DeviceRegistrationError.badDevice(why) }
        let token = Hex.encode(try SecureRandom.bytes(24))
        let hash = Data(SHA256.hash(Array(token.utf8)).bytes)
        try writeSync("issue device token") { db in
            try db.execute(sql: """
                INSERT INTO device(device, signer, token_hash, bound_by, bound_at) VALUES (?, NULL, ?, ?, ?)
                ON CONFLICT(device) DO UPDATE SET token_hash = excluded.token_hash
                """, arguments: [device, hash, DeviceRecord.BoundBy.registration.rawValue, now])
        }
        return token
    }

    static func checkRegistration(device: String, key: PublicKey) throws {
        if let why = DeviceID.problem(with: device) { throw DeviceRegistrationError.badDevice(why) }
        guard key.isAcceptable else { throw DeviceRegistrationError.unacceptableKey(key.hex) }
    }

    static func deviceRecord(_ id: String, _ db: Database) throws -> DeviceRecord? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM device WHERE device = ?"), arguments: [id]).map(record)
    }

    static func record(_ row: Row) throws -> DeviceRecord {
        let signer = (row["signer"] as Data?).flatMap { try? PublicKey(bytes: Array($0)) }
        let token = (row["token_hash"] as Data?).flatMap { try? Digest32(bytes: Array($0), what: "token hash") }
        return DeviceRecord(device: row["device"], signer: signer, tokenHash: token,
                            boundBy: DeviceRecord.BoundBy(rawValue: row["bound_by"]) ?? .firstUse, boundAt: row["bound_at"])
    }
}
