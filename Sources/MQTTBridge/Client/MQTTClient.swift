internal import CMosquitto
import Foundation
import Synchronization

/// An MQTT client over libmosquitto 2.0 with its network loop on libmosquitto's own thread.
///
/// Lifecycle: `init` configures, `start()` connects (asynchronously: a broker that is down is
/// retried with backoff, and so is a lost connection), `close()` disconnects and stops the thread.
/// What happens arrives in order on `events`. While started, C holds a retained reference to the
/// client (its user data); `close()` releases it once `mosquitto_loop_stop` has returned, when no
/// callback can run any more.
public final class MQTTClient: Sendable {
    public let configuration: MQTTConfiguration
    /// Connection changes, messages and acknowledgements, in the order the network thread saw them.
    /// Unbounded: libmosquitto has acknowledged a QoS 1 message before we see it, so it must not
    /// be dropped here (see docs/mqtt.md on the delivery window).
    public let events: AsyncStream<MQTTEvent>
    let continuation: AsyncStream<MQTTEvent>.Continuation
    let handle: Handle
    let state = Mutex(State())

    struct State {
        var started = false
        var closed = false
        /// Whether the connector thread has handed over to libmosquitto's network thread.
        var loopRunning = false
        /// Filters to (re)subscribe on every connection, with their QoS.
        var subscriptions: [(filter: String, qos: Int32)] = []
        var connected = false
        /// Publishes waiting for the broker's acknowledgement, and acknowledgements that arrived
        /// before their publisher registered (the network thread can be that quick). `early` is
        /// kept only while some publisher is between `mosquitto_publish` and registering: message
        /// ids wrap at 65,535, so a stale entry could otherwise answer a later publish.
        var waiters: [Int32: CheckedContinuation<Void, any Error>] = [:]
        var early: Set<Int32> = []
        var registering = 0
    }

    /// The libmosquitto handle. `@unchecked Sendable`: libmosquitto's calls are thread-safe once its
    /// own network thread runs (`mosquitto_loop_start`); before that only `init` and `start` use it.
    struct Handle: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    private static let libraryReady: Int32 = mosquitto_lib_init()

