import FlowchainClient
import FlowchainCrypto
import ProcessSupport
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Ledger
import Logging
import NodeServer
import WSClient
import Synchronization
import NIOWebSocket

/// JSON-RPC submit over WebSocket into a real `flowchain node` process, beside in-process ingest
/// and a bare WebSocket echo on the same server stack, all in one run; plus the node's memory.
public enum RPCBench {
    public static func run(clients: Int = 8, inFlight: Int = 32, total: Int = 30_000, progress: (String) -> Void) async throws -> BenchReport {
        var report = BenchReport(scenario: "rpc")
        let key = try PrivateKey()
        let readings = LedgerBench.makeReadings(count: total * 2, devices: clients * inFlight, key: key)
        let viaRPC = Array(readings[..<total]), inProcess = Array(readings[total...])

        progress("reference (a): in-process ingest of \(total) signed readings")
        let dir = try LedgerBench.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = try IngestEngine(store: LedgerStore(path: dir + "/inprocess.sqlite", owner: key.publicKey), key: key).runningForBench()
        let t0 = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            let producers = clients * inFlight
            for p in 0..<producers {
                group.addTask {
                    var i = p
                    while i < inProcess.count { _ = try await engine.submit(inProcess[i]); i += producers }
                }
            }
            try await group.waitForAll()
        }
        let inProcessRate = Double(total) / (ContinuousClock.now - t0).seconds
        report.add("inprocess_ingest_per_s", inProcessRate, "/s")

        progress("reference (b): bare WebSocket echo on Hummingbird, \(clients) clients × \(inFlight) in flight")
        let echo = try await echoRate(clients: clients, inFlight: inFlight, messages: total, size: 400)
        report.add("ws_echo_messages_per_s", echo, "/s")

        progress("starting a flowchain node process")
        let node = try await NodeProcess.start(dataDir: dir + "/node")
        defer { node.stop() }
        try await Task.sleep(for: .seconds(2))
        let idle = node.rssMB()
        report.add("node_rss_idle_MB", idle, "MB")
        report.add("node_rss_anon_idle_MB", node.rssMB(field: "RssAnon:"), "MB")
        if let m = node.memory() {
            report.add("node_pss_idle_MB", Double(m.proportional) / 1_048_576, "MB")
            report.add("node_uss_idle_MB", Double(m.unique) / 1_048_576, "MB")
        }
        progress("reference (c): the bare dependency stack (Hummingbird + WebSocket + GRDB, one route) idle")
        if let probe = try await NodeProcess.startStackProbe(dataDir: dir + "/probe") {
            try await Task.sleep(for: .seconds(2))
            let stack = probe.rssMB()
            report.add("stack_probe_rss_idle_MB", stack, "MB")
            report.add("stack_probe_rss_anon_idle_MB", probe.rssMB(field: "RssAnon:"), "MB")
            report.add("node_idle_rss_vs_stack_probe", idle / stack, "")
            probe.stop()
        } else {
            report.note("stack-probe not built (swift build -c release --product stack-probe): no idle-memory reference")
        }

