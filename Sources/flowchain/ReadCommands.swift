import ArgumentParser
import FlowchainCrypto
import FlowchainNode
import Foundation
import Ledger
import Network
import Consensus

/// Opens a node's ledger read-only; safe while the node runs (SQLite WAL readers never block it).
func openReadOnly(_ data: DataDirOption) throws -> LedgerStore {
    let dir = DataDirectory(data.dataDir)
    do {
        return try LedgerStore(path: dir.ledgerPath, owner: nil, readOnly: true, tailCheck: 0)
    } catch {
        throw failure("\(error)")
    }
}

/// The node's anchor chain, replayed and re-validated from its store (nil before the node has a
/// genesis file), for carrying proofs to the anchor without minting.
func anchorObserver(_ data: DataDirOption, store: LedgerStore) throws -> AnchorNode? {
    let path = (data.dataDir as NSString).appendingPathComponent("genesis.json")
    guard FileManager.default.fileExists(atPath: path) else { return nil }
    return try AnchorNode(genesis: Genesis.load(path), key: nil, store: store, now: Int64(Date().timeIntervalSince1970))
}

func readingJSON(_ s: StoredReading) -> [String: Any] {
    let r = s.reading
    var out: [String: Any] = [
        "id": r.id.hex, "device": r.device, "seq": r.seq, "time": r.time,
        "timeSynced": r.timeQuality == .synced, "source": r.source.description,
        "signer": r.signer.hex, "signature": Hex.encode(r.signature),
    ]
    out["payload"] = (try? JSONSerialization.jsonObject(with: Data(r.payload))) ?? r.payloadText
    out["block"] = s.block.map { $0 as Any } ?? NSNull()
    out["leaf"] = s.leaf.map { $0 as Any } ?? NSNull()
    return out
}

func blockJSON(_ h: BlockHeader) -> [String: Any] {
    ["height": h.height, "hash": h.hash.hex, "prev": h.prev.hex, "time": h.time, "owner": h.owner.hex,
     "merkleRoot": h.merkleRoot.hex, "count": h.count, "signature": Hex.encode(h.signature)]
}

struct ReadingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "readings",
        abstract: "List a device's readings in a time range, oldest first.",
        discussion: "Times are ms since the epoch, ISO 8601 (2026-11-25T15:00:00Z) or relative (-10m, -2h, -1d)."
    )

    @OptionGroup var data: DataDirOption
    @OptionGroup var remote: NodeOption
    @Option(help: "The device id.") var device: String
    @Option(parsing: .unconditional, help: "Earliest time (inclusive).") var from: String?
    @Option(parsing: .unconditional, help: "Latest time (inclusive).") var to: String?
    @Option(help: "Most readings to print.") var limit = 1000
    @Flag(help: "Print JSON instead of a table.") var json = false

    func validate() throws {
        if let why = DeviceID.problem(with: device) { throw ValidationError("--device: \(why)") }
        guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        let fromMs = try from.map { try parseTime($0, option: "--from") } ?? .min
        let toMs = try to.map { try parseTime($0, option: "--to") } ?? .max
        if let node = remote.node {
            try await runRemote(node, fromMs, toMs)
            return
        }
        let store = try openReadOnly(data)
        var items: [StoredReading] = []
        var cursor: ReadingCursor? = nil
        do {
            repeat {
                let page = try store.readings(device: device, from: fromMs, to: toMs, limit: min(1000, limit - items.count), after: cursor)
                items += page.items
                cursor = page.nextCursor.flatMap(ReadingCursor.init)
            } while cursor != nil && items.count < limit
        } catch {
            throw failure("\(error)")
        }
        if json {
            try printJSON(["device": device, "readings": items.map(readingJSON)])
            return
        }
        if items.isEmpty {
            print("no readings for \(device) in that range")
            return
        }
        print("TIME                       SEQ     BLOCK   ID                PAYLOAD")
        for s in items {
            let block = s.block.map(String.init) ?? "pending"
            print("\(isoTime(s.reading.time).padding(toLength: 26, withPad: " ", startingAt: 0)) \(String(s.reading.seq).padding(toLength: 7, withPad: " ", startingAt: 0)) \(block.padding(toLength: 7, withPad: " ", startingAt: 0)) \(s.reading.id.hex.prefix(16))  \(s.reading.payloadText)")
        }
        print("\(items.count) reading(s)")
    }
}

