import ArgumentParser
import Foundation

@main
struct Flowchain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowchain",
        abstract: "An edge ledger for IoT sensor readings: signed readings in hash-linked, provable blocks.",
        discussion: """
            Start with `flowchain node --demo`: it creates a node key and a ledger under \
            ./flowchain-data and feeds synthetic readings so you can watch blocks being sealed. \
            The read commands (readings, blocks, verify, check) work while the node runs.
            """,
        subcommands: [
            NodeCommand.self, KeygenCommand.self, SendCommand.self, TailCommand.self, ReadingsCommand.self,
            BlocksCommand.self, VerifyCommand.self, ProofCommand.self, CheckCommand.self, DevicesCommand.self, GenesisCommand.self,
            SimCommand.self, BenchCommand.self,
        ]
    )
}

/// The `--data-dir` option every command that touches a node's files shares.
struct DataDirOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The node's data directory (key and ledger).", valueName: "dir"))
    var dataDir: String = "./flowchain-data"
}

/// Prints `message` to standard error as `flowchain: error: …` and returns exit code 1.
func failure(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("flowchain: error: \(message)\n".utf8))
    return ExitCode(1)
}

/// Parses a time given as ms since the epoch, ISO 8601 (`2026-11-25T15:00:00Z`) or relative to now
/// (`-10m`, `-2h`, `-1d`, `-30s`).
func parseTime(_ text: String, option: String) throws -> Int64 {
    if let ms = Int64(text) { return ms }
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    if text.hasPrefix("-"), let unit = text.last, let n = Int64(text.dropFirst().dropLast()) {
        let scale: Int64? = switch unit {
        case "s": 1000
        case "m": 60_000
        case "h": 3_600_000
        case "d": 86_400_000
        default: nil
        }
        if let scale { return now - n * scale }
    }
    let iso = ISO8601DateFormatter()
    for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
        iso.formatOptions = options
        if let d = iso.date(from: text) { return Int64(d.timeIntervalSince1970 * 1000) }
    }
    throw ValidationError("\(option) '\(text)' is not a time: use ms since the epoch, ISO 8601 (2026-11-25T15:00:00Z) or a relative time like -10m, -2h, -1d")
}

func isoTime(_ ms: Int64) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

/// Pretty, key-sorted JSON for `--json` output.
func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}
