import Foundation

/// A process's memory the way operators read it (bytes):
/// - `resident` (RSS): every page in RAM, shared library pages included;
/// - `proportional` (PSS): shared pages divided among the processes sharing them;
/// - `unique` (USS): pages only this process has (private clean + private dirty): what stopping
///   it would give back;
/// - `anonymous` (`RssAnon`): its heap and stacks.
/// From `/proc/PID/smaps_rollup` and `/proc/PID/status`.
public struct ProcessMemory: Sendable, Equatable {
    public let resident: Int
    public let proportional: Int
    public let unique: Int
    public let anonymous: Int

    public static func read(pid: String = "self") -> ProcessMemory? {
        guard let rollup = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8),
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        // `smaps_rollup` pads its figures with spaces, `status` with a tab and spaces.
        func kB(_ text: String, _ field: String) -> Int? {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
                  let n = Int(line.dropFirst(field.count).split(whereSeparator: \.isWhitespace).first ?? "") else { return nil }
            return n * 1024
        }
        guard let rss = kB(rollup, "Rss:"), let pss = kB(rollup, "Pss:"), let clean = kB(rollup, "Private_Clean:"),
              let dirty = kB(rollup, "Private_Dirty:") else { return nil }
        return ProcessMemory(resident: rss, proportional: pss, unique: clean + dirty, anonymous: kB(status, "RssAnon:") ?? 0)
    }
}

extension ChildProcess {
    /// The child's memory now (nil once it has exited).
    public func memory() -> ProcessMemory? { ProcessMemory.read(pid: String(pid)) }
}
