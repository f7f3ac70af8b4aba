import CoreMetrics
import Foundation
import ProcessSupport
import Prometheus
import Synchronization

/// The node's metrics, written through swift-metrics into one Prometheus registry per node (not
/// the process-global one, so several nodes can live in one test process). Series: `flowchain_*`.
public final class NodeMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    public let blocks: CoreMetrics.Counter
    public let connectionsOpened: CoreMetrics.Counter
    public let droppedFrames: CoreMetrics.Counter
    public let ackLatency: CoreMetrics.Timer
    /// Readings this node forwarded to their owner in the ring, and readings it stored for peers.
    public let forwarded: CoreMetrics.Counter
    public let servedForPeers: CoreMetrics.Counter
    /// Hops of each Chord lookup this node made to route a reading.
    public let lookupHops: CoreMetrics.Recorder
    /// How long each of those lookups took.
    public let lookupLatency: CoreMetrics.Timer
    private let peers: CoreMetrics.Gauge
    /// Readings waiting in the forward queue for an owner that cannot be reached.
    public let forwardQueue: CoreMetrics.Gauge
    /// Readings of this node's chain not yet copied to every replica.
    public let replicationLag: CoreMetrics.Gauge
    private let connectionGauges: [String: CoreMetrics.Gauge]
    /// This process's memory, read at each scrape: resident (RSS), proportional (PSS), unique
    /// (USS: what stopping it frees), anonymous (heap and stacks).
    private let memory: [String: CoreMetrics.Gauge]
    /// Write transactions of the ledger store, read at each scrape.
    private let storeTransactions: CoreMetrics.Gauge
    /// The ledger file's size (its pages) and the height below which retention pruned blocks.
    private let ledgerBytes: CoreMetrics.Gauge
    private let prunedBelow: CoreMetrics.Gauge
    private let ingested: [String: CoreMetrics.Counter]

    public init() {
        registry = PrometheusCollectorRegistry()
        var f = PrometheusMetricsFactory(registry: registry)
        f.durationHistogramBuckets["flowchain_ack_latency_seconds"] = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
        ]
        f.durationHistogramBuckets["flowchain_lookup_seconds"] = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5),
        ]
        factory = f
        blocks = Counter(label: "flowchain_blocks_total", factory: f)
        connectionsOpened = Counter(label: "flowchain_connections_opened_total", factory: f)
        droppedFrames = Counter(label: "flowchain_dropped_frames_total", factory: f)
        ackLatency = Timer(label: "flowchain_ack_latency_seconds", preferredDisplayUnit: .seconds, factory: f)
        forwarded = Counter(label: "flowchain_readings_forwarded_total", factory: f)
        servedForPeers = Counter(label: "flowchain_readings_stored_for_peers_total", factory: f)
        lookupHops = Recorder(label: "flowchain_lookup_hops", factory: f)
        lookupLatency = Timer(label: "flowchain_lookup_seconds", preferredDisplayUnit: .seconds, factory: f)
        peers = Gauge(label: "flowchain_peers", factory: f)
        forwardQueue = Gauge(label: "flowchain_forward_queue", factory: f)
        replicationLag = Gauge(label: "flowchain_replication_lag", factory: f)
        var gauges: [String: CoreMetrics.Gauge] = [:]
        for kind in ["send", "viewer", "status", "rpc", "peer"] {
            gauges[kind] = Gauge(label: "flowchain_connections", dimensions: [("kind", kind)], factory: f)
        }
        connectionGauges = gauges
        storeTransactions = Gauge(label: "flowchain_store_transactions", factory: f)
        ledgerBytes = Gauge(label: "flowchain_ledger_bytes", factory: f)
        prunedBelow = Gauge(label: "flowchain_pruned_below_height", factory: f)
        memory = Dictionary(uniqueKeysWithValues: ["resident", "proportional", "unique", "anonymous"].map {
            ($0, Gauge(label: "flowchain_memory_bytes", dimensions: [("kind", $0)], factory: f))
        })
        var counters: [String: CoreMetrics.Counter] = [:]
        for source in ["gpio", "mqtt", "ws", "rpc", "demo", "iio"] {
            counters[source] = Counter(label: "flowchain_readings_ingested_total", dimensions: [("source", source)], factory: f)
        }
        ingested = counters
        connectionCounts = .init([:])
    }

    private let connectionCounts: LockedCounts

    public func readingIngested(source: String, count: Int = 1) { ingested[source]?.increment(by: Int64(count)) }

    /// Counts an error by kind (`bad_signature`, `parse_error`, `rate_limited`, …).
    public func error(_ kind: String, count: Int = 1) {
        Counter(label: "flowchain_errors_total", dimensions: [("kind", kind)], factory: factory).increment(by: Int64(count))
    }

    /// Authenticated peer connections.
    public func peerConnected() { peers.record(connectionCounts.add("authenticated-peers", 1)) }
    public func peerDisconnected() { peers.record(connectionCounts.add("authenticated-peers", -1)) }

    public func connectionOpened(_ kind: String) {
        connectionsOpened.increment()
        connectionGauges[kind]?.record(connectionCounts.add(kind, 1))
    }

    public func connectionClosed(_ kind: String) {
        connectionGauges[kind]?.record(connectionCounts.add(kind, -1))
    }

    /// The Prometheus text exposition of every series.
    public func exposition(storeTransactions transactions: Int? = nil, ledger: (bytes: Int64, prunedBelow: UInt64)? = nil) -> [UInt8] {
        if let transactions { storeTransactions.record(transactions) }
        if let ledger {
            ledgerBytes.record(ledger.bytes)
            prunedBelow.record(Int64(ledger.prunedBelow))
        }
        if let m = ProcessMemory.read() {
            memory["resident"]?.record(m.resident)
            memory["proportional"]?.record(m.proportional)
            memory["unique"]?.record(m.unique)
            memory["anonymous"]?.record(m.anonymous)
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}

/// Open connections per kind.
final class LockedCounts: Sendable {
    private let counts: Mutex<[String: Int]>
    init(_ initial: [String: Int]) { counts = Mutex(initial) }
    func add(_ kind: String, _ delta: Int) -> Int {
        counts.withLock { c in
            c[kind, default: 0] += delta
            return c[kind] ?? 0
        }
    }
}