    /// Configures a client (`mosquitto_new` and the option setters); nothing is sent yet.
    public init(_ configuration: MQTTConfiguration) throws(MQTTError) {
        try MQTTError.check("mosquitto_lib_init", Self.libraryReady)
        self.configuration = configuration
        (events, continuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
        guard let pointer = mosquitto_new(configuration.clientID, configuration.cleanSession, nil) else {
            throw MQTTError(operation: "mosquitto_new", code: Int32(errno), message: String(cString: strerror(errno)))
        }
        handle = Handle(pointer: pointer)
        // Every stored property is set: if configuring fails, deinit destroys the handle.
        try configure()
    }

    private func configure() throws(MQTTError) {
        let h = handle.pointer, c = configuration
        let version = c.protocolVersion == .v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311
        try MQTTError.check("set protocol version \(c.protocolVersion.rawValue)", mosquitto_int_option(h, MOSQ_OPT_PROTOCOL_VERSION, Int32(version)))
        if c.username != nil || c.password != nil {
            try MQTTError.check("mosquitto_username_pw_set", mosquitto_username_pw_set(h, c.username, c.password))
        }
        if let tls = c.tls {
            try MQTTError.check("mosquitto_tls_set (CA \(tls.caFile))", mosquitto_tls_set(h, tls.caFile, nil, tls.certificateFile, tls.keyFile, nil))
            // 1 = SSL_VERIFY_PEER: the broker's chain is always checked.
            try MQTTError.check("mosquitto_tls_opts_set", mosquitto_tls_opts_set(h, 1, nil, nil))
            try MQTTError.check("mosquitto_tls_insecure_set", mosquitto_tls_insecure_set(h, tls.insecure))
        }
        if let will = c.will {
            try MQTTError.check("mosquitto_will_set (\(will.topic))", will.payload.withUnsafeBytes {
                mosquitto_will_set(h, will.topic, Int32($0.count), $0.baseAddress, will.qos, will.retain)
            })
        }
        try MQTTError.check("mosquitto_reconnect_delay_set", mosquitto_reconnect_delay_set(h, c.reconnectDelay.min, max(c.reconnectDelay.min, c.reconnectDelay.max), true))
        installCallbacks()
    }

    /// Connects and starts the network thread. A broker that cannot be reached now is retried
    /// (each failed attempt is reported as `.disconnected` with the reason).
    public func start() {
        let first = state.withLock { s -> Bool in
            defer { s.started = true }
            return !s.started && !s.closed
        }
        guard first else { return }
        mosquitto_user_data_set(handle.pointer, Unmanaged.passRetained(self).toOpaque())
        // The first connection is made from a thread of our own, retrying while the broker is
        // down; then libmosquitto's network thread takes over and reconnects by itself. (Its own
        // first connect cannot be relied on: a connect_async that fails before the network thread
        // runs is never retried, eclipse-mosquitto/mosquitto#1903, and one issued after it races
        // with it, #848. And MQTT 5 needs CONNECT properties, which only the blocking call takes.)
        let connector = Thread { [self] in self.connectUntilAnswered() }
        connector.name = "mqtt-connect"
        connector.start()
    }

    /// CONNECT (with a session expiry for MQTT 5) until the broker answers or the client is
    /// closed, then start the network thread.
    private func connectUntilAnswered() {
        let h = handle.pointer, c = configuration
        var delay = Double(max(1, c.reconnectDelay.min))
        while !state.withLock({ $0.closed }) {
            var code: Int32
            if c.protocolVersion == .v5 {
                var props: OpaquePointer? = nil
                mosquitto_property_add_int32(&props, Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue), c.cleanSession ? 0 : c.sessionExpirySeconds)
                code = mosquitto_connect_bind_v5(h, c.host, Int32(c.port), c.keepalive, nil, props)
                mosquitto_property_free_all(&props)
            } else {
                code = mosquitto_connect(h, c.host, Int32(c.port), c.keepalive)
            }
            if code == Int32(MOSQ_ERR_SUCCESS.rawValue) {
                let started = state.withLock { s -> Bool in
                    guard !s.closed else { return false }
                    s.loopRunning = mosquitto_loop_start(h) == Int32(MOSQ_ERR_SUCCESS.rawValue)
                    return s.loopRunning
                }
                if !started {
                    if state.withLock({ $0.closed }) {
                        mosquitto_disconnect(h)
                    } else {
                        continuation.yield(.disconnected(MQTTError(operation: "mosquitto_loop_start", code: -1, message: "the network thread did not start")))
                    }
                }
                return
            }
            continuation.yield(.disconnected(.call("connect to \(c.host):\(c.port)", code)))
            if code == Int32(MOSQ_ERR_INVAL.rawValue) { return }
            Thread.sleep(forTimeInterval: delay)
            delay = min(delay * 2, Double(max(c.reconnectDelay.min, c.reconnectDelay.max)))
        }
    }

    /// Disconnects, stops the network thread (`mosquitto_loop_stop`), then releases what C held.
    /// Publishes still waiting for an acknowledgement fail with `closed`.
    public func close() {
        let (wasStarted, loopRunning, waiters) = state.withLock { s -> (Bool, Bool, [CheckedContinuation<Void, any Error>]) in
            guard !s.closed else { return (false, false, []) }
            s.closed = true
            defer { s.waiters.removeAll() }
            return (s.started, s.loopRunning, Array(s.waiters.values))
        }
        for w in waiters { w.resume(throwing: MQTTError(operation: "publish", code: -1, message: "the client was closed before the broker acknowledged it")) }
        if wasStarted {
            // Without the network thread, the connector thread still owns the connection attempt:
            // it sees `closed` and disconnects itself.
            if loopRunning {
                mosquitto_disconnect(handle.pointer)
                mosquitto_loop_stop(handle.pointer, false)
            }
            // No callback can run now: give back the reference C held.
            Unmanaged.passUnretained(self).release()
            mosquitto_user_data_set(handle.pointer, nil)
        }
        continuation.finish()
    }

