import Ledger
import FlowchainClient
import FlowchainTesting
import Foundation
import NodeServer
import Testing

/// A viewer that never reads must not slow ingest: its buffer overflows, it loses frames, and it
/// is told how many.
@Suite("Slow consumers", .serialized)
struct SlowConsumerTests {
    @Test func aViewerThatNeverReadsDoesNotBlockIngestAndIsToldWhatItMissed() async throws {
        // This raw client never answers pings; with the default 30 s period a slow run (CI under
        // load) would see it rightly disconnected before the check, so pings are spaced out here.
        let node = try await RunningNode(["--rate-limit", "0", "--ping-interval", "600"])
        // A raw WebSocket handshake, then never read: the kernel's buffers (a few MB) fill and the
        // node's write to this viewer blocks.
        let fd = try #require(LoopbackHTTP.connect(port: node.port))
        defer { close(fd) }
        let handshake = "GET /object/slow/viewer HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        _ = Array(handshake.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        try await Task.sleep(for: .milliseconds(300))

        let ingestStart = ContinuousClock.now
        let blob = String(repeating: "x", count: 1900)
        let total = 6_000
        let acked = try await RPCConnection.with(node.url) { rpc -> Int in
            var acked = 0
            // 25 readings of ~1.9 KB a request: each message stays under the 64 KiB frame limit.
            // In all ~13 MB goes to the viewer: more than the socket buffers and its queue hold.
            for batch in 0..<(total / 25) {
                let items: [JSONValue] = (0..<25).map { ["device": "slow", "payload": ["i": .int(batch * 25 + $0), "blob": .string(blob)]] }
                let results = try await rpc.call("submit", ["readings": .array(items)]).arrayValue ?? []
                acked += results.filter { $0["ack"] != nil }.count
            }
            return acked
        }
        let ingestTime = ContinuousClock.now - ingestStart
        #expect(acked == total, "ingest completed while the viewer read nothing")

        let metrics = try LoopbackHTTP.get(port: node.port, path: "/metrics").text
        let dropped = metrics.split(separator: "\n").first { $0.hasPrefix("flowchain_dropped_frames_total ") }
        #expect(Int(dropped?.split(separator: " ").last ?? "0") ?? 0 > 0, "drops are counted: \(dropped ?? "none")")

        // Now read what the viewer was sent: somewhere in it, the drop report.
        let marker = Array("{\"dropped\":".utf8)
        var tail: [UInt8] = []
        var found = false
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        let deadline = ContinuousClock.now + .seconds(180)
        while ContinuousClock.now < deadline, !found {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            // Search only the new bytes (and a marker's length before them).
            let window = tail + buffer[0..<n]
            found = window.firstRange(of: marker) != nil
            tail = Array(window.suffix(marker.count))
        }
        #expect(found, "the viewer is told it missed frames (ingest took \(ingestTime), reading until \(ContinuousClock.now - ingestStart))")
        #expect(try await node.stop() == 0)
    }
}
