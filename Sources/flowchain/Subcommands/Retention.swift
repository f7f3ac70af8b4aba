import ArgumentParser
import FlowchainCrypto
import FlowchainNode
import Foundation
import Ledger
import LedgerModel
import PeerNetwork

struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Apply a retention policy to a ledger now: drop old readings' payloads and shrink the file.",
        discussion: """
            Readings sealed in blocks older than --max-age, and the oldest readings while the file is \
            larger than --max-size, lose their payloads. Their ids, the block each was sealed in and \
            every block header stay: `flowchain check` still verifies the whole chain, proofs of the \
            kept readings still verify, and asking for a pruned reading says it was pruned. The newest \
            \(LedgerStore.unprunableTail) blocks and the pending readings are never pruned. The file \
            shrinks (incremental vacuum; a ledger that never pruned before is rewritten once). \
            The copies a node in a ring keeps of other nodes' chains (<data-dir>/replicas) are each \
            held to the same limits. Archive first with `flowchain export` to keep the payloads \
            elsewhere. A running node applies the same policy itself, to its ledger and its copies, \
            with --retain-age / --retain-size (or `retention:`). Exit status 1 when a file is still \
            over --max-size.
            """
    )

    @OptionGroup var data: DataDirOption
    @Option(help: ArgumentHelp("Prune blocks sealed longer ago than this (30d, 12h, 90m).", valueName: "age")) var maxAge: String?
    @Option(help: ArgumentHelp("Prune the oldest blocks until the file is at most this large (2GB, 500MB, 1GiB).", valueName: "size")) var maxSize: String?

    func run() async throws {
        guard maxAge != nil || maxSize != nil else { throw ValidationError("give --max-age, --max-size or both") }
        let policy = try NodeCommand.retention(age: maxAge, size: maxSize)
        let dir = DataDirectory(data.dataDir)
        guard FileManager.default.fileExists(atPath: dir.ledgerPath) else { throw failure("no ledger at \(dir.ledgerPath)") }
        LedgerStore.requestPublish(path: dir.ledgerPath)
        var overLimit = try await Self.apply(policy, to: try LedgerStore(path: dir.ledgerPath, owner: nil, tailCheck: 0), name: nil)
        let copies = ReplicaStores(directory: dir.replicasPath)
        for owner in copies.owners().sorted(by: { $0.hex < $1.hex }) {
            guard let store = try copies.store(for: owner, create: false) else { continue }
            overLimit = try await Self.apply(policy, to: store, name: "copy of \(owner.hex.prefix(12))") || overLimit
        }
        if overLimit { throw ExitCode(1) }
    }

    /// Applies `policy` to one file and says what it did; returns whether the file is still over the size limit.
    static func apply(_ policy: RetentionPolicy, to store: LedgerStore, name: String?) async throws -> Bool {
        let report = try await policy.apply(to: store, now: Int64(Date().timeIntervalSince1970 * 1000))
        let free = try store.freePages(), used = try store.usedBytes()
        try store.close()
        let prefix = name.map { "\($0): " } ?? ""
        if report.convertedToIncrementalVacuum { FileHandle.standardError.write(Data("\(prefix)the file was rewritten once (VACUUM) so pruned space can be given back\n".utf8)) }
        print("\(prefix)pruned \(report.readings) reading(s) in \(report.blocks) block(s); blocks below \(report.prunedBelow) are pruned; file \(report.bytesBefore) → \(report.bytesAfter) bytes")
        if free > 0 {
            print("\(prefix)\(report.bytesAfter - used) bytes of it (\(free) free pages) are kept for new readings rather than given back (docs/ledger.md, Retention)")
        }
        if let max = policy.maxBytes, report.bytesAfter > max {
            print("\(prefix)the file is still over \(max) bytes: only the newest \(LedgerStore.unprunableTail) blocks, pending readings, pruned ids and the anchor chain are left")
            return true
        }
        return false
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the readings of old blocks as JSON lines (an archive to keep before pruning).",
        discussion: """
            One line per reading, in block and leaf order: {"block":H,"leaf":I,"id":…,"encoded":"<hex>"} \
            (the signed binary encoding, exactly as hashed into the block's Merkle root). Compress it as \
            you like (`| zstd > archive.jsonl.zst`). `flowchain check --archive FILE` later verifies an \
            archive against the block headers the ledger keeps, after the payloads were pruned.
            """
    )

    @OptionGroup var data: DataDirOption
    @Option(help: ArgumentHelp("Export blocks sealed longer ago than this (30d, 12h).", valueName: "age")) var olderThan: String?
    @Option(help: ArgumentHelp("Export blocks below this height.", valueName: "height")) var belowBlock: UInt64?

    func run() throws {
        let store = try LocalLedger(data).store
        var below: UInt64
        if let belowBlock {
            below = belowBlock
        } else if let olderThan {
            guard let ms = RetentionPolicy.parseAge(olderThan) else { throw ValidationError("'\(olderThan)' is not an age (30d, 12h, 90m)") }
            below = try store.firstBlock(notOlderThan: Int64(Date().timeIntervalSince1970 * 1000) - ms)
        } else {
            throw ValidationError("give --older-than AGE or --below-block HEIGHT")
        }
        let pruned = try store.prunedBelow()
        if pruned > 0 { FileHandle.standardError.write(Data("blocks below \(pruned) are pruned already: exporting from block \(pruned)\n".utf8)) }
        below = min(below, (try store.tip()?.height).map { $0 + 1 } ?? 0)
        var count = 0
        let out = FileHandle.standardOutput
        if pruned < below {
            for h in pruned..<below {
                var lines = ""
                for (leaf, r) in try store.readings(inBlock: h).enumerated() {
                    lines += "{\"block\":\(h),\"leaf\":\(leaf),\"id\":\"\(r.id.hex)\",\"encoded\":\"\(Hex.encode(r.encoded))\"}\n"
                    count += 1
                }
                out.write(Data(lines.utf8))
            }
        }
        FileHandle.standardError.write(Data("exported \(count) reading(s) of blocks \(pruned)..<\(max(pruned, below))\n".utf8))
    }
}

