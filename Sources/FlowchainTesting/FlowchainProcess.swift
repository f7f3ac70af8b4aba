import Foundation

/// A real `flowchain` process started by a test, with its output captured to files.
/// Stopped by PID (SIGKILL on release if still running), never left behind.
public final class FlowchainProcess: @unchecked Sendable {
    // @unchecked Sendable: `process` is only signalled and waited on; Foundation's Process is thread-safe for that.
    public let process: Process
    public let outputPath: String

    /// The `flowchain` binary: $FLOWCHAIN_BIN, else the one built beside the test bundle.
    public static var binary: String {
        if let env = ProcessInfo.processInfo.environment["FLOWCHAIN_BIN"] { return env }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowchain").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/flowchain").path
    }

    /// Starts `flowchain <arguments>`; stdout and stderr both go to `outputPath`.
    public init(_ arguments: [String], outputPath: String, environment: [String: String] = [:]) throws {
        self.outputPath = outputPath
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        out.seekToEndOfFile()
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
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

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// Runs `flowchain <arguments>` to completion and returns its exit status and combined output.
public func runFlowchain(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> (status: Int32, output: String) {
    let dir = TemporaryDirectory("flowchain-run")
    let p = try FlowchainProcess(arguments, outputPath: dir.file("out.txt"))
    let status = try await p.wait(timeout: timeout)
    return (status, p.output)
}

extension FlowchainProcess {
    /// Waits for the node's "listening on http://HOST:PORT" line and returns the port.
    public func waitForPort(timeout: Duration = .seconds(60)) async throws -> Int? {
        guard try await waitForOutput("listening on http://", timeout: timeout) else { return nil }
        guard let range = output.range(of: #"listening on http://[^:\s]+:(\d+)"#, options: .regularExpression) else { return nil }
        return Int(output[range].split(separator: ":").last ?? "")
    }
}
