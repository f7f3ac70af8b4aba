import Foundation
import Logging

/// Log lines for systemd's journal: when the node's stderr is the journal (systemd sets
/// `JOURNAL_STREAM`), each line starts with its syslog priority (`<3>` error … `<7>` debug), which
/// journald turns into the entry's priority (`journalctl -p warning` works), and carries no time
/// stamp of its own (the journal keeps one).
struct JournalLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    /// Whether stderr is connected to the journal: `JOURNAL_STREAM` names its device and inode.
    static var stderrIsJournal: Bool {
        guard let stream = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] else { return false }
        let parts = stream.split(separator: ":")
        var st = stat()
        guard parts.count == 2, fstat(2, &st) == 0 else { return false }
        return UInt64(parts[0]) == UInt64(st.st_dev) && UInt64(parts[1]) == UInt64(st.st_ino)
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .critical: 2
        case .error: 3
        case .warning: 4
        case .notice: 5
        case .info: 6
        case .debug, .trace: 7
        }
    }

    func log(event: LogEvent) {
        var all = metadata.merging(event.metadata ?? [:]) { $1 }
        if let error = event.error { all["error"] = "\(error)" }
        let fields = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        // One write per line, so lines from several threads never interleave.
        let text = "<\(Self.priority(event.level))>[\(event.source)] \(event.message)\(fields)\n".replacingOccurrences(of: "\n", with: " ", options: [], range: nil).dropLast() + "\n"
        FileHandle.standardError.write(Data(text.utf8))
    }
}
