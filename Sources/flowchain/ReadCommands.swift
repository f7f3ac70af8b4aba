import ArgumentParser
import FlowchainCrypto
import FlowchainNode
import Foundation
import Ledger

/// Opens a node's ledger read-only; safe while the node runs (SQLite WAL readers never block it).
func openReadOnly(_ data: DataDirOption) throws -> LedgerStore {
    let dir = DataDirectory(data.dataDir)
    do {
        return try LedgerStore(path: dir.ledgerPath, owner: nil, readOnly: true, tailCheck: 0)
    } catch {
        throw failure("\(error)")
    }
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

struct ReadingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "readings",
        abstract: "List a device's readings in a time range, oldest first.",
        discussion: "Times are ms since the epoch, ISO 8601 (2026-11-25T15:00:00Z) or relative (-10m, -2h, -1d)."
    )

    @OptionGroup var data: DataDirOption
    @Option(help: "The device id.") var device: String
    @Option(parsing: .unconditional, help: "Earliest time (inclusive).") var from: String?
    @Option(parsing: .unconditional, help: "Latest time (inclusive).") var to: String?
    @Option(help: "Most readings to print.") var limit = 1000
    @Flag(help: "Print JSON instead of a table.") var json = false

    func validate() throws {
        if let why = DeviceID.problem(with: device) { throw ValidationError("--device: \(why)") }
        guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        let fromMs = try from.map { try parseTime($0, option: "--from") } ?? .min
        let toMs = try to.map { try parseTime($0, option: "--to") } ?? .max
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

struct BlocksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blocks",
        abstract: "List the newest segment blocks."
    )

    @OptionGroup var data: DataDirOption
    @Option(help: "How many blocks to list.") var limit = 20
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() throws {
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

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Prove that a reading is in a signed block of this node's chain.",
        discussion: """
            Checks the reading's signature, its Merkle path to the block's root, and the block's \
            signature by the node that owns the data directory. Exit status 0 and `valid: …` when \
            all hold; 1 and `invalid: <reason>` otherwise. The id may be shortened to a unique \
            prefix of at least 8 hex digits.
            """
    )

    @OptionGroup var data: DataDirOption
    @Argument(help: "The reading id (hex).") var readingID: String

    func run() throws {
        guard readingID.count >= 8, readingID.count <= 64, let prefix = Hex.decode(readingID.count % 2 == 0 ? readingID : String(readingID.dropLast())) else {
            print("invalid: '\(readingID)' is not a reading id (8 to 64 hex digits)")
            throw ExitCode(1)
        }
        let store = try openReadOnly(data)
        do {
            let matches = try store.readings(idPrefix: prefix, limit: 2).filter { $0.reading.id.hex.hasPrefix(readingID.lowercased()) }
            guard let match = matches.first else {
                print("invalid: no reading with id \(readingID) in \(store.path)")
                throw ExitCode(1)
            }
            guard matches.count == 1 else {
                print("invalid: id prefix \(readingID) is ambiguous; give more digits")
                throw ExitCode(1)
            }
            guard let proof = try store.proof(for: match.reading.id) else {
                print("invalid: reading \(readingID) vanished while being read")
                throw ExitCode(1)
            }
            switch proof.verify(owner: store.owner) {
            case let .valid(height):
                print("valid: reading \(proof.reading.id) (device \(proof.reading.device), seq \(proof.reading.seq)) is leaf \(proof.merkle?.index ?? 0) of block \(height), signed by \(proof.block?.owner.hex ?? "?")")
            case let .invalid(reason):
                print("invalid: \(reason)")
                throw ExitCode(1)
            }
        } catch let e as ExitCode {
            throw e
        } catch {
            print("invalid: \(error)")
            throw ExitCode(1)
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
