public import Foundation

/// A child process this process started: output captured to a file, watched through `/proc`,
/// stopped by its PID and never left behind (SIGKILL on release if it is still running).
/// The one launcher of the tests (`FlowchainProcess`) and of `flowchain bench`.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked Sendable: every stored property is immutable; Foundation's Process is safe to
    // signal and poll from any thread, which is all that is done with it after `run()`.
    public let process: Process
    public let outputPath: String

    /// Starts `executable` with `arguments`; stdout and stderr both go to `outputPath`.
    public init(executable: String, _ arguments: [String], outputPath: String, environment: [String: String] = [:]) throws {
        self.outputPath = outputPath
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        out.seekToEndOfFile()
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = out
        process.standardError = out
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }
    public var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Waits until the output contains `text`; false after `timeout` or if the process exits first.
    public func waitForOutput(_ text: String, timeout: Duration = .seconds(60)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if output.contains(text) { return true }
            if !process.isRunning { return output.contains(text) }
            try await Task.sleep(for: .milliseconds(25))
        }
        return false
    }

    /// Waits until the process listens on a TCP port (read from `/proc`, whatever it logs) and
    /// returns it; nil after `timeout` or if the process exits first.
    public func waitForListeningPort(timeout: Duration = .seconds(60)) async throws -> Int? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, process.isRunning {
            if let port = listeningPort() { return port }
            try await Task.sleep(for: .milliseconds(25))
        }
        return nil
    }

    public func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for exit and returns the status; sends SIGKILL after `timeout`.
    @discardableResult
    public func wait(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { signal(SIGKILL) }
            try await Task.sleep(for: .milliseconds(10))
        }
        return process.terminationStatus
    }

    /// SIGTERM, then waits for exit (SIGKILL after `timeout`); the exit status.
    @discardableResult
    public func stop(timeout: Duration = .seconds(30)) async throws -> Int32 {
        signal(SIGTERM)
        return try await wait(timeout: timeout)
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

extension ChildProcess {
    /// The TCP port the process listens on, from its socket inodes and `/proc/net/tcp{,6}`.
    public func listeningPort() -> Int? {
        let pid = process.processIdentifier
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { return nil }
        var inodes = Set<String>()
        for fd in fds {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"), target.hasPrefix("socket:[") {
                inodes.insert(String(target.dropFirst(8).dropLast()))
            }
        }
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let cols = line.split(separator: " ")
                // state 0A = LISTEN
                if cols.count > 9, cols[3] == "0A", inodes.contains(String(cols[9])) {
                    return Int(cols[1].split(separator: ":").last ?? "", radix: 16)
                }
            }
        }
        return nil
    }

    /// A memory figure from /proc/PID/status in MB: `VmRSS:` (all resident pages, shared
    /// libraries included) or `RssAnon:` (the process's own private memory).
    public func rssMB(field: String = "VmRSS:") -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return .nan }
        return kb / 1024
    }

    /// User + system CPU seconds of the process so far, from /proc/PID/stat.
    public func cpuSeconds() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return .nan }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command name: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
        guard fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) else { return .nan }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
