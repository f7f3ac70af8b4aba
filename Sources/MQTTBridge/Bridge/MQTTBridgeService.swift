import Ledger
import Logging
import ServiceLifecycle
import Synchronization

/// Runs the bridge: subscribes the rules' filters, turns each matching message into a reading
/// through the ledger's one ingest entry point (in arrival order), and counts and logs what it
/// cannot use without ever stopping for it.
public struct MQTTBridgeService: Service {
    /// Where the bridge reports outcomes (the node counts them in /metrics).
    public struct Counters: Sendable {
        public var ingested: @Sendable () -> Void
        public var refused: @Sendable (_ reason: String) -> Void
        public init(ingested: @escaping @Sendable () -> Void = {}, refused: @escaping @Sendable (String) -> Void = { _ in }) {
            self.ingested = ingested
            self.refused = refused
        }
    }

    let configuration: BridgeConfiguration
    let engine: IngestEngine
    /// Where readings go: the engine, or the ring's router.
    let ingest: any ReadingIngest
    let counters: Counters
    let now: @Sendable () -> Int64
    let newestCounter: (@Sendable (String, String) async -> Int64?)?
    let logger: Logger

    /// `newestCounter` finds a device's newest stored reading's counter (for `seqField`) where
    /// this node's own chain may not hold it (in a ring); by default this node's chain is read.
    public init(configuration: BridgeConfiguration, engine: IngestEngine, ingest: (any ReadingIngest)? = nil, counters: Counters = .init(),
                now: @escaping @Sendable () -> Int64,
                newestCounter: (@Sendable (_ device: String, _ field: String) async -> Int64?)? = nil, logger: Logger) {
        self.configuration = configuration
        self.newestCounter = newestCounter
        self.engine = engine
        self.ingest = ingest ?? engine
        self.counters = counters
        self.now = now
        var logger = logger
        logger[metadataKey: "broker"] = "\(configuration.name)"
        self.logger = logger
    }

