public import FlowchainCrypto
public import Foundation
public import LedgerModel

/// The anchor chain's starting point: chain id, initial stakes and balances, target and interval.
/// Nodes with different genesis files have different `hash`es and refuse each other's blocks.
public struct Genesis: Sendable, Equatable {
    public struct Account: Sendable, Equatable, Codable {
        public let key: PublicKey
        /// Bonded stake: what mints.
        public let stake: UInt64
        /// Free balance: what can be bonded later.
        public let balance: UInt64

        public init(key: PublicKey, stake: UInt64, balance: UInt64 = 0) {
            self.key = key
            self.stake = stake
            self.balance = balance
        }
    }

    public let chainID: String
    /// Seconds since the epoch.
    public let time: Int64
    /// Target seconds between anchor blocks.
    public let anchorInterval: UInt32
    /// Blocks before a bond starts minting or an unbond is released.
    public let bondDelay: UInt32
    /// Sorted by key.
    public let accounts: [Account]
    public let initialTarget: UInt256

    public init(chainID: String, time: Int64, anchorInterval: UInt32 = 10, bondDelay: UInt32 = 10, accounts: [Account], initialTarget: UInt256? = nil) {
        self.chainID = chainID
        self.time = time
        self.anchorInterval = max(1, anchorInterval)
        self.bondDelay = bondDelay
        self.accounts = accounts.sorted { $0.key < $1.key }
        // Saturating: a genesis loaded from a file is checked to fit (init(file:)); this only guards
        // values built in code.
        let total = max(1, accounts.reduce(UInt64(0)) { $0.addingReportingOverflow($1.stake).overflow ? .max : $0 + $1.stake })
        // One success a second across all stake: p = target × S / 2^256 = 1 / interval.
        self.initialTarget = initialTarget ?? UInt256.max.divided(by: total).divided(by: UInt64(max(1, anchorInterval)))
    }

    /// A single-node genesis that gives all stake to `key`.
    public static func singleNode(key: PublicKey, time: Int64, anchorInterval: UInt32 = 10) -> Genesis {
        Genesis(chainID: "flowchain-\(key.hex.prefix(12))", time: time, anchorInterval: anchorInterval,
                accounts: [Account(key: key, stake: 1_000_000)])
    }

    public var totalStake: UInt64 { accounts.reduce(UInt64(0)) { $0.addingReportingOverflow($1.stake).overflow ? .max : $0 + $1.stake } }

    public var encoded: [UInt8] {
        var w = BinaryWriter()
        w.fixed(Array("flowchain/genesis/v1".utf8))
        w.short(Array(chainID.utf8).prefix(255))
        w.i64(time)
        w.u32(anchorInterval)
        w.u32(bondDelay)
        w.u32(UInt32(accounts.count))
        for a in accounts {
            w.fixed(a.key.bytes)
            w.u64(a.stake)
            w.u64(a.balance)
        }
        w.fixed(initialTarget.bytes)
        return w.bytes
    }

    /// Identifies the chain; every anchor block names it.
    public var hash: Digest32 { SHA256.hash(encoded) }
}

extension Genesis {
    /// The genesis file: `{"format":"flowchain-genesis/1","chainID","time","anchorInterval",
    /// "bondDelay","accounts":[{"key","stake","balance"}],"initialTarget"}` (see docs/consensus.md).
    public struct File: Codable {
        public var format = "flowchain-genesis/1"
        public var chainID: String
        public var time: Int64
        public var anchorInterval: UInt32
        public var bondDelay: UInt32
        public var accounts: [FileAccount]
        public var initialTarget: String?

        public init(chainID: String, time: Int64, anchorInterval: UInt32, bondDelay: UInt32, accounts: [FileAccount], initialTarget: String?) {
            (self.chainID, self.time, self.anchorInterval, self.bondDelay, self.accounts, self.initialTarget) =
                (chainID, time, anchorInterval, bondDelay, accounts, initialTarget)
        }
    }

