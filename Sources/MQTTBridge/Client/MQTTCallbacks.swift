internal import CMosquitto
import Synchronization

/// libmosquitto's callbacks. They run on its network thread and do the least possible: copy what C
/// lent them, update a little state under the client's lock, and yield an event.
extension MQTTClient {
    static func client(_ obj: UnsafeMutableRawPointer?) -> MQTTClient? {
        obj.map { Unmanaged<MQTTClient>.fromOpaque($0).takeUnretainedValue() }
    }

    func installCallbacks() {
        let h = handle.pointer
        mosquitto_connect_with_flags_callback_set(h) { mosq, obj, rc, flags in
            guard let client = MQTTClient.client(obj) else { return }
            guard rc == 0 else {
                client.continuation.yield(.refused(.connack(rc)))
                return
            }
            let subscriptions = client.state.withLock { s in
                s.connected = true
                return s.subscriptions
            }
            // Subscriptions are renewed on every connection, in case the broker lost the session.
            for s in subscriptions { mosquitto_subscribe(mosq, nil, s.filter, s.qos) }
            client.continuation.yield(.connected(sessionPresent: flags & 1 == 1))
        }
        mosquitto_disconnect_callback_set(h) { _, obj, rc in
            guard let client = MQTTClient.client(obj) else { return }
            client.state.withLock { $0.connected = false }
            client.continuation.yield(.disconnected(rc == 0 ? nil : .call("connection", rc)))
        }
        mosquitto_message_callback_set(h) { _, obj, message in
            guard let client = MQTTClient.client(obj), let m = message?.pointee else { return }
            let payload = m.payloadlen > 0 && m.payload != nil ? Array(UnsafeRawBufferPointer(start: m.payload, count: Int(m.payloadlen))) : []
            client.continuation.yield(.message(MQTTMessage(topic: String(cString: m.topic), payload: payload, qos: m.qos, retain: m.retain)))
        }
        mosquitto_publish_callback_set(h) { _, obj, mid in
            guard let client = MQTTClient.client(obj) else { return }
            let waiter = client.state.withLock { s -> CheckedContinuation<Void, any Error>? in
                if let w = s.waiters.removeValue(forKey: mid) { return w }
                // Keep it only for a publisher that has not registered yet.
                if s.registering > 0 { s.early.insert(mid) }
                return nil
            }
            waiter?.resume()
            client.continuation.yield(.published(mid: mid))
        }
        mosquitto_log_callback_set(h) { _, obj, level, text in
            guard level & Int32(MOSQ_LOG_ERR) != 0, let client = MQTTClient.client(obj), let text else { return }
            client.continuation.yield(.failed(MQTTError(operation: "network", code: -1, message: String(cString: text))))
        }
        mosquitto_subscribe_callback_set(h) { _, obj, mid, count, granted in
            guard let client = MQTTClient.client(obj) else { return }
            let list = granted.map { Array(UnsafeBufferPointer(start: $0, count: Int(count))) } ?? []
            client.continuation.yield(.subscribed(mid: mid, granted: list))
        }
    }
}
