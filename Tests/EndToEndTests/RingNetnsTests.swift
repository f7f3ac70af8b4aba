import FlowchainClient
import FlowchainCrypto
import FlowchainTesting
import FlowchainWire
import Foundation
import Ledger
import Testing

/// Five hosts made by the test itself: network namespaces joined by veth pairs to a bridge, one
/// node in each. Needs root (to make namespaces); skipped, visibly, without it.
final class NetnsLab: @unchecked Sendable {
    // @unchecked Sendable: set up once, then only read.
    let tag: String
    let size: Int
    var namespaces: [String] { (0..<size).map { "\(tag)n\($0)" } }
    var bridge: String { "\(tag)br" }
    func address(_ i: Int) -> String { "10.77.\(subnet).\(i + 1)" }
    let subnet: Int

    init(size: Int) throws {
        self.size = size
        subnet = Int.random(in: 10...250)
        tag = "fc\(subnet)"
        try Self.sh("ip link add \(bridge) type bridge && ip addr add 10.77.\(subnet).254/24 dev \(bridge) && ip link set \(bridge) up")
        for i in 0..<size {
            let ns = namespaces[i]
            try Self.sh("""
                ip netns add \(ns) && ip link add \(tag)v\(i) type veth peer name eth0 netns \(ns) \
                && ip link set \(tag)v\(i) master \(bridge) up \
                && ip -n \(ns) addr add \(address(i))/24 dev eth0 && ip -n \(ns) link set eth0 up && ip -n \(ns) link set lo up
                """)
        }
    }

    /// Cuts host `i` off the others (its link to the bridge goes down), or reconnects it.
    func cut(_ i: Int, _ off: Bool) async throws {
        let command = "ip link set \(tag)v\(i) \(off ? "down" : "up")"
        _ = try await offPool { try Self.sh(command) }
    }

    func tearDown() {
        for (i, ns) in namespaces.enumerated() { _ = try? Self.sh("ip link del \(tag)v\(i) 2>/dev/null; ip netns del \(ns)") }
        _ = try? Self.sh("ip link del \(bridge)")
    }

    @discardableResult
    static func sh(_ command: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        p.waitUntilExit()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard p.terminationStatus == 0 else { throw RingError("`\(command)` failed (\(p.terminationStatus)): \(out)") }
        return out
    }

    static var usable: Bool { geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") }
}

@Suite("Ring across network namespaces", .serialized, .enabled(if: NetnsLab.usable, "needs root to make network namespaces"))
struct RingNetnsTests {
    @Test func aHostCutOffForThirtySecondsAndReconnectedLosesNothingAndTheRingAndAnchorChainConverge() async throws {
        let lab = try await offPool { try NetnsLab(size: 5) }
        defer { lab.tearDown() }
        var nodes: [RunningNode] = []
        defer { for n in nodes { n.process.signal(SIGKILL) } }
        for i in 0..<5 {
            let dir = TemporaryDirectory("netns-\(i)")
            var args = ["netns", "exec", lab.namespaces[i], FlowchainProcess.flowchainBinary, "node", "--data-dir", dir.file("data"),
                        "--host", lab.address(i), "--port", "8000", "--block-interval", "200", "--anchor-interval", "1"]
            if i > 0 { args += ["--join", "\(lab.address(0)):8000"] }
            let p = try FlowchainProcess(executable: "/usr/sbin/ip", args, outputPath: dir.file("node.log"))
            guard try await p.waitForOutput("listening on http://", timeout: .seconds(60)) else { throw RingError("node \(i) did not start: \(p.output)") }
            nodes.append(RunningNode(adopting: p, port: 8000, dir: dir, host: lab.address(i)))
        }
        let ring = try await TestRing(adopting: nodes)
        try await ring.converge(timeout: .seconds(90))

        var acked: [String] = []
        func push(_ round: String, at hosts: [Int]) async {
            for h in hosts {
                for d in 0..<6 {
                    if let id = try? await ring.submit("netns-\(d)", at: h, #"{"round":"\#(round)","host":\#(h)}"#)["id"]?.stringValue { acked.append(id) }
                }
            }
        }
        await push("before", at: Array(0..<5))
        #expect(acked.count == 30, "every reading is acknowledged while the network is whole")
        // Host 4 is cut off for 30 s. Both sides go on taking readings.
        try await lab.cut(4, true)
        let cutAt = ContinuousClock.now
        try await Task.sleep(for: .seconds(8))  // the four notice, and fail over
        let beforeCut = acked.count
        await push("cut", at: [0, 1, 2, 3, 4])
        #expect(acked.count > beforeCut + 20, "both sides acknowledged readings while apart (\(acked.count - beforeCut) of 30)")
        try await Task.sleep(until: cutAt + .seconds(30), clock: .continuous)
        try await lab.cut(4, false)
        // After the heal: one ring of five and one anchor chain.
        try await ring.converge(timeout: .seconds(90))
        let deadline = ContinuousClock.now + .seconds(60)
        var tips: [String] = []
        while ContinuousClock.now < deadline {
            tips = try await ring.live.asyncMap { try await TestRing.call($0.node.url, "anchor")["hash"]?.stringValue ?? "" }
            if Set(tips).count == 1 { break }
            try await Task.sleep(for: .seconds(1))
        }
        #expect(Set(tips).count == 1, "one anchor tip everywhere after the heal: \(tips)")
        await push("after", at: Array(0..<5))
        // Nothing acknowledged is lost: every id is found, asked at any node.
        var missing: [String] = []
        for (k, id) in acked.enumerated() {
            let at = k % 5
            if (try? await TestRing.call(ring.nodes[at]!.url, "reading", ["id": .string(id)])) == nil { missing.append(id) }
        }
        #expect(missing.isEmpty, "\(missing.count) of \(acked.count) acknowledged readings not found")
        await ring.stopAll()
    }
}