extension CheckCommand {
    /// Verifies an archive (`flowchain export`) against the block headers of `store`: each block's
    /// readings, complete and in leaf order, hash to the header's Merkle root, and each is signed.
    static func verifyArchive(_ path: String, store: LedgerStore) throws -> (readings: Int, blocks: Int) {
        let text: String
        if path == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let t = try? String(contentsOfFile: path, encoding: .utf8) else { throw failure("cannot read archive \(path)") }
            text = t
        }
        var blocks: [UInt64: [(leaf: Int, reading: Reading)]] = [:]
        var lineNo = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            lineNo += 1
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let block = (object["block"] as? NSNumber)?.uint64Value, let leaf = (object["leaf"] as? NSNumber)?.intValue,
                  let hex = object["encoded"] as? String, let bytes = Hex.decode(hex) else {
                throw ArchiveProblem("line \(lineNo): not an archive line ({\"block\",\"leaf\",\"encoded\"})")
            }
            let reading: Reading
            do { reading = try Reading(encoded: bytes) } catch { throw ArchiveProblem("line \(lineNo): the reading does not decode: \(error)") }
            guard reading.hasValidSignature else { throw ArchiveProblem("line \(lineNo): reading \(reading.id) has an invalid signature") }
            blocks[block, default: []].append((leaf, reading))
        }
        for (height, items) in blocks.sorted(by: { $0.key < $1.key }) {
            guard let header = try store.block(height: height) else { throw ArchiveProblem("block \(height) is not in the ledger") }
            let sorted = items.sorted { $0.leaf < $1.leaf }
            guard sorted.map(\.leaf) == Array(0..<Int(header.count)) else {
                throw ArchiveProblem("block \(height): the archive has leaves \(sorted.count) of \(header.count), not each once")
            }
            guard MerkleTree.root(of: sorted.map { MerkleTree.leafHash($0.reading.encoded) }) == header.merkleRoot else {
                throw ArchiveProblem("block \(height): the archived readings do not hash to the block's Merkle root")
            }
        }
        return (lineNo, blocks.count)
    }

    struct ArchiveProblem: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }
}