    public func run() async throws {
        var brokerConfiguration = configuration.broker
        if let out = configuration.outbound {
            // If the node vanishes without saying goodbye, the broker says it for us.
            brokerConfiguration.will = .init(topic: out.statusTopic, payload: Array("offline".utf8), qos: 1, retain: true)
        }
        let client = try MQTTClient(brokerConfiguration)
        for rule in configuration.rules { try client.subscribe(rule.filter.text, qos: rule.qos) }
        let broker = "\(configuration.broker.host):\(configuration.broker.port)"
        logger.info("MQTT bridge: connecting to \(broker), \(configuration.rules.count) rule(s): \(configuration.rules.map(\.filter.text).joined(separator: ", "))")
        client.start()
        let complaints = RateLimitedLog(logger: logger)
        let (stop, stopNow) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let sequences = SequenceWatch(store: engine.store, newestCounter: newestCounter)
        let batcher = Batcher(limit: configuration.inFlight)
        let outbound = configuration.outbound.map {
            MQTTOutbound(configuration: $0, broker: configuration.name, client: client, store: engine.store, feed: engine.feed, logger: logger)
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Role.self) { group in
                // On shutdown: say "offline" (retained) while still connected, then close, which
                // ends the event loop below.
                group.addTask {
                    for await _ in stop { break }
                    if let out = configuration.outbound, client.isConnected {
                        _ = try? await withDeadline(.seconds(2)) {
                            try await client.publishAcknowledged(topic: out.statusTopic, payload: Array("offline".utf8), qos: 1, retain: true)
                        }
                    }
                    client.close()
                    return .stopper
                }
                if let outbound { group.addTask { await outbound.run(); return .outbound } }
                group.addTask {
                    await ingestBatches(from: batcher, client: client, complaints: complaints)
                    return .ingest
                }
                // A TLS broker that wants a client certificate we do not have may end the handshake
                // with an alert ("certificate required") or just close the connection: say what to check.
                var connectedOnce = false
                let tlsHint = brokerConfiguration.tls.map { $0.certificateFile == nil } == true
                    ? " (over TLS without a client certificate: if the broker requires one, configure certificate and key)" : ""
                for await event in client.events {
                    switch event {
                    case let .message(m):
                        for submission in await plan(m, sequences: sequences, client: client, complaints: complaints) {
                            await batcher.add(submission, message: m)
                        }
                    case let .connected(sessionPresent):
                        connectedOnce = true
                        logger.notice("MQTT bridge: connected to \(broker)\(sessionPresent ? " (session resumed)" : "")")
                        if let out = configuration.outbound {
                            _ = try? client.publish(topic: out.statusTopic, payload: Array("online".utf8), qos: 1, retain: true)
                        }
                    case let .disconnected(error?):
                        complaints.warn("disconnected", "MQTT bridge: \(error); reconnecting\(connectedOnce ? "" : tlsHint)")
                    case .disconnected(nil):
                        logger.info("MQTT bridge: disconnected from \(broker)")
                    case let .refused(error):
                        complaints.warn("refused", "MQTT bridge: the broker refused us: \(error.message); retrying")
                    case let .failed(error):
                        complaints.warn("failed", "MQTT bridge: \(error.message)")
                    case .published, .subscribed:
                        break
                    }
                }
                stopNow.finish()
                batcher.finish()
                // The last batch is committed before the bridge reports itself stopped; then the
                // outbox stops too.
                while let role = await group.next() {
                    if role == .ingest { group.cancelAll() }
                }
            }
        } onGracefulShutdown: {
            stopNow.yield()
        }
        client.close()
        logger.info("MQTT bridge stopped")
    }

    private enum Role: Sendable { case stopper, outbound, ingest }

    /// Hands each batch of waiting messages to the ledger, several batches at once: a batch is
    /// validated and signed while the one before it commits, and an `IngestOrder` keeps them on
    /// the queue in arrival order. Returns once the batcher is finished and every batch is done.
    private func ingestBatches(from batcher: Batcher, client: MQTTClient, complaints: RateLimitedLog) async {
        let order = IngestOrder()
        await withTaskGroup(of: Void.self) { running in
            var count = 0
            while let batch = await batcher.take() {
                if count >= Self.batchesInFlight {
                    await running.next()
                    count -= 1
                }
                let turn = order.next()
                running.addTask {
                    let outcomes = await ingest.ingest(batch.map(\.submission), after: turn)
                    for (item, outcome) in zip(batch, outcomes) {
                        switch outcome {
                        case .success: counters.ingested()
                        // Held by the ring's forward queue until the device's owner can be reached.
                        case .failure(.queued): counters.ingested()
                        case let .failure(error): refuse(error.kind, item.message, client, complaints)
                        }
                    }
                }
                count += 1
            }
        }
    }

    /// Batches being validated, signed or committed at once.
    static let batchesInFlight = 4

    /// What a message becomes, in order: nothing (refused, counted), its reading, or, after a gap
    /// in the device's own counter, the bridge's record of the gap and then the reading. Runs in
    /// arrival order, before the ingest of the message is started.
    private func plan(_ message: MQTTMessage, sequences: SequenceWatch, client: MQTTClient, complaints: RateLimitedLog) async -> [Submission] {
        // What the bridge publishes itself (outbound, dead letters) is never read back as input.
        if configuration.ownPrefixes.contains(where: { message.topic.hasPrefix($0 + "/") }) { return [] }
        guard let rule = configuration.rules.first(where: { $0.filter.match(message.topic) != nil }) else {
            refuse(BridgeRule.Refusal.noRule.rawValue, message, client, complaints)
            return []
        }
        switch rule.prepare(topic: message.topic, payload: message.payload, arrival: now(), arrivalQuality: engine.clockQuality, maxPayload: configuration.maxPayload) {
        case let .failure(reason):
            refuse(reason.rawValue, message, client, complaints)
            return []
        case let .success(prepared):
            guard let seq = prepared.seq, let field = rule.seqField else { return [prepared.submission] }
            switch await sequences.check(device: prepared.device, seq: seq, field: field) {
            case .next:
                return [prepared.submission]
            case let .gap(after):
                complaints.warn("gap", "MQTT bridge: \(prepared.device) skipped from \(field) \(after) to \(seq): \(seq - after - 1) message(s) never arrived; recorded as a reading of \(SequenceWatch.bridgeDevice)")
                return [SequenceWatch.gapEvent(device: prepared.device, topic: message.topic, after: after, next: seq), prepared.submission]
            case .repeated:
                // Already in the ledger: counted, never dead-lettered.
                counters.refused(BridgeRule.Refusal.duplicate.rawValue)
                complaints.warn("duplicate", "MQTT bridge: a message on \(message.topic) repeats \(field) \(seq), already stored; not stored again")
                return []
            }
        }
    }

    /// Counts and logs a message that did not become a reading, and republishes it to the
    /// dead-letter topic when one is configured.
    private func refuse(_ reason: String, _ message: MQTTMessage, _ client: MQTTClient, _ complaints: RateLimitedLog) {
        counters.refused(reason)
        var note = ""
        if let prefix = configuration.deadLetter {
            let topic = "\(prefix)/\(reason)/\(message.topic)"
            do {
                _ = try client.publish(topic: topic, payload: message.payload, qos: 1)
                note = "; republished to \(topic)"
            } catch {
                note = "; could not republish it to \(topic): \(error.message)"
            }
        }
        complaints.warn(reason, "MQTT bridge: a message on \(message.topic) (\(message.payload.count) bytes) was not ingested: \(reason)\(note)")
    }
}