        progress("JSON-RPC submit: \(total) device-signed readings, \(clients) connections × \(inFlight) in flight")
        let latencies = LatencyBox()
        let peak = PeakBox()
        let sampler = Task {
            while !Task.isCancelled {
                peak.record(node.rssMB())
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        let t1 = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in 0..<clients {
                group.addTask {
                    try await RPCConnection.with(node.url) { rpc in
                        try await withThrowingTaskGroup(of: Void.self) { inner in
                            for lane in 0..<inFlight {
                                inner.addTask {
                                    // Each lane owns its devices, so per-device seq order holds.
                                    var i = c * inFlight + lane
                                    while i < viaRPC.count {
                                        let start = ContinuousClock.now
                                        _ = try await rpc.call("submit", ["encoded": .string(Hex.encode(viaRPC[i].encoded))])
                                        latencies.add((ContinuousClock.now - start).seconds * 1000)
                                        i += clients * inFlight
                                    }
                                }
                            }
                            try await inner.waitForAll()
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let rpcRate = Double(total) / (ContinuousClock.now - t1).seconds
        sampler.cancel()
        let sorted = latencies.sorted
        report.add("rpc_submit_per_s", rpcRate, "/s")
        report.add("rpc_vs_inprocess", rpcRate / inProcessRate, "ratio")
        report.add("rpc_vs_ws_echo", rpcRate / echo, "ratio")
        report.add("rpc_latency_p50_ms", percentile(sorted, 50), "ms")
        report.add("rpc_latency_p99_ms", percentile(sorted, 99), "ms")
        report.add("node_rss_under_load_MB", max(peak.value, node.rssMB()), "MB")
        report.add("node_rss_anon_after_load_MB", node.rssMB(field: "RssAnon:"), "MB")
        if let m = node.memory() {
            report.add("node_pss_after_load_MB", Double(m.proportional) / 1_048_576, "MB")
            report.add("node_uss_after_load_MB", Double(m.unique) / 1_048_576, "MB")
        }
        let page = try await node.pageWeight()
        report.add("dashboard_page_bytes", Double(page), "bytes")
        report.add("clients", Double(clients), "")
        report.add("in_flight_per_client", Double(inFlight), "")
        report.note("every RPC reading is device-signed and verified by the node, as in (a)")
        return report
    }

    /// Messages per second through a Hummingbird WebSocket echo route, same client shape as the RPC run.
    static func echoRate(clients: Int, inFlight: Int, messages: Int, size: Int) async throws -> Double {
        let router = Router(context: BasicWebSocketRequestContext.self)
        router.ws("/echo") { inbound, outbound, _ in
            for try await message in inbound.messages(maxSize: 1 << 20) {
                if case let .text(t) = message { try await outbound.write(.text(t)) }
            }
        }
        let port = PortBox()
        var logger = Logger(label: "bench-echo")
        logger.logLevel = .critical
        let app = Application(router: router, server: .http1WebSocketUpgrade(webSocketRouter: router),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { port.set($0.localAddress?.port ?? 0) }, logger: logger)
        let server = Task { try await app.runService(gracefulShutdownSignals: []) }
        defer { server.cancel() }
        while port.value == 0 { try await Task.sleep(for: .milliseconds(10)) }
        let payload = String(repeating: "x", count: size)
        let perClient = messages / clients
        let clientLogger = logger
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port.value)/echo", configuration: .init(maxFrameSize: 1 << 20), logger: clientLogger) { inbound, outbound, _ in
                        // Keep `inFlight` messages outstanding: send that many, then one per echo.
                        for _ in 0..<inFlight { try await outbound.write(.text(payload)) }
                        var sent = inFlight, received = 0
                        for try await _ in inbound.messages(maxSize: 1 << 20) {
                            received += 1
                            if received == perClient { break }
                            if sent < perClient { try await outbound.write(.text(payload)); sent += 1 }
                        }
                        try await outbound.close(.normalClosure, reason: nil)
                    }
                }
            }
            try await group.waitForAll()
        }
        return Double(perClient * clients) / (ContinuousClock.now - start).seconds
    }
}

/// A `flowchain node` (this very binary) or the stack probe, as a child process on a free port
/// (the package's one launcher, `ChildProcess`), stopped by PID.
struct NodeProcess: Sendable {
    let child: ChildProcess
    let port: Int
    var url: String { "ws://127.0.0.1:\(port)" }
    var log: String { child.outputPath }

    static func start(dataDir: String, logLevel: String = "notice", extra: [String] = [], environment: [String: String] = [:],
                      timeout: Duration = .seconds(30)) async throws -> NodeProcess {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        // The port comes from /proc, whatever the log level.
        return try await launch(exe, ["node", "--data-dir", dataDir, "--port", "0", "--rate-limit", "0", "--log-level", logLevel] + extra,
                                log: dataDir + ".log", environment: environment, timeout: timeout)
    }

    /// The bare dependency stack (`stack-probe`, built beside this binary): the reference for
    /// the node's idle memory.
    static func startStackProbe(dataDir: String) async throws -> NodeProcess? {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("stack-probe")
        guard FileManager.default.isExecutableFile(atPath: exe.path) else { return nil }
        return try await launch(exe, [dataDir], log: dataDir + ".log")
    }

    private static func launch(_ exe: URL, _ arguments: [String], log: String, environment: [String: String] = [:],
                               timeout: Duration = .seconds(30)) async throws -> NodeProcess {
        let child = try ChildProcess(executable: exe.path, arguments, outputPath: log, environment: environment)
        guard let port = try await child.waitForListeningPort(timeout: timeout) else {
            child.signal(SIGKILL)
            throw BenchError.nodeDidNotStart(child.output)
        }
        return NodeProcess(child: child, port: port)
    }

    func rssMB(field: String = "VmRSS:") -> Double { child.rssMB(field: field) }
    func memory() -> ProcessMemory? { child.memory() }
    func cpuSeconds() -> Double { child.cpuSeconds() }

    func pageWeight() async throws -> Int {
        var total = 0
        for path in ["/", "/dashboard.js"] {
            total += try LoopbackHTTP.get(port: port, path: path).body.count
        }
        return total
    }

    func stop() {
        child.signal(SIGTERM)
        _ = child.waitUntilExit()
    }
}

enum BenchError: Error, CustomStringConvertible {
    case nodeDidNotStart(String)
    var description: String {
        switch self { case let .nodeDidNotStart(log): return "the node did not start:\n\(log.suffix(2000))" }
    }
}

final class PortBox: Sendable {
    private let port = Mutex(0)
    func set(_ p: Int) { port.withLock { $0 = p } }
    var value: Int { port.withLock { $0 } }
}

final class PeakBox: Sendable {
    private let peak = Mutex(0.0)
    func record(_ v: Double) { peak.withLock { $0 = max($0, v) } }
    var value: Double { peak.withLock { $0 } }
}
