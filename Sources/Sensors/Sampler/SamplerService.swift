import Ledger
import Logging
import ServiceLifecycle
import Synchronization

/// Reads the configured sensors and ingests their readings, signed by the node, through the
/// ledger's one ingest entry point. A sensor that fails (missing, busy, garbage …) is reported,
/// counted and retried with backoff (1 s doubling to 60 s); the others and the node go on.
public struct SamplerService: Service {
    public struct Counters: Sendable {
        public var ingested: @Sendable (_ sensor: String) -> Void
        /// `kind` is a `SensorError.Kind` raw value, or `ingest` when the ledger refused a reading.
        public var failed: @Sendable (_ kind: String) -> Void
        public init(ingested: @escaping @Sendable (String) -> Void = { _ in }, failed: @escaping @Sendable (String) -> Void = { _ in }) {
            self.ingested = ingested
            self.failed = failed
        }
    }

    /// Whether the sample times (the system clock's) are synchronised.
    let clock: ClockSync
    let sensors: [SensorConfiguration]
    /// Where readings go: the engine, or the ring's router.
    let engine: any ReadingIngest
    let sysfs: Sysfs
    let counters: Counters
    let logger: Logger
    let maxBackoff: Duration

    public init(sensors: [SensorConfiguration], engine: any ReadingIngest, sysfs: Sysfs = .current, counters: Counters = .init(),
                maxBackoff: Duration = .seconds(60), clock: ClockSync = ClockSync(), logger: Logger) {
        self.clock = clock
        self.sensors = sensors
        self.engine = engine
        self.sysfs = sysfs
        self.counters = counters
        self.maxBackoff = maxBackoff
        self.logger = logger
    }

    public func run() async throws {
        logger.info("sensors: reading \(sensors.map { "\($0.name) (\($0.typeName))" }.joined(separator: ", ")) through \(GPIO.backend)")
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for sensor in sensors { group.addTask { await keepReading(sensor) } }
            }
        }
        logger.info("sensors stopped")
    }

    private func keepReading(_ sensor: SensorConfiguration) async {
        var logger = self.logger
        logger[metadataKey: "sensor"] = "\(sensor.name)"
        let reader = SensorReader(sensor, sysfs: sysfs, consumer: "flowchain:\(sensor.name)")
        var backoff: Duration = .seconds(1)
        var failing: String? = nil
        var suppressed = 0
        while !Task.isCancelled {
            do {
                for try await sample in reader.samples() {
                    if failing != nil {
                        logger.notice("sensor \(sensor.name) is readable again\(suppressed > 0 ? " (\(suppressed) failed attempts not logged)" : "")")
                        failing = nil
                        suppressed = 0
                    }
                    backoff = .seconds(1)
                    let submission = Submission.unsigned(device: sensor.name, payload: Array(sample.json.utf8), time: sample.time,
                                                         timeQuality: clock.quality, source: sensor.source)
                    do {
                        _ = try await engine.ingest(submission)
                        counters.ingested(sensor.name)
                    } catch .queued {
                        counters.ingested(sensor.name)  // held by the ring's forward queue for its owner
                    } catch {
                        counters.failed("ingest")
                        logger.warning("sensor \(sensor.name): the ledger refused a reading: \(error)")
                    }
                }
                if Task.isCancelled { return }
                throw SensorError(.io, "sensor \(sensor.name) stopped producing readings")
            } catch is CancellationError {
                return
            } catch {
                let e = error as? SensorError ?? SensorError(.io, "\(error)")
                counters.failed(e.kind.rawValue)
                // Each new problem is logged; the same one again only as a count, on recovery.
                if failing != e.message {
                    logger.warning("sensor \(sensor.name) (\(sensor.typeName)): \(e.message); retrying in \(backoff)")
                    failing = e.message
                } else {
                    suppressed += 1
                }
                do { try await Task.sleep(for: backoff) } catch { return }
                backoff = min(backoff * 2, maxBackoff)
            }
        }
    }
}
