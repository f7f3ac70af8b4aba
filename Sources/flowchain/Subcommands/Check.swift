import ArgumentParser
import Foundation
import Ledger

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify the whole chain: SQLite integrity, every block and every reading's signature.",
        discussion: "Exit status 0 when everything verifies, 1 with the first problem otherwise. Safe while the node runs."
    )

    @OptionGroup var data: DataDirOption

    func run() throws {
        let store = try LocalLedger(data).store
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
