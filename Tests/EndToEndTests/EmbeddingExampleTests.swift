import FlowchainTesting
import Foundation
import Testing

/// docs/embedding.md's example is compiled with the package; here it runs, and the page shows it verbatim.
@Suite("Embedding example")
struct EmbeddingExampleTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func theExampleStoresSealsAndStopsCleanlyAndTheDocShowsItsCode() async throws {
        let binary = URL(fileURLWithPath: FlowchainProcess.flowchainBinary).deletingLastPathComponent().appendingPathComponent("embedding-example").path
        let dir = TemporaryDirectory("embedding")
        let run = try ChildProcess(executable: binary, [dir.file("data")], outputPath: dir.file("out.txt"))
        #expect(try await run.wait(timeout: .seconds(60)) == 0, "\(run.output)")
        #expect(run.output.components(separatedBy: "stored ").count == 6, "\(run.output)")
        #expect(run.output.contains("sealed block 0: 5 reading(s)") && run.output.contains("stopped: 5 readings on disk"), "\(run.output)")
        #expect(run.output.contains("node stopped cleanly"))
        // The ledger it leaves is an ordinary node's.
        let check = try await runFlowchain(["check", "--data-dir", dir.file("data")])
        #expect(check.status == 0 && check.stdout.hasPrefix("ok: 1 block(s) and 5 reading(s)"), "\(check.output)")

        let code = try String(contentsOf: Self.root.appendingPathComponent("docs/examples/embedding/main.swift"), encoding: .utf8)
        let page = try String(contentsOf: Self.root.appendingPathComponent("docs/embedding.md"), encoding: .utf8)
        #expect(page.contains(code), "docs/embedding.md shows the example's code as it is")
    }
}
