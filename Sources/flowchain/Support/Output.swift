import ArgumentParser
import FlowchainWire
import Foundation
import Ledger
import FlowchainCrypto

/// Prints `message` to standard error as `flowchain: error: …` and returns exit code 1.
func failure(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("flowchain: error: \(message)\n".utf8))
    return ExitCode(1)
}

/// Writes a line to standard output at once (unbuffered), so a pipe sees it as it happens.
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Parses a time given as ms since the epoch, ISO 8601 (`2026-11-25T15:00:00Z`) or relative to now
/// (`-10m`, `-2h`, `-1d`, `-30s`).
func parseTime(_ text: String, option: String) throws -> Int64 {
    if let ms = Int64(text) { return ms }
    let now = nowMillis()
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

func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

func isoTime(_ ms: Int64) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

/// Pretty, key-sorted JSON for the reports of `bench` and `sim`.
func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}

/// Compact JSON written with `JSONWriter`, as one line.
func jsonLine(_ body: (inout JSONWriter) -> Void) -> String {
    var w = JSONWriter()
    body(&w)
    return w.text
}

private func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }

/// The text listing of readings, the same for every source.
enum ReadingTable {
    static let header = "TIME                       SEQ     BLOCK   ID                PAYLOAD"

    static func row(_ r: ReadingRecord, device: Bool = false) -> String {
        let block = r.block.map(String.init) ?? "pending"
        let who = device ? "\(r.device)  " : ""
        return "\(pad(isoTime(r.time), 26)) \(pad(String(r.seq), 7)) \(pad(block, 7)) \(r.id.hex.prefix(16))  \(who)\(r.payload.jsonText)"
    }
}

/// The text listing of blocks, the same for every source.
enum BlockTable {
    static let header = "HEIGHT  TIME                       READINGS  HASH              PREV"

    static func row(_ b: BlockHeader) -> String {
        "\(pad(String(b.height), 7)) \(pad(isoTime(b.time), 26)) \(pad(String(b.count), 9)) \(b.hash.hex.prefix(16))  \(b.prev.hex.prefix(16))"
    }
}