    public var isConnected: Bool { state.withLock { $0.connected } }

    /// Subscribes now if connected, and again after every reconnection.
    public func subscribe(_ filter: String, qos: Int32) throws(MQTTError) {
        guard (0...2).contains(qos) else { throw MQTTError(operation: "subscribe \(filter)", code: -1, message: "QoS must be 0, 1 or 2") }
        guard mosquitto_sub_topic_check(filter) == Int32(MOSQ_ERR_SUCCESS.rawValue) else {
            throw MQTTError(operation: "subscribe", code: -1, message: "'\(filter)' is not a valid topic filter")
        }
        let connected = state.withLock { s -> Bool in
            s.subscriptions.append((filter, qos))
            return s.connected
        }
        if connected {
            try MQTTError.check("subscribe \(filter)", mosquitto_subscribe(handle.pointer, nil, filter, qos))
        }
    }

    /// Queues a publish and returns its message id; libmosquitto sends it when connected and, for
    /// QoS 1 and 2, until the broker acknowledges it.
    @discardableResult
    public func publish(topic: String, payload: [UInt8], qos: Int32, retain: Bool = false) throws(MQTTError) -> Int32 {
        var mid: Int32 = 0
        let code = payload.withUnsafeBytes { mosquitto_publish(handle.pointer, &mid, topic, Int32($0.count), $0.baseAddress, qos, retain) }
        try MQTTError.check("publish to \(topic)", code)
        return mid
    }

    /// Publishes and returns once the broker has acknowledged the message (QoS 1: PUBACK).
    public func publishAcknowledged(topic: String, payload: [UInt8], qos: Int32 = 1, retain: Bool = false) async throws {
        state.withLock { $0.registering += 1 }
        let mid: Int32
        do {
            mid = try publish(topic: topic, payload: payload, qos: qos, retain: retain)
        } catch {
            state.withLock { Self.doneRegistering(&$0) }
            throw error
        }
        try await acknowledgement(of: mid, topic: topic)
    }

    /// Publishes `messages` in the order given — one `mosquitto_publish` after another, so they
    /// leave in that order — then waits for the broker's acknowledgements. Returns how many, from
    /// the first, were acknowledged; after a publish that fails, the rest are not sent.
    public func publishAcknowledged(_ messages: [(topic: String, payload: [UInt8])], qos: Int32 = 1) async -> Int {
        state.withLock { $0.registering += messages.count }
        var mids: [Int32] = []
        for m in messages {
            guard let mid = try? publish(topic: m.topic, payload: m.payload, qos: qos) else { break }
            mids.append(mid)
        }
        let unsent = messages.count - mids.count
        if unsent > 0 { state.withLock { s in for _ in 0..<unsent { Self.doneRegistering(&s) } } }
        var acknowledged = 0
        var inOrder = true
        for (mid, m) in zip(mids, messages) {
            // Every sent message is waited for (each must register), counting only the unbroken prefix.
            let ok = (try? await acknowledgement(of: mid, topic: m.topic)) != nil
            inOrder = inOrder && ok
            if inOrder { acknowledged += 1 }
        }
        return acknowledged
    }

    /// Waits for the acknowledgement of a message this caller published (and counted in `registering`).
    private func acknowledgement(of mid: Int32, topic: String) async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let outcome = state.withLock { s -> Result<Void, MQTTError>? in
                defer { Self.doneRegistering(&s) }
                if s.early.remove(mid) != nil { return .success(()) }
                if s.closed { return .failure(MQTTError(operation: "publish to \(topic)", code: -1, message: "the client was closed before the broker acknowledged it")) }
                s.waiters[mid] = c
                return nil
            }
            if let outcome { c.resume(with: outcome) }
        }
    }

    /// One publisher has registered; with none left, no early acknowledgement can be claimed.
    static func doneRegistering(_ s: inout State) {
        s.registering -= 1
        if s.registering == 0 { s.early.removeAll() }
    }

    deinit {
        // Only reachable when C holds no reference: never started, or closed.
        mosquitto_destroy(handle.pointer)
    }
}
