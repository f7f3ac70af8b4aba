import Ledger
import FlowchainClient
import FlowchainCrypto
import FlowchainTesting
import Foundation
import Logging
import NodeServer
import NIOCore
import WSClient
import Synchronization
import NIOWebSocket

/// A real `flowchain node` on a free loopback port, stopped by PID when released.
final class RunningNode: @unchecked Sendable {
    // @unchecked Sendable: immutable after init; the process handle is only signalled.
    let dir: TemporaryDirectory
    let process: FlowchainProcess
    let port: Int
    /// The address it listens on (a network namespace's, in the netns tests).
    var host = "127.0.0.1"
    /// wss for a node serving TLS.
    var scheme = "ws"
    var url: String { "\(scheme)://\(host):\(port)" }
    var dataDir: String { dir.file("data") }

    init(_ extra: [String] = [], label: String = "node", environment: [String: String]? = nil) async throws {
        dir = TemporaryDirectory(label)
        process = try FlowchainProcess(["node", "--data-dir", dir.file("data"), "--port", "0", "--block-interval", "200"] + extra,
                                       outputPath: dir.file("node.log"), environment: environment ?? [:])
        guard let port = try await process.waitForPort() else {
            throw NodeStartError(output: process.output)
        }
        self.port = port
    }

    /// A node process the test started itself (e.g. restarted on an existing data directory).
    init(adopting process: FlowchainProcess, port: Int, dir: TemporaryDirectory, host: String = "127.0.0.1") {
        self.dir = dir
        self.process = process
        self.port = port
        self.host = host
    }

    struct NodeStartError: Error, CustomStringConvertible {
        let output: String
        var description: String { "the node did not start listening:\n\(output.suffix(3000))" }
    }

    func stop() async throws -> Int32 {
        process.signal(SIGTERM)
        return try await process.wait(timeout: .seconds(30))
    }
}

/// Opens a WebSocket, runs `body` with a simple text-frame API, and closes it.
func withWebSocket<T: Sendable>(_ url: String, maxFrame: Int = 1 << 20, _ body: @escaping @Sendable (WSProbe) async throws -> T) async throws -> T {
    let box = ResultBox<T>()
    try await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: maxFrame), logger: Logger(label: "test-ws")) { inbound, outbound, _ in
        let probe = WSProbe(outbound: outbound)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await message in inbound.messages(maxSize: 1 << 24) {
                        if case let .text(t) = message { probe.continuation.yield(t) }
                    }
                } catch {}
                probe.continuation.finish()
            }
            do { box.set(.success(try await body(probe))) } catch { box.set(.failure(error)) }
            try? await outbound.close(.normalClosure, reason: nil)
            group.cancelAll()
        }
    }
    return try box.get()
}

final class WSProbe: Sendable {
    let outbound: WebSocketOutboundWriter
    let messages: AsyncStream<String>
    let continuation: AsyncStream<String>.Continuation

    init(outbound: WebSocketOutboundWriter) {
        self.outbound = outbound
        (messages, continuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
    }

    func send(_ text: String) async throws { try await outbound.write(.text(text)) }
    func sendBinary(_ bytes: [UInt8]) async throws { try await outbound.write(.binary(ByteBuffer(bytes: bytes))) }

    /// The next `n` text messages, parsed as JSON objects; fewer if the connection ends or `timeout` passes.
    func next(_ n: Int = 1, timeout: Duration = .seconds(15)) async -> [JSONValue] {
        let stream = messages
        let collected = await withTaskGroup(of: [String]?.self) { group in
            group.addTask {
                var out: [String] = []
                for await m in stream {
                    out.append(m)
                    if out.count == n { break }
                }
                return out
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? []
        }
        return collected.compactMap { try? JSONValue(parsing: Array($0.utf8)) }.filter { $0.objectValue != nil }
    }
}

final class ResultBox<T: Sendable>: Sendable {
    private let result = Mutex<Result<T, any Error>?>(nil)
    func set(_ r: Result<T, any Error>) { result.withLock { $0 = r } }
    func get() throws -> T {
        guard let r = result.withLock({ $0 }) else { throw RPCConnection.ClientError.closed }
        return try r.get()
    }
}