    public struct FileAccount: Codable {
        public var key: String
        public var stake: UInt64
        public var balance: UInt64?

        public init(key: String, stake: UInt64, balance: UInt64?) {
            (self.key, self.stake, self.balance) = (key, stake, balance)
        }
    }

    public var file: File {
        File(chainID: chainID, time: time, anchorInterval: anchorInterval, bondDelay: bondDelay,
             accounts: accounts.map { FileAccount(key: $0.key.hex, stake: $0.stake, balance: $0.balance) },
             initialTarget: initialTarget.hex)
    }

    public init(file f: File) throws {
        guard f.format == "flowchain-genesis/1" else { throw GenesisError("format must be flowchain-genesis/1, got \(f.format)") }
        guard !f.chainID.isEmpty, f.chainID.utf8.count <= 64 else { throw GenesisError("chainID must be 1…64 bytes") }
        guard f.anchorInterval >= 1 else { throw GenesisError("anchorInterval must be at least 1 second") }
        guard !f.accounts.isEmpty else { throw GenesisError("at least one account is needed") }
        var seen = Set<PublicKey>()
        var accounts: [Account] = []
        for (i, a) in f.accounts.enumerated() {
            guard let bytes = Hex.decode(a.key), let key = try? PublicKey(bytes: bytes) else { throw GenesisError("accounts[\(i)].key is not a public key (64 hex digits)") }
            guard seen.insert(key).inserted else { throw GenesisError("accounts[\(i)].key appears twice") }
            accounts.append(Account(key: key, stake: a.stake, balance: a.balance ?? 0))
        }
        guard accounts.contains(where: { $0.stake > 0 }) else { throw GenesisError("no account has stake, so nobody could mint") }
        // Every stake and balance together must fit in 64 bits: bonds and unbonds only move value
        // between them, so no account's stake or balance can ever overflow afterwards.
        var total: UInt64 = 0
        for (i, a) in accounts.enumerated() {
            let (withStake, o1) = total.addingReportingOverflow(a.stake)
            let (withBalance, o2) = withStake.addingReportingOverflow(a.balance)
            guard !o1, !o2 else { throw GenesisError("accounts[\(i)]: stakes and balances together exceed 2^64 − 1") }
            total = withBalance
        }
        var target: UInt256? = nil
        if let t = f.initialTarget {
            guard let parsed = UInt256(hex: t), !parsed.isZero else { throw GenesisError("initialTarget is not a non-zero 256-bit hex number") }
            target = parsed
        }
        self.init(chainID: f.chainID, time: f.time, anchorInterval: f.anchorInterval, bondDelay: f.bondDelay, accounts: accounts, initialTarget: target)
    }

    public static func load(_ path: String) throws -> Genesis {
        guard let data = FileManager.default.contents(atPath: path) else { throw GenesisError("cannot read genesis file \(path)") }
        do { return try Genesis(file: JSONDecoder().decode(File.self, from: data)) } catch let e as GenesisError { throw e } catch {
            throw GenesisError("genesis file \(path) is malformed: \(error)")
        }
    }

    /// Writes the file durably: to a temporary file, fsynced, then renamed over `path` and the
    /// directory fsynced, so a power cut leaves either no genesis or a whole one.
    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(file)
        let temporary = path + ".tmp"
        _ = FileManager.default.createFile(atPath: temporary, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
        try handle.write(contentsOf: data)
        try handle.synchronize()
        try handle.close()
        guard rename(temporary, path) == 0 else { throw GenesisError("cannot write genesis file \(path): \(String(cString: strerror(errno)))") }
        let directory = open((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent, O_RDONLY)
        if directory >= 0 { fsync(directory); close(directory) }
    }
}

public struct GenesisError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ d: String) { description = d }
}

extension PublicKey: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let bytes = Hex.decode(text) else { throw Swift.DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not hex")) }
        try self.init(bytes: bytes)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(hex)
    }
}
