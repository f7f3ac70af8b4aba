public import Foundation
import Synchronization

/// A child process this process started: output captured to a file, watched through `/proc`,
/// stopped by its PID and never left behind (SIGKILL on release if it is still running).
/// The one launcher of the tests (`FlowchainProcess`) and of `flowchain bench`.
///
/// Spawned with `posix_spawn` and a clean signal mask: a test runner blocks SIGTERM and SIGINT in
/// its threads, and a child started with `Foundation.Process` inherits that mask, so it would never
/// see the SIGTERM a test sends to stop it gracefully.
public final class ChildProcess: Sendable {
    public let pid: Int32
    public let outputPath: String
    /// Where stderr goes when not to `outputPath`.
    public let errorPath: String?
    /// The exit status once reaped (`waitpid`); nil while running.
    private let exit = Mutex<Int32?>(nil)

    /// Starts `executable` with `arguments`; stdout goes to `outputPath` (appended), and so does
    /// stderr unless `errorPath` is given.
    public init(executable: String, _ arguments: [String], outputPath: String, errorPath: String? = nil, environment: [String: String] = [:]) throws {
        self.outputPath = outputPath
        self.errorPath = errorPath
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let errorPath {
            posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
        let argv = [executable] + arguments
        var pid: pid_t = 0
        let code = withCStrings(argv) { argvp in
            withCStrings(env) { envp in posix_spawn(&pid, executable, &actions, &attributes, argvp, envp) }
        }
        guard code == 0 else { throw SpawnError(executable: executable, code: code) }
        self.pid = pid
    }

    public struct SpawnError: Error, CustomStringConvertible {
        public let executable: String
        public let code: Int32
        public var description: String { "cannot start \(executable): \(String(cString: strerror(code)))" }
    }

    /// Whether the process is still running (reaps it when it has exited).
    public var isRunning: Bool { reap(blocking: false) == nil }

    /// The exit status (128 + signal when killed by one); blocks until the process exits.
    public func waitUntilExit() -> Int32 { reap(blocking: true) ?? -1 }

    private func reap(blocking: Bool) -> Int32? {
        exit.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            let r = waitpid(pid, &raw, blocking ? 0 : WNOHANG)
            if r < 0 && errno == ECHILD {
                // Reaped by someone else (Foundation's Process reaps children it did not start):
                // /proc says whether it still runs; its exit status is lost.
                if !blocking, Self.alive(pid) { return nil }
                while blocking, Self.alive(pid) { usleep(10_000) }
                status = -1
                return status
            }
            guard r == pid else { return r < 0 ? -1 : nil }
            let low = raw & 0x7f
            status = low == 0 ? (raw >> 8) & 0xff : 128 + low
            return status
        }
    }

    /// Blocks until the process has exited without reaping it (`waitid` with `WNOWAIT`), so what
    /// `/proc/PID` says of it (its I/O counters, say) can still be read; true when it exited.
    public func waitForExitUnreaped() -> Bool {
        guard exit.withLock({ $0 == nil }) else { return false }
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 {
            if errno != EINTR { return false }
        }
        return true
    }

    /// Whether `pid` exists and is not a zombie.
    static func alive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    public var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Waits until the output contains `text`; false after `timeout` or if the process exits first.
    public func waitForOutput(_ text: String, timeout: Duration = .seconds(60)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if output.contains(text) { return true }
            if !isRunning { return output.contains(text) }
            try await Task.sleep(for: .milliseconds(25))
        }
        // A waiter woken late (its threads busy) looks once more before it gives up.
        return output.contains(text)
    }

    /// Waits until the process listens on a TCP port (read from `/proc`, whatever it logs) and
    /// returns it; nil after `timeout` or if the process exits first.
    public func waitForListeningPort(timeout: Duration = .seconds(60)) async throws -> Int? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, isRunning {
            if let port = listeningPort() { return port }
            try await Task.sleep(for: .milliseconds(25))
        }
        return listeningPort()
    }

    public func signal(_ sig: Int32) {
        if isRunning { kill(pid, sig) }
    }

    /// Waits for exit and returns the status; sends SIGKILL after `timeout`.
    @discardableResult
    public func wait(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while isRunning {
            if ContinuousClock.now >= deadline { kill(pid, SIGKILL) }
            try await Task.sleep(for: .milliseconds(10))
        }
        return waitUntilExit()
    }

    /// SIGTERM, then waits for exit (SIGKILL after `timeout`); the exit status.
    @discardableResult
    public func stop(timeout: Duration = .seconds(30)) async throws -> Int32 {
        signal(SIGTERM)
        return try await wait(timeout: timeout)
    }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            _ = waitUntilExit()
        }
    }
}

/// Calls `body` with a NULL-terminated C array of `strings`.
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    var pointers = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for p in pointers { free(p) } }
    return body(pointers)
}

extension ChildProcess {
    /// The TCP port the process listens on, from its socket inodes and `/proc/net/tcp{,6}`.
    public func listeningPort() -> Int? {
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
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return .nan }
        return kb / 1024
    }

    /// User + system CPU seconds of the process so far, from /proc/PID/stat.
    public func cpuSeconds() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return .nan }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command name: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
        guard fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) else { return .nan }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
