import FlowchainTesting
import Foundation
import Testing

/// Clients that are not ours: Python `websockets` against the device endpoints and `/rpc`, and a
/// real headless Chromium against the dashboard.
@Suite("Independent clients", .serialized)
struct ExternalClientTests {
    static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Python")
    static let artifacts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("test-artifacts")

    /// Runs `python3 script args…`; returns its exit status and output.
    static func python(_ script: String, _ args: [String], timeout: Duration = .seconds(120)) async throws -> (Int32, String) {
        let dir = TemporaryDirectory("python")
        let out = dir.file("out.txt")
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", scripts.appendingPathComponent(script).path] + args
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        let deadline = ContinuousClock.now + timeout
        while p.isRunning {
            if ContinuousClock.now > deadline { kill(p.processIdentifier, SIGKILL) }
            try await Task.sleep(for: .milliseconds(50))
        }
        return (p.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    @Test func pythonWebsocketsClientSpeaksToDevicesAndRPCAndVerifiesAProof() async throws {
        let node = try await RunningNode()
        let (status, output) = try await Self.python("independent_client.py", [node.url])
        #expect(status == 0, "\(output)")
        #expect(output.contains("independent client: all checks passed"))
        #expect(try await node.stop() == 0)
    }

    @Test func theDashboardShowsLiveDataInHeadlessChromium() async throws {
        let node = try await RunningNode(["--demo", "--demo-rate", "4", "--block-interval", "500"])
        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        let shot = Self.artifacts.appendingPathComponent("dashboard.png").path
        try? FileManager.default.removeItem(atPath: shot)
        let (status, output) = try await Self.python("dashboard_check.py", ["http://127.0.0.1:\(node.port)/", shot])
        #expect(status == 0, "\(output)")
        #expect(output.contains("dashboard shows live data"))
        let size = (try? FileManager.default.attributesOfItem(atPath: shot)[.size] as? Int) ?? 0
        #expect(size > 10_000, "screenshot \(shot) is \(size) bytes")
        #expect(try await node.stop() == 0)
    }
}
