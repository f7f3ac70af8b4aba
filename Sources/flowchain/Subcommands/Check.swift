import ArgumentParser
import Foundation
import Ledger

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify the whole chain: SQLite integrity, every block and every reading's signature (and an archive).",
        discussion: "Exit status 0 when everything verifies, 1 with the first problem otherwise. Safe while the node runs."
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
    }
}
