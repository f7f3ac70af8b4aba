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

    /// Starts `flowchain <arguments>`; stdout and stderr both go to `outputPath`.
    public convenience init(_ arguments: [String], outputPath: String, environment: [String: String] = [:]) throws {
        try self.init(executable: Self.flowchainBinary, arguments, outputPath: outputPath, environment: environment)
    }

    /// Waits for the node's "listening on http://HOST:PORT" line and returns the port.
    public func waitForPort(timeout: Duration = .seconds(60)) async throws -> Int? {
        guard try await waitForOutput("listening on http", timeout: timeout) else { return nil }
        guard let range = output.range(of: #"listening on https?://[^:\s]+:(\d+)"#, options: .regularExpression) else { return nil }
        return Int(output[range].split(separator: ":").last ?? "")
    }
}

/// Runs `flowchain <arguments>` to completion and returns its exit status and combined output.
public func runFlowchain(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> (status: Int32, output: String) {
    let dir = TemporaryDirectory("flowchain-run")
    let p = try FlowchainProcess(arguments, outputPath: dir.file("out.txt"))
    let status = try await p.wait(timeout: timeout)
    return (status, p.output)
}
