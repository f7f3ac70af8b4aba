@_exported import ProcessSupport
import Foundation

/// A real `flowchain` process started by a test (the package's one launcher, `ChildProcess`).
public typealias FlowchainProcess = ChildProcess

extension ChildProcess {
    /// The `flowchain` binary: $FLOWCHAIN_BIN, else the one built beside the test bundle.
    public static var flowchainBinary: String {
        if let env = ProcessInfo.processInfo.environment["FLOWCHAIN_BIN"] { return env }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowchain").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/flowchain").path
    }

    /// Starts `flowchain <arguments>`; stdout goes to `outputPath`, and so does stderr unless
    /// `errorPath` is given.
    public convenience init(_ arguments: [String], outputPath: String, errorPath: String? = nil, environment: [String: String] = [:]) throws {
        try self.init(executable: Self.flowchainBinary, arguments, outputPath: outputPath, errorPath: errorPath, environment: environment)
    }

    /// Waits for the node's "listening on http://HOST:PORT" line and returns the port.
    public func waitForPort(timeout: Duration = .seconds(60)) async throws -> Int? {
        guard try await waitForOutput("listening on http", timeout: timeout) else { return nil }
        guard let range = output.range(of: #"listening on https?://[^:\s]+:(\d+)"#, options: .regularExpression) else { return nil }
        return Int(output[range].split(separator: ":").last ?? "")
    }
}

/// What a `flowchain` command printed, and how it exited.
public struct CommandResult: Sendable {
    public let status: Int32
    /// What it wrote to stdout: the result a script reads.
    public let stdout: String
    /// What it wrote to stderr: errors, notes and progress.
    public let stderr: String
    /// Both, stdout first (for messages that may be on either).
    public var output: String { stdout + stderr }
}

/// Runs `flowchain <arguments>` to completion.
public func runFlowchain(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> CommandResult {
    let dir = TemporaryDirectory("flowchain-run")
    let p = try FlowchainProcess(arguments, outputPath: dir.file("out.txt"), errorPath: dir.file("err.txt"))
    let status = try await p.wait(timeout: timeout)
    let stderr = (try? String(contentsOfFile: dir.file("err.txt"), encoding: .utf8)) ?? ""
    return CommandResult(status: status, stdout: p.output, stderr: stderr)
}
