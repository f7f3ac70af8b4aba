import ArgumentParser
import Consensus
import FlowchainClient
import FlowchainCrypto
import FlowchainNode
import FlowchainWire
import Foundation
import Ledger

/// Totals and identity of a ledger.
struct LedgerSummary: Sendable {
    var owner: PublicKey?
    var blocks: Int
    var readings: Int
    var pending: Int
}

/// What the read commands read: a node's ledger on this machine, or a running node over JSON-RPC.
/// Both return the same typed values, so every command prints the same thing from either.
protocol LedgerSource: Sendable {
    func readings(device: String, from: Int64, to: Int64, limit: Int, after cursor: String?) async throws -> Page<ReadingRecord>
    func blocks(limit: Int) async throws -> [BlockHeader]
    func summary() async throws -> LedgerSummary
    /// The portable proof of a reading (carried to its anchor block when one commits it), or nil.
    func proof(of id: Digest32, anchorChain: Bool) async throws -> ReadingProof.Portable?
}

extension SourceOptions {
    /// Runs `body` with the source these options name (`--node`, else `--data-dir`); errors
    /// become `flowchain: error: …` and exit status 1.
    func withSource<T: Sendable>(_ body: @escaping @Sendable (any LedgerSource) async throws -> T) async throws -> T {
        do {
            if let node = remote.node {
                return try await RPCConnection.with(node, token: remote.resolvedToken) { try await body(RemoteLedger(rpc: $0)) }
            }
            return try await body(try LocalLedger(data))
        } catch let e as ExitCode {
            throw e
        } catch {
            throw failure("\(error)")
        }
    }
}

/// A node's ledger on this machine, opened read-only: safe while the node runs (SQLite WAL
/// readers never block it).
struct LocalLedger: LedgerSource {
    let store: LedgerStore
    let data: DataDirOption

    init(_ data: DataDirOption) throws {
        self.data = data
        let dir = DataDirectory(data.dataDir)
        guard FileManager.default.fileExists(atPath: dir.ledgerPath) else {
            throw failure("no ledger at \(dir.ledgerPath); start a node with --data-dir \(data.dataDir) first, or pass --node URL")
        }
        store = try LedgerStore(path: dir.ledgerPath, owner: nil, readOnly: true, tailCheck: 0)
        // A running node publishes what it acknowledged when asked; a stopped one applies its
        // journal when it starts (or when a command that writes opens the ledger).
        let unseen = try store.catchUpWithJournal()
        if unseen > 0 {
            FileHandle.standardError.write(Data("note: \(unseen) acknowledged commit(s) are in the acknowledgement journal but not yet in the ledger file, so this answer leaves them out: a node running on this ledger did not publish them within 5 s of being asked (run the command again), and a stopped one applies them when it starts\n".utf8))
        }
    }

    /// The node's anchor chain, replayed and re-validated from its store (nil before the node has
    /// a genesis file), for carrying proofs to the anchor without minting.
    func anchorObserver() throws -> AnchorNode? {
        let path = (data.dataDir as NSString).appendingPathComponent("genesis.json")
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try AnchorNode(genesis: Genesis.load(path), key: nil, store: store, now: Int64(Date().timeIntervalSince1970))
    }

    func readings(device: String, from: Int64, to: Int64, limit: Int, after cursor: String?) async throws -> Page<ReadingRecord> {
        let page = try store.readings(device: device, from: from, to: to, limit: limit, after: cursor.flatMap(ReadingCursor.init))
        return Page(items: page.items.map(ReadingRecord.init), nextCursor: page.nextCursor)
    }

    func blocks(limit: Int) async throws -> [BlockHeader] { try store.blocks(limit: limit) }

    func summary() async throws -> LedgerSummary {
        let counts = try store.counts()
        return LedgerSummary(owner: store.owner, blocks: counts.blocks, readings: counts.readings, pending: counts.pending)
    }

    func proof(of id: Digest32, anchorChain: Bool) async throws -> ReadingProof.Portable? {
        guard let proof = try store.proof(for: id) else {
            if let pruned = try store.prunedReading(id: id) {
                throw failure("reading \(id) was pruned by retention: its payload is gone; it was leaf \(pruned.leaf) of block \(pruned.block), whose header remains")
            }
            return nil
        }
        guard let node = try anchorObserver(), let anchored = try await node.anchored(proof) else { return proof.portable }
        return anchored.portable(chain: anchorChain ? try await node.activeBlocks(through: anchored.anchor.height) : nil)
    }
}

/// A running node over JSON-RPC (docs/rpc.md); what it answers is decoded and checked for shape.
struct RemoteLedger: LedgerSource {
    let rpc: RPCConnection

    func readings(device: String, from: Int64, to: Int64, limit: Int, after cursor: String?) async throws -> Page<ReadingRecord> {
        var params: [String: JSONValue] = ["device": .string(device), "limit": .int(min(1000, limit))]
        if from != .min { params["from"] = .int(from) }
        if to != .max { params["to"] = .int(to) }
        if let cursor { params["cursor"] = .string(cursor) }
        let page = try await rpc.call("readings", params)
        guard let list = page["readings"]?.arrayValue else { throw WireError.invalid("the node's 'readings' answer has no readings list") }
        return Page(items: try list.map { v throws(WireError) in try ReadingRecord(wire: v) }, nextCursor: page["nextCursor"]?.stringValue)
    }

    func blocks(limit: Int) async throws -> [BlockHeader] {
        let list = try await rpc.call("blocks", ["limit": .int(max(1, min(500, limit)))])
        guard let items = list.arrayValue else { throw WireError.invalid("the node's 'blocks' answer is not a list") }
        return try items.map { v throws(WireError) in try ReadingWire.blockHeader(from: v) }
    }

    func summary() async throws -> LedgerSummary {
        let info = try await rpc.call("info")
        let owner = info["publicKey"]?.stringValue.flatMap(Hex.decode).flatMap { try? PublicKey(bytes: $0) }
        func count(_ name: String) -> Int { info[name]?.int64Value.map { Int($0) } ?? 0 }
        return LedgerSummary(owner: owner, blocks: count("blocks"), readings: count("readings"), pending: count("pending"))
    }

    func proof(of id: Digest32, anchorChain: Bool) async throws -> ReadingProof.Portable? {
        let value: JSONValue
        do {
            value = try await rpc.call("proof", ["id": .string(id.hex), "anchorChain": .bool(anchorChain)])
        } catch let e as RPCConnection.RemoteError where e.kind == "not_found" {
            return nil
        }
        return try JSONDecoder().decode(ReadingProof.Portable.self, from: Data(value.jsonBytes))
    }
}