/// Logs each kind of complaint at most once per interval, saying how many were not logged.
final class RateLimitedLog: Sendable {
    let logger: Logger
    let interval: Duration
    private let state = Mutex<[String: (last: ContinuousClock.Instant, suppressed: Int)]>([:])

    init(logger: Logger, interval: Duration = .seconds(10)) {
        self.logger = logger
        self.interval = interval
    }

    func warn(_ kind: String, _ message: @autoclosure () -> String) {
        let now = ContinuousClock.now
        let suppressed = state.withLock { s -> Int? in
            if let entry = s[kind], now - entry.last < interval {
                s[kind] = (entry.last, entry.suppressed + 1)
                return nil
            }
            defer { s[kind] = (now, 0) }
            return s[kind]?.suppressed ?? 0
        }
        guard let suppressed else { return }
        logger.warning("\(message())\(suppressed > 0 ? " (\(suppressed) more like it since the last report)" : "")")
    }
}

/// Runs `body`, giving up (nil) after `limit`.
func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask { try await Task.sleep(for: limit); return nil }
        defer { group.cancelAll() }
        return try await group.next() ?? nil
    }
}

/// Submissions waiting for the ledger, in arrival order; adding waits while `limit` are waiting.
/// A lock, not an actor: adding is on the path of every message and rarely has to wait.
final class Batcher: Sendable {
    struct Item: Sendable {
        let submission: Submission
        /// The message as it arrived (for the dead-letter topic if the ledger refuses it).
        let message: MQTTMessage
    }

    private struct State {
        var items: [Item] = []
        var taker: CheckedContinuation<Void, Never>?
        var adders: [CheckedContinuation<Void, Never>] = []
        var finished = false
    }

    private let state = Mutex(State())
    let limit: Int

    init(limit: Int) { self.limit = max(1, limit) }

    func add(_ submission: Submission, message: MQTTMessage) async {
        let item = Item(submission: submission, message: message)
        while true {
            let (added, taker) = state.withLock { s -> (Bool, CheckedContinuation<Void, Never>?) in
                guard s.items.count < limit || s.finished else { return (false, nil) }
                s.items.append(item)
                defer { s.taker = nil }
                return (true, s.taker)
            }
            if added {
                taker?.resume()
                return
            }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let room = state.withLock { s -> Bool in
                    if s.items.count < limit || s.finished { return true }
                    s.adders.append(c)
                    return false
                }
                if room { c.resume() }
            }
        }
    }

    /// Everything waiting (at least one), or nil once finished and empty. One taker at a time.
    func take() async -> [Item]? {
        while true {
            let (out, adders, done) = state.withLock { s -> ([Item], [CheckedContinuation<Void, Never>], Bool) in
                guard s.items.isEmpty else {
                    defer { s.items = []; s.adders = [] }
                    return (s.items, s.adders, false)
                }
                return ([], [], s.finished)
            }
            for a in adders { a.resume() }
            if !out.isEmpty { return out }
            if done { return nil }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { s -> Bool in
                    if !s.items.isEmpty || s.finished { return true }
                    s.taker = c
                    return false
                }
                if ready { c.resume() }
            }
        }
    }

    /// No more adds: `take` returns what is left, then nil.
    func finish() {
        let (taker, adders) = state.withLock { s -> (CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) in
            s.finished = true
            defer { s.taker = nil; s.adders = [] }
            return (s.taker, s.adders)
        }
        taker?.resume()
        for a in adders { a.resume() }
    }
}
