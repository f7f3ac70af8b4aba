import Foundation
import Synchronization

/// Which devices have a sender connected (`/object/{id}/send`), and who watches that (`/status`).
public final class DevicePresence: Sendable {
    private struct State {
        var senders: [String: Int] = [:]
        var watchers: [String: [UInt64: AsyncStream<Bool>.Continuation]] = [:]
        var next: UInt64 = 1
    }

    private let state = Mutex(State())

    public init() {}

    public func isAlive(_ device: String) -> Bool { state.withLock { ($0.senders[device] ?? 0) > 0 } }

    /// A sender connected; watchers hear `true` when it is the device's first.
    public func senderConnected(_ device: String) {
        let notify: [AsyncStream<Bool>.Continuation] = state.withLock { s in
            s.senders[device, default: 0] += 1
            return s.senders[device] == 1 ? Array((s.watchers[device] ?? [:]).values) : []
        }
        for c in notify { c.yield(true) }
    }

    /// A sender left; watchers hear `false` when it was the device's last.
    public func senderDisconnected(_ device: String) {
        let notify: [AsyncStream<Bool>.Continuation] = state.withLock { s in
            let n = max(0, (s.senders[device] ?? 1) - 1)
            s.senders[device] = n == 0 ? nil : n
            return n == 0 ? Array((s.watchers[device] ?? [:]).values) : []
        }
        for c in notify { c.yield(false) }
    }

    /// Changes of `device`'s liveness, starting with its current state.
    public func watch(_ device: String) -> (id: UInt64, changes: AsyncStream<Bool>) {
        let (stream, continuation) = AsyncStream.makeStream(of: Bool.self, bufferingPolicy: .bufferingNewest(8))
        let id: UInt64 = state.withLock { s in
            let id = s.next
            s.next += 1
            s.watchers[device, default: [:]][id] = continuation
            continuation.yield((s.senders[device] ?? 0) > 0)
            return id
        }
        return (id, stream)
    }

    public func unwatch(_ device: String, id: UInt64) {
        let c = state.withLock { s -> AsyncStream<Bool>.Continuation? in
            let c = s.watchers[device]?.removeValue(forKey: id)
            if s.watchers[device]?.isEmpty == true { s.watchers[device] = nil }
            return c
        }
        c?.finish()
    }
}
