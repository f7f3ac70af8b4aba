import Consensus
import FlowchainCrypto
@testable import FlowchainNode
import FlowchainWire
import Synchronization
import FlowchainTesting
import Foundation
import Ledger
import Logging
import Testing

/// Every part of a node reads time from the clock it is given, so a test can set the time.
@Suite("An injected clock")
struct ClockInjectionTests {
    @Test func aNodeTakesItsTimeFromTheInjectedClock() async throws {
        let dir = TemporaryDirectory("clock")
        var configuration = NodeConfiguration()
        configuration.dataDirectory = DataDirectory(dir.file("data"))
        configuration.server = nil
        configuration.clock = .fixed(1_700_000_123_456)
        // The test cuts the block itself: the engine's own timer (on the monotonic clock) must not
        // seal the reading first when the suite runs under load.
        configuration.blockInterval = .seconds(3600)
        let node = try Node(configuration: configuration, logger: Logger(label: "clock-test"))
        #expect(node.genesis.time == 1_700_000_122, "a single-node genesis starts one second before now")
        node.engine.running()   // as the node's service group would run it
        let ack = try await node.engine.ingest(.unsigned(device: "clocked", payload: Array("{}".utf8), time: nil, timeQuality: .synced, source: .rpc))
        #expect(try node.store.reading(id: ack.id)?.reading.time == 1_700_000_123_456, "an unsigned reading is stamped with the clock's time")
        let header = try #require(try await node.engine.cutBlock())
        #expect(header.time == 1_700_000_123_456, "blocks are stamped by the same clock")
    }

    /// A board without a real-time clock boots in 1970, stamps readings unsynchronised, then NTP
    /// sets its clock: the node records by how much those stamps were off (measured on the
    /// monotonic clock), as a signed reading of its own clock device; nothing is rewritten.
    @Test func whenTheClockIsSetTheCorrectionIsRecordedNotApplied() async throws {
        let dir = TemporaryDirectory("clock-correction")
        // A wall clock that runs (on the monotonic clock) from 1970 until NTP moves it.
        let base = Atomic<Int64>(1_000_000)
        let started = ContinuousClock.now
        let synced = Atomic<Bool>(false)
        let wall = WallClock {
            let e = ContinuousClock.now - started
            return base.load(ordering: .relaxed) + e.components.seconds * 1000 + e.components.attoseconds / 1_000_000_000_000_000
        }
        var config = IngestEngine.Configuration()
        config.clock = ClockSync(mode: .kernel) { ClockSync.State(synchronised: synced.load(ordering: .relaxed), maxErrorMicroseconds: 0) }
        let key = Fixtures.key(33)
        let engine = try IngestEngine(store: LedgerStore(path: dir.file("ledger.sqlite"), owner: key.publicKey), key: key, configuration: config,
                                      now: wall.milliseconds).running()
        let early = try await engine.ingest(.unsigned(device: "rtc-less", payload: Array("{}".utf8), time: nil, timeQuality: .synced, source: .rpc))
        // The watch reads the same state through a clock of its own that counts its looks: NTP
        // sets the clock only after the watch has seen it unsynchronised (a loaded machine may
        // start the watch's task late).
        let looks = Atomic<Int>(0)
        let watched = ClockSync(mode: .kernel) {
            let state = ClockSync.State(synchronised: synced.load(ordering: .relaxed), maxErrorMicroseconds: 0)
            looks.add(1, ordering: .relaxed)
            return state
        }
        let watch = ClockWatch(clock: watched, node: key.publicKey.hex, wall: wall, ingest: engine, interval: .milliseconds(20), logger: Logger(label: "clock-test"))
        let running = Task { try await watch.run() }
        defer { running.cancel() }
        let seen = ContinuousClock.now + .seconds(60)
        while looks.load(ordering: .relaxed) < 1, ContinuousClock.now < seen { try await Task.sleep(for: .milliseconds(20)) }
        try #require(looks.load(ordering: .relaxed) >= 1, "the watch looked at the clock")
        try await Task.sleep(for: .milliseconds(300))
        // NTP sets the clock: it jumps to 2025 (and the kernel says synchronised).
        base.store(1_764_000_000_000, ordering: .relaxed)
        synced.store(true, ordering: .relaxed)
        let device = "clock-\(key.publicKey.hex.prefix(12))"
        let deadline = ContinuousClock.now + .seconds(60)
        while try engine.store.lastSeq(device: device) == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let record = try #require(try engine.store.readings(device: device, limit: 1, newestFirst: true).first)
        let payload = try StrictJSON.parse(record.reading.payload)
        let offset = try #require(payload["offsetMs"]?.int64Value)
        // Exactly how far the clock was moved (the time that passed meanwhile is not part of it).
        #expect(abs(offset - (1_764_000_000_000 - 1_000_000)) < 50, "offset \(offset)")
        #expect(payload["event"]?.stringValue == "clock-synchronised" && (payload["stampedFromMs"]?.int64Value ?? 0) < 1_100_000)
        #expect(record.reading.timeQuality == .synced && record.reading.signer == key.publicKey, "signed by the node, stamped on the set clock")
        let stored = try #require(try engine.store.reading(id: early.id)?.reading)
        #expect(stored.time < 1_100_000 && stored.timeQuality == .unsynced, "the early reading keeps its own stamp, marked unsynchronised")
    }
}