extension ReadingsCommand {
    /// The same listing from a running node over JSON-RPC.
    func runRemote(_ node: String, _ fromMs: Int64, _ toMs: Int64) async throws {
        let (device, limit) = (self.device, self.limit)
        let items: [UncheckedBox<[String: Any]>]
        do {
            items = try await RPCConnection.with(node, token: remote.resolvedToken) { rpc in
                var out: [UncheckedBox<[String: Any]>] = []
                var cursor: String? = nil
                repeat {
                    var params: [String: Any] = ["device": device, "limit": min(1000, limit - out.count)]
                    if fromMs != .min { params["from"] = fromMs }
                    if toMs != .max { params["to"] = toMs }
                    if let cursor { params["cursor"] = cursor }
                    let page = try await rpc.call("readings", params) as? [String: Any] ?? [:]
                    out += ((page["readings"] as? [[String: Any]]) ?? []).map(UncheckedBox.init)
                    cursor = page["nextCursor"] as? String
                } while cursor != nil && out.count < limit
                return out
            }
        } catch {
            throw failure("\(error)")
        }
        if json {
            print(jsonText(["device": device, "readings": items.map(\.value)]))
            return
        }
        for r in items.map(\.value) {
            let time = (r["time"] as? NSNumber).map { isoTime($0.int64Value) } ?? "?"
            print("\(time)  seq \(r["seq"] ?? "?")  block \((r["block"] as? NSNumber).map { "\($0)" } ?? "pending")  \(((r["id"] as? String) ?? "").prefix(16))  \(jsonText(r["payload"] ?? NSNull()))")
        }
        print("\(items.count) reading(s)")
    }
}

