import FlowchainClient
import FlowchainWire
import Foundation
import Ledger
import MQTTBridge
import ProcessSupport
import Synchronization

/// QoS 1 messages from a real MQTT client through a broker into a node's ledger, beside the rate a
/// plain `mosquitto_sub -q 1` receives from the same broker and load generator in the same run.
public enum MQTTBench {
    public static func run(messages: Int = 100_000, progress: (String) -> Void) async throws -> BenchReport {
        var report = BenchReport(scenario: "mqtt")
        let broker = "/usr/sbin/mosquitto", sub = "/usr/bin/mosquitto_sub"
        guard FileManager.default.isExecutableFile(atPath: broker), FileManager.default.isExecutableFile(atPath: sub) else {
            report.note("mosquitto and mosquitto-clients are not installed (apt-get install mosquitto mosquitto-clients): nothing measured")
            return report
        }
        let dir = try LedgerBench.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = LoopbackHTTP.freePort()
        try "user \(NSUserName())\nlistener \(port) 127.0.0.1\nallow_anonymous true\nmax_queued_messages 2000000\n"
            .write(toFile: dir + "/mosquitto.conf", atomically: true, encoding: .utf8)
        let brokerProcess = try ChildProcess(executable: broker, ["-c", dir + "/mosquitto.conf"], outputPath: dir + "/broker.log")
        defer { brokerProcess.signal(SIGTERM) }
        guard try await brokerProcess.waitForListeningPort(timeout: .seconds(30)) != nil else { throw BenchError.nodeDidNotStart(brokerProcess.output) }

        var config = MQTTConfiguration(host: "127.0.0.1", port: port, clientID: "bench-load")
        config.cleanSession = true
        let load = try MQTTClient(config)
        let connected = Atomic<Bool>(false)
        let acks = AckCounter()
        let drain = Task {
            for await e in load.events {
                switch e {
                case .connected: connected.store(true, ordering: .relaxed)
                case .published: acks.ack()
                default: break
                }
            }
        }
        defer { load.close(); drain.cancel() }
        load.start()
        let waitStart = ContinuousClock.now
        while !connected.load(ordering: .relaxed), ContinuousClock.now - waitStart < .seconds(30) { try await Task.sleep(for: .milliseconds(10)) }

        progress("reference: mosquitto_sub -q 1 receiving \(messages) QoS 1 messages")
        let reference = try ChildProcess(executable: sub, ["-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-t", "bench/ref", "-C", "\(messages)"],
                                         outputPath: dir + "/sub.txt")
        try await Task.sleep(for: .milliseconds(500))
        let r0 = ContinuousClock.now
        try await publish(load, acks: acks, count: messages) { _ in "bench/ref" }
        _ = try await reference.wait(timeout: .seconds(300))
        let referenceRate = Double(messages) / (ContinuousClock.now - r0).seconds
        report.add("mosquitto_sub_per_s", referenceRate, "/s")

        progress("node: \(messages) QoS 1 messages from 8 devices into the ledger")
        let node = try await NodeProcess.start(dataDir: dir + "/node", logLevel: "info",
                                               extra: ["--mqtt", "mqtt://127.0.0.1:\(port)", "--subscribe", "bench/+", "--no-mint"])
        defer { node.stop() }
        guard try await node.child.waitForOutput("MQTT bridge: connected", timeout: .seconds(60)) else { throw BenchError.nodeDidNotStart(node.child.output) }
        // Latency is sampled on one device of eight (its commits are pushed over RPC); the
        // total is read from the node's counters, so watching costs the node little.
        let latencies = Mutex<[Double]>([])
        let watcher = Task {
            try await RPCConnection.with(node.url) { rpc in
                _ = try await rpc.call("subscribe", ["topic": "readings", "device": "d0"])
                for await note in rpc.notifications {
                    guard let sent = note["params"]?["reading"]?["payload"]?["t"]?.doubleValue else { continue }
                    let ms = Date().timeIntervalSince1970 * 1000 - sent
                    latencies.withLock { $0.append(ms) }
                }
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        let peak = Mutex(0.0)
        let sampler = Task {
            while !Task.isCancelled {
                let rss = node.rssMB()
                peak.withLock { $0 = max($0, rss) }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        let n0 = ContinuousClock.now
        let cpu0 = node.cpuSeconds(), broker0 = brokerProcess.cpuSeconds(), self0 = processCPUSeconds()
        try await publish(load, acks: acks, count: messages) { i in "bench/d\(i % 8)" }
        let deadline = ContinuousClock.now + .seconds(300)
        let got = try await RPCConnection.with(node.url) { rpc in
            while ContinuousClock.now < deadline {
                let n = Int(try await rpc.call("info")["readings"]?.int64Value ?? 0)
                if n >= messages { return n }
                try await Task.sleep(for: .milliseconds(20))
            }
            return Int(try await rpc.call("info")["readings"]?.int64Value ?? 0)
        }
        let seconds = (ContinuousClock.now - n0).seconds
        let cpu = node.cpuSeconds() - cpu0
        let brokerCPU = brokerProcess.cpuSeconds() - broker0, loadCPU = processCPUSeconds() - self0
        sampler.cancel()
        watcher.cancel()
        let rate = Double(got) / seconds
        report.add("mqtt_committed_per_s", rate, "/s")
        report.add("mqtt_vs_mosquitto_sub", rate / referenceRate, "ratio")
        let sorted = latencies.withLock { $0.sorted() }
        report.add("end_to_end_latency_p50_ms", percentile(sorted, 0.5), "ms")
        report.add("end_to_end_latency_p99_ms", percentile(sorted, 0.99), "ms")
        report.add("node_cpu_us_per_reading", cpu * 1e6 / Double(max(got, 1)), "us")
        report.add("node_cores_busy", cpu / seconds, "cores")
        report.add("broker_cores_busy", brokerCPU / seconds, "cores")
        report.add("load_generator_cores_busy", loadCPU / seconds, "cores")
        report.add("node_rss_under_load_MB", peak.withLock { $0 }, "MB")
        report.add("messages", Double(messages), "")
        if got < messages { report.note("only \(got) of \(messages) readings were seen committed within 300 s") }
        report.note("latency: from the publisher's clock in the payload to the commit notification over RPC (device d0, 1 in 8; same machine)")
        return report
    }

    /// Publishes `count` QoS 1 messages `{"n","t"}`, at most `window` awaiting the broker's PUBACK
    /// at once; returns when every one is acknowledged. One loop and a counter, not a task per
    /// message: the load generator shares the cores with what it measures, so it must be cheap.
    static func publish(_ client: MQTTClient, acks: AckCounter, count: Int, window: Int = 100,
                        topic: (Int) -> String) async throws {
        let base = acks.count
        for i in 0..<count {
            if i >= window { await acks.wait(atLeast: base + i - window + 1) }
            let t = Int64(Date().timeIntervalSince1970 * 1000)
            _ = try client.publish(topic: topic(i), payload: Array("{\"n\":\(i),\"t\":\(t)}".utf8), qos: 1)
        }
        await acks.wait(atLeast: base + count)
    }
}

/// PUBACKs received so far; `wait` returns once there are at least that many.
final class AckCounter: Sendable {
    private let state = Mutex<(count: Int, waiter: (target: Int, continuation: CheckedContinuation<Void, Never>)?)>((0, nil))

    var count: Int { state.withLock { $0.count } }

    func ack() {
        let ready = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.count += 1
            guard let w = s.waiter, s.count >= w.target else { return nil }
            s.waiter = nil
            return w.continuation
        }
        ready?.resume()
    }

    func wait(atLeast target: Int) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s -> Bool in
                if s.count >= target { return true }
                s.waiter = (target, c)
                return false
            }
            if ready { c.resume() }
        }
    }
}
