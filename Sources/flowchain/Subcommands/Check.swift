import ArgumentParser
import Consensus
import Foundation
import FlowchainCrypto
import FlowchainNode
import Ledger
import PeerNetwork

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify the whole chain: SQLite integrity, every block and every reading's signature (and an archive).",
        discussion: """
            Also replays the anchor chain from the genesis (every stored anchor block against every \
            rule; the segment heads they commit must match this ledger's blocks, so a rewritten or \
            truncated chain is found) and verifies the copies a node in a ring keeps of other nodes' chains \
            (<data-dir>/replicas/<owner key>.sqlite), each against its owner's key. Exit status 0 \
            when everything verifies, 1 with the first problem of the ledger or of any copy \
            otherwise. Safe while the node runs.
            """
    )

    @OptionGroup var data: DataDirOption
    @Option(help: ArgumentHelp("Also verify an archive (flowchain export; '-' reads standard input) against the ledger's block headers.", valueName: "file"))
    var archive: String?

    func run() throws {
        let store = try LocalLedger(data).store
        var last = Date()
        do {
            if let archive {
                let (readings, blocks) = try Self.verifyArchive(archive, store: store)
                print("ok: the archive's \(readings) reading(s) in \(blocks) block(s) verify against the ledger's block headers")
            }
            try store.verifyAll { done, total in
                if Date().timeIntervalSince(last) > 1 {
                    last = Date()
                    FileHandle.standardError.write(Data("checked \(done)/\(total) blocks\n".utf8))
                }
            }
            let counts = try store.counts()
            let pruned = try store.prunedBelow()
            let note = pruned > 0 ? "; blocks below \(pruned) are pruned: their headers verify, their readings' ids are kept" : ""
            print("ok: \(counts.blocks) block(s) and \(counts.readings) reading(s) verify (\(counts.pending) pending)\(note)")
        } catch {
            print("broken: \(error)")
            throw ExitCode(1)
        }
        if !checkAnchorChain(store) { throw ExitCode(1) }
        if !Self.checkCopies(ReplicaStores(directory: DataDirectory(data.dataDir).replicasPath)) { throw ExitCode(1) }
    }

    /// Replays the whole stored anchor chain from the data directory's genesis (when it has one)
    /// and compares the segment heads it commits with the ledger; prints a line, returns whether it verifies.
    func checkAnchorChain(_ store: LedgerStore) -> Bool {
        let path = (data.dataDir as NSString).appendingPathComponent("genesis.json")
        guard FileManager.default.fileExists(atPath: path) else { return true }
        var last = Date()
        do {
            let genesis = try Genesis.load(path)
            let s = try AnchorAudit.verify(genesis: genesis, store: store, owner: store.owner, now: Int64(Date().timeIntervalSince1970)) { done, top in
                if Date().timeIntervalSince(last) > 1 {
                    last = Date()
                    FileHandle.standardError.write(Data("checked anchor heights \(done)/\(top)\n".utf8))
                }
            }
            let forks = s.stale > 0 ? "; \(s.stale) on branches below the final height, ignored" : ""
            print("ok: anchor chain: \(s.blocks) block(s) verify from the genesis (tip \(s.tipHeight), final \(s.finalHeight))\(forks); the \(s.headsChecked) segment head(s) of this node they commit match the ledger")
            return true
        } catch let e as AnchorStoreError {
            print("broken: anchor chain: anchor block at height \(e.height): \(e.reason)")
        } catch {
            print("broken: anchor chain: \(error)")
        }
        return false
    }

    /// Verifies every copy of another node's chain the data directory keeps, each against the
    /// owner key its file is named after; prints a line per copy and returns whether all verify.
    static func checkCopies(_ copies: ReplicaStores) -> Bool {
        var allGood = true
        for owner in copies.owners().sorted(by: { $0.hex < $1.hex }) {
            let label = "copy of \(owner.hex.prefix(12))"
            do {
                let store = try LedgerStore(path: copies.path(for: owner), owner: owner, readOnly: true)
                defer { try? store.close() }
                try store.verifyAll()
                let counts = try store.counts()
                let pruned = try store.prunedBelow()
                print("ok: \(label): \(counts.blocks) block(s) and \(counts.readings) reading(s) verify\(pruned > 0 ? "; blocks below \(pruned) are pruned, as its owner pruned them" : "")")
            } catch {
                print("broken: \(label): \(error)")
                allGood = false
            }
        }
        return allGood
    }
}
