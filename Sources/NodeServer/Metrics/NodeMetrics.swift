import CoreMetrics
import Foundation
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
    private let connectionGauges: [String: CoreMetrics.Gauge]
    private let ingested: [String: CoreMetrics.Counter]

    public init() {
        registry = PrometheusCollectorRegistry()
        var f = PrometheusMetricsFactory(registry: registry)
        f.durationHistogramBuckets["flowchain_ack_latency_seconds"] = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
        ]
        factory = f
        blocks = Counter(label: "flowchain_blocks_total", factory: f)
        connectionsOpened = Counter(label: "flowchain_connections_opened_total", factory: f)
        droppedFrames = Counter(label: "flowchain_dropped_frames_total", factory: f)
        ackLatency = Timer(label: "flowchain_ack_latency_seconds", preferredDisplayUnit: .seconds, factory: f)
        var gauges: [String: CoreMetrics.Gauge] = [:]
        for kind in ["send", "viewer", "status", "rpc", "peer"] {
            gauges[kind] = Gauge(label: "flowchain_connections", dimensions: [("kind", kind)], factory: f)
        }
        connectionGauges = gauges
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
    public func error(_ kind: String) {
        Counter(label: "flowchain_errors_total", dimensions: [("kind", kind)], factory: factory).increment()
    }

    public func connectionOpened(_ kind: String) {
        connectionsOpened.increment()
        connectionGauges[kind]?.record(connectionCounts.add(kind, 1))
    }

    public func connectionClosed(_ kind: String) {
        connectionGauges[kind]?.record(connectionCounts.add(kind, -1))
    }

    /// The Prometheus text exposition of every series.
    public func exposition() -> [UInt8] {
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