struct BlocksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blocks",
        abstract: "List the newest segment blocks."
    )

    @OptionGroup var data: DataDirOption
    @OptionGroup var remote: NodeOption
    @Option(help: "How many blocks to list.") var limit = 20
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() async throws {
        if let node = remote.node {
            let limit = max(1, min(500, self.limit))
            do {
                let blocks = try await RPCConnection.with(node, token: remote.resolvedToken) { rpc in
                    UncheckedBox(try await rpc.call("blocks", ["limit": limit]) as? [[String: Any]] ?? [])
                }.value
                if json { print(jsonText(["blocks": blocks])); return }
                for b in blocks {
                    print("\(b["height"] ?? "?")  \((b["time"] as? NSNumber).map { isoTime($0.int64Value) } ?? "?")  \(b["count"] ?? "?") readings  \(((b["hash"] as? String) ?? "").prefix(16))")
                }
            } catch {
                throw failure("\(error)")
            }
            return
        }
        let store = try openReadOnly(data)
        let blocks: [BlockHeader]
        let counts: LedgerStore.Counts
        do {
            blocks = try store.blocks(limit: max(1, limit))
            counts = try store.counts()
        } catch {
            throw failure("\(error)")
        }
        if json {
            try printJSON(["owner": store.owner?.hex ?? NSNull(), "blocks": blocks.map(blockJSON),
                           "readings": counts.readings, "pending": counts.pending])
            return
        }
        guard !blocks.isEmpty else {
            print("no blocks yet (\(counts.pending) reading(s) pending)")
            return
        }
        print("HEIGHT  TIME                       READINGS  HASH              PREV")
        for b in blocks {
            print("\(String(b.height).padding(toLength: 7, withPad: " ", startingAt: 0)) \(isoTime(b.time).padding(toLength: 26, withPad: " ", startingAt: 0)) \(String(b.count).padding(toLength: 9, withPad: " ", startingAt: 0)) \(b.hash.hex.prefix(16))  \(b.prev.hex.prefix(16))")
        }
        print("\(counts.blocks) block(s), \(counts.readings) reading(s), \(counts.pending) pending, owner \(store.owner?.hex ?? "?")")
    }
}

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Prove that a reading is in a signed block of a node's chain, and anchored by stake.",
        discussion: """
            Checks the reading's signature, its Merkle path to the block's root, and the block's \
            signature. Exit status 0 and `valid: …` when all hold; 1 and `invalid: <reason>` \
            otherwise. The output claims only what was checked:

            - the block's signer is "pinned" only with --owner KEY, or when the ledger is this \
              machine's (--data-dir); otherwise it says so;
            - an anchor block counts only when checked against an anchor chain the verifier trusts: \
              --genesis FILE (the chain's genesis) with the anchor blocks the proof carries \
              (`flowchain proof --anchor-chain`), or the anchor chain of the data directory on this \
              machine (--data-dir; also for --proof and --node when it is the proof's chain). \
              Otherwise the output says "anchor not verified" and why. An anchor part that breaks a rule of \
              the trusted chain (e.g. minted by a key without stake) makes the proof invalid.

            Where the proof comes from:
              --data-dir D <id>     the node's ledger on this machine (the id may be a unique prefix of 8+ hex digits)
              --node URL <id>       a running node; the proof is checked here, not trusted
              --proof FILE          a portable proof from `flowchain proof` (- for stdin), fully offline
            """
    )

    @OptionGroup var data: DataDirOption
    @OptionGroup var remote: NodeOption
    @Option(help: ArgumentHelp("A portable proof file (`flowchain proof` output), or - for stdin.", valueName: "file")) var proof: String?
    @Option(help: ArgumentHelp("The node public key (hex) that must have signed the block.", valueName: "key")) var owner: String?
    @Option(help: ArgumentHelp("The anchor chain's genesis file, trusted: the proof's anchor blocks are replayed from it.", valueName: "file"))
    var genesis: String?
    @Argument(help: "The reading id (hex).") var readingID: String?

    func invalid(_ reason: String) -> ExitCode {
        print("invalid: \(reason)")
        return ExitCode(1)
    }

    /// How the anchor part is to be checked.
    enum AnchorTrust {
        case genesis(Genesis, carried: [AnchorBlock]?)
        case chain(AnchorNode)
        case none(String)
    }

    func report(_ proof: ReadingProof, owner: PublicKey?, pinned: Bool, anchored: AnchoredProof?, trust: AnchorTrust) async throws {
        let subject = "reading \(proof.reading.id) (device \(proof.reading.device), seq \(proof.reading.seq))"
        guard case let .valid(height) = proof.verify(owner: owner) else {
            if case let .invalid(reason) = proof.verify(owner: owner) { throw invalid(reason) }
            return
        }
        let signer = proof.block?.owner.hex ?? "?"
        let signed = pinned ? "signed by \(signer)" : "signed by \(signer) (owner not pinned: pass --owner KEY to require the node you expect)"
        let head = "valid: \(subject) is leaf \(proof.merkle?.index ?? 0) of block \(height), \(signed)"
        guard let anchored else {
            print("\(head); no anchor block commits it yet")
            return
        }
        if case let .invalid(reason) = anchored.verify(owner: owner) { throw invalid(reason) }
        let claim = "anchor block \(anchored.anchor.height) (minted by \(anchored.anchor.minter.hex.prefix(16))…)"
        let verdict: AnchoredProof.AnchorVerdict
        let against: String
        switch trust {
        case let .genesis(g, carried):
            verdict = anchored.verifyAnchor(genesis: g, chain: carried, now: Int64(Date().timeIntervalSince1970))
            against = "the genesis \(g.chainID) and the \(carried?.count ?? 0) anchor blocks the proof carries"
        case let .chain(node):
            verdict = await node.verifyAnchor(anchored)
            against = "this data directory's anchor chain"
        case let .none(why):
            verdict = .notVerified(why)
            against = ""
        }
        switch verdict {
        case .verified:
            print("\(head); committed by \(claim), verified against \(against)")
        case let .notVerified(why):
            print("\(head); \(claim) claims to commit it: anchor not verified (\(why))")
        case let .invalid(why):
            throw invalid("the proof's \(claim) does not hold: \(why)")
        }
    }

    func run() async throws {
        var pinned: PublicKey? = nil
        if let owner {
            guard let bytes = Hex.decode(owner), let key = try? PublicKey(bytes: bytes) else { throw invalid("--owner '\(owner)' is not a public key (64 hex digits)") }
            pinned = key
        }
        var trustedGenesis: Genesis? = nil
        if let genesis {
            do { trustedGenesis = try Genesis.load(genesis) } catch { throw invalid("--genesis \(genesis): \(error)") }
        }
        let noTrust = "no trusted anchor chain: pass --genesis FILE (the chain's genesis file) with a proof from `flowchain proof --anchor-chain`, or verify on a node's --data-dir"
        // Without --genesis, the anchor chain of the data directory on this machine (when there is
        // one, and it is the proof's chain) is the trusted one; replayed only when a proof needs it.
        func trust(_ portable: ReadingProof.Portable) throws -> AnchorTrust {
            if let trustedGenesis { return .genesis(trustedGenesis, carried: try AnchoredProof.carriedChain(portable)) }
            guard let anchored = try AnchoredProof(portable: portable) else { return .none(noTrust) }
            let ledger = DataDirectory(data.dataDir).ledgerPath
            guard FileManager.default.fileExists(atPath: ledger),
                  let store = try? LedgerStore(path: ledger, owner: nil, readOnly: true, tailCheck: 0),
                  let localChain = try anchorObserver(data, store: store), anchored.anchor.chain == localChain.genesisHash else {
                return .none(noTrust)
            }
            return .chain(localChain)
        }
        if let proof {
            let data = proof == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: proof)
            guard let data else { throw invalid("cannot read \(proof)") }
            let portable: ReadingProof.Portable
            do { portable = try JSONDecoder().decode(ReadingProof.Portable.self, from: data) } catch { throw invalid("\(proof) is not a flowchain proof: \(error)") }
            do {
                let rebuilt = try ReadingProof(portable: portable)
                if let readingID, !rebuilt.reading.id.hex.hasPrefix(readingID.lowercased()) { throw invalid("the proof is for reading \(rebuilt.reading.id), not \(readingID)") }
                try await report(rebuilt, owner: pinned, pinned: pinned != nil, anchored: try AnchoredProof(portable: portable), trust: try trust(portable))
            } catch let e as ExitCode { throw e } catch { throw invalid("\(error)") }
            return
        }
        guard let readingID else { throw invalid("give a reading id, or --proof FILE") }
        if let node = remote.node {
            guard let id = Digest32(hex: readingID) else { throw invalid("'\(readingID)' is not a reading id (64 hex digits)") }
            let withChain = trustedGenesis != nil
            let fetched: ReadingProof.Portable
            do {
                fetched = try await RPCConnection.with(node, token: remote.resolvedToken) { rpc in
                    let proof = try await rpc.call("proof", ["id": id.hex, "anchorChain": withChain])
                    let data = try JSONSerialization.data(withJSONObject: proof)
                    return try JSONDecoder().decode(ReadingProof.Portable.self, from: data)
                }
            } catch {
                throw invalid("\(error)")
            }
            do {
                // The key the node reports is not trusted: the block is checked against --owner only.
                try await report(try ReadingProof(portable: fetched), owner: pinned, pinned: pinned != nil,
                                 anchored: try AnchoredProof(portable: fetched), trust: try trust(fetched))
            } catch let e as ExitCode { throw e } catch { throw invalid("\(error)") }
            return
        }
        guard readingID.count >= 8, readingID.count <= 64, let prefix = Hex.decode(readingID.count % 2 == 0 ? readingID : String(readingID.dropLast())) else {
            throw invalid("'\(readingID)' is not a reading id (8 to 64 hex digits)")
        }
        let store = try openReadOnly(data)
        do {
            let matches = try store.readings(idPrefix: prefix, limit: 2).filter { $0.reading.id.hex.hasPrefix(readingID.lowercased()) }
            guard let match = matches.first else { throw invalid("no reading with id \(readingID) in \(store.path)") }
            guard matches.count == 1 else { throw invalid("id prefix \(readingID) is ambiguous; give more digits") }
            guard let proof = try store.proof(for: match.reading.id) else { throw invalid("reading \(readingID) vanished while being read") }
            var anchored: AnchoredProof? = nil
            var trust = AnchorTrust.none("the data directory has no genesis.json")
            if let node = try anchorObserver(data, store: store) {
                anchored = try await node.anchored(proof)
                trust = .chain(node)
            }
            try await report(proof, owner: pinned ?? store.owner, pinned: true, anchored: anchored, trust: trust)
        } catch let e as ExitCode {
            throw e
        } catch {
            throw invalid("\(error)")
        }
    }
}

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify the whole chain: SQLite integrity, every block and every reading's signature.",
        discussion: "Exit status 0 when everything verifies, 1 with the first problem otherwise. Safe while the node runs."
    )

    @OptionGroup var data: DataDirOption

    func run() throws {
        let store = try openReadOnly(data)
        var last = Date()
        do {
            try store.verifyAll { done, total in
                if Date().timeIntervalSince(last) > 1 {
                    last = Date()
                    FileHandle.standardError.write(Data("checked \(done)/\(total) blocks\n".utf8))
                }
            }
            let counts = try store.counts()
            print("ok: \(counts.blocks) block(s) and \(counts.readings) reading(s) verify (\(counts.pending) pending)")
        } catch {
            print("broken: \(error)")
            throw ExitCode(1)
        }
    }
}
