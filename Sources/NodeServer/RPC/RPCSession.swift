import FlowchainWire
import FlowchainCrypto
import Foundation
import Ledger
import Synchronization

/// One `/rpc` connection's state: what it may do and its live subscriptions.
final class RPCSession: Sendable {
    let services: NodeServices
    /// The credential the client connected with (`?token=` or a bearer header), if any.
    let token: String?
    let mayRead: Bool
    /// A query another node of the ring forwarded here: answered from this node's store only.
    let forwarded: Bool
    /// Where reads are answered from, when not just this node's own chain: tagged stores (its
    /// own and copies of other nodes' chains), merged.
    let stores: [(tag: Int64, store: LedgerStore)]
    /// Sends one text message to the client; returns false once the connection is gone.
    let send: @Sendable ([UInt8]) async -> Bool
    private let subscriptions = Mutex<[UInt64: Task<Void, Never>]>([:])
    private let nextID = Atomic<UInt64>(1)

    /// Most live subscriptions one connection may hold.
    static let maxSubscriptions = 64

    init(services: NodeServices, token: String?, forwarded: Bool = false, stores: [(tag: Int64, store: LedgerStore)] = [], send: @escaping @Sendable ([UInt8]) async -> Bool) {
        self.services = services
        self.token = token
        self.forwarded = forwarded
        self.stores = stores
        mayRead = services.mayRead(presented: token)
        self.send = send
    }

    /// `subscribe {topic: "readings"|"blocks", device?, cursor?}` → `{subscription, cursor}`.
    /// With a cursor, everything after it is replayed from the store first, so a client that
    /// reconnects with the last cursor it saw misses nothing and sees nothing twice.
    func subscribe(_ p: [String: JSONValue]) async throws(RPCError) -> [UInt8] {
        let topicName = p["topic"]?.stringValue ?? "readings"
        if let given = p["device"], given.stringValue == nil { throw .invalidParams("'device' must be a string") }
        let device = p["device"]?.stringValue
        if let device, let why = DeviceID.problem(with: device) { throw .invalidParams(why) }
        // Cursors are range-checked here, where they enter: a readings cursor is an arrival
        // position (≥ 0), a blocks cursor the height of the last block seen (−1: none yet).
        let cursor: Int64?
        do {
            cursor = try ReadingWire.optionalInt(p["cursor"], "cursor", in: topicName == "blocks" ? -1...(Int64.max - 1) : 0...Int64.max)
        } catch { throw .invalidParams(error.description) }
        let afterSeq: Int64?
        do { afterSeq = try ReadingWire.optionalInt(p["afterSeq"], "afterSeq", in: -1...(Int64.max - 1)) } catch { throw .invalidParams(error.description) }
        if afterSeq != nil {
            guard topicName == "readings", device != nil else { throw .invalidParams("'afterSeq' needs the readings topic and a 'device'") }
            guard cursor == nil else { throw .invalidParams("give 'cursor' (a position on this node) or 'afterSeq' (a device's seq), not both") }
        }
        guard subscriptions.withLock({ $0.count }) < Self.maxSubscriptions else { throw .tooManySubscriptions }
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let start: Int64
        switch topicName {
        case "readings" where device != nil && cursor == nil && (afterSeq != nil || services.ring != nil):
            // Followed by seq, from whichever node stores the device's readings now (in a ring,
            // its owner; after keys move, the next one), so it works the same at every node.
            let device = device!
            let dispatcher = RPCDispatcher(services: services, session: self)
            var from = afterSeq ?? -1
            if afterSeq == nil {
                // Starts now: after the device's newest seq, as its owner knows it.
                let probe = try await dispatcher.readingsAnywhere(["device": .string(device), "afterSeq": .number(String(Int64.max - 1)), "limit": .number("1")])
                from = (try? JSONValue(parsing: probe))?["newestSeq"]?.int64Value ?? -1
            }
            do { start = try await services.store.offload { try $0.lastCursor() } } catch { throw .internalError("\(error)") }
            let first = from
            launch(id) { await self.follow(id: id, device: device, after: first, via: dispatcher) }
            var w = JSONWriter()
            w.beginObject(); w.field("subscription", id); w.field("cursor", start); w.field("afterSeq", first); w.endObject()
            return w.bytes
        case "readings":
            let sub = services.feed.subscribe(.readings(device: device))
            do { if let cursor { start = cursor } else { start = try await services.store.offload { try $0.lastCursor() } } } catch { services.feed.unsubscribe(sub); throw .internalError("\(error)") }
            launch(id) { await self.streamReadings(id: id, subscription: sub, after: start, device: device) }
        case "blocks":
            guard device == nil else { throw .invalidParams("'device' applies to the readings topic only") }
            let sub = services.feed.subscribe(.blocks)
            if let cursor { start = cursor } else { start = await services.engine.snapshot().tip.map { Int64($0.height) } ?? -1 }
            launch(id) { await self.streamBlocks(id: id, subscription: sub, after: start) }
        default:
            throw .invalidParams("'topic' must be \"readings\" or \"blocks\"")
        }
        var w = JSONWriter()
        w.beginObject(); w.field("subscription", id); w.field("cursor", start); w.endObject()
        return w.bytes
    }

    private func launch(_ id: UInt64, _ body: @escaping @Sendable () async -> Void) {
        let task = Task { await body() }
        subscriptions.withLock { $0[id] = task }
    }

    func unsubscribe(_ id: UInt64) -> Bool {
        guard let task = subscriptions.withLock({ $0.removeValue(forKey: id) }) else { return false }
        task.cancel()
        return true
    }

    /// Ends every subscription (the connection closed).
    func close() {
        let all = subscriptions.withLock { d in defer { d.removeAll() }; return Array(d.values) }
        for t in all { t.cancel() }
    }

    private func notify(_ id: UInt64, _ body: (inout JSONWriter) -> Void) async -> Bool {
        await send(RPCResponse.notification(method: "subscription") { w in
            w.beginObject()
            w.field("subscription", id)
            body(&w)
            w.endObject()
        })
    }

    private func streamReadings(id: UInt64, subscription sub: CommitFeed.Subscription, after start: Int64, device: String?) async {
        defer { services.feed.unsubscribe(sub) }
        var last = start
        var seenDrops = 0
        guard await replayReadings(id: id, after: &last, device: device) else { return }
        for await event in sub.events {
            if Task.isCancelled { return }
            if sub.dropped > seenDrops {
                // This subscriber fell behind and live events were dropped: tell it, then fill the
                // gap from the store so it still sees every reading once.
                seenDrops = sub.dropped
                guard await notify(id, { $0.field("dropped", seenDrops) }) else { return }
                guard await replayReadings(id: id, after: &last, device: device) else { return }
            }
            guard case let .reading(r) = event, r.rowid > last else { continue }
            guard await notify(id, { w in w.key("reading"); ReadingWire.write(r, into: &w) }) else { return }
            last = r.rowid
        }
    }

    /// Follows a device by seq through `readings {afterSeq, wait}` (routed like any query):
    /// each answer lists what came after the last seq sent, or waits up to 4 s for it. While no
    /// node holding the device's readings can be asked, it retries (backing off to 5 s).
    private func follow(id: UInt64, device: String, after start: Int64, via dispatcher: RPCDispatcher) async {
        var after = start
        var failures = 0
        while !Task.isCancelled {
            let params: [String: JSONValue] = ["device": .string(device), "afterSeq": .number(String(after)), "limit": .number("500"),
                                               "wait": .number("4000"), "encoded": .bool(true)]
            guard let answer = try? await dispatcher.readingsAnywhere(params), let list = (try? JSONValue(parsing: answer))?["readings"]?.arrayValue else {
                failures += 1
                try? await Task.sleep(for: .milliseconds(min(5000, 250 * failures)))
                continue
            }
            failures = 0
            for item in list {
                guard let hex = item["encoded"]?.stringValue, let bytes = Hex.decode(hex), let r = try? Reading(encoded: bytes),
                      r.device == device, Int64(bitPattern: r.seq) > after else { continue }
                let stored = StoredReading(reading: r, rowid: item["cursor"]?.int64Value ?? 0,
                                           block: item["block"]?.int64Value.map { UInt64($0) }, leaf: item["leaf"]?.int64Value.map { UInt32($0) })
                guard await notify(id, { w in w.key("reading"); ReadingWire.write(stored, into: &w) }) else { return }
                after = Int64(bitPattern: r.seq)
            }
        }
    }

    private func replayReadings(id: UInt64, after last: inout Int64, device: String?) async -> Bool {
        while !Task.isCancelled {
            let after = last
            guard let page = try? await services.store.offload({ try $0.readings(afterCursor: after, device: device, limit: 500) }) else { return false }
            for r in page {
                guard await notify(id, { w in w.key("reading"); ReadingWire.write(r, into: &w) }) else { return false }
                last = r.rowid
            }
            if page.count < 500 { return true }
        }
        return false
    }

    private func streamBlocks(id: UInt64, subscription sub: CommitFeed.Subscription, after start: Int64) async {
        defer { services.feed.unsubscribe(sub) }
        var last = start
        var seenDrops = 0
        guard await replayBlocks(id: id, after: &last) else { return }
        for await event in sub.events {
            if Task.isCancelled { return }
            if sub.dropped > seenDrops {
                seenDrops = sub.dropped
                guard await notify(id, { $0.field("dropped", seenDrops) }), await replayBlocks(id: id, after: &last) else { return }
            }
            guard case let .block(b) = event, Int64(b.height) > last else { continue }
            guard await notify(id, { w in w.key("block"); ReadingWire.write(b, into: &w) }) else { return }
            last = Int64(b.height)
        }
    }

    private func replayBlocks(id: UInt64, after last: inout Int64) async -> Bool {
        while !Task.isCancelled {
            guard last < Int64.max else { return false }
            let from = UInt64(max(0, last + 1))
            guard let page = try? await services.store.offload({ try $0.blocks(from: from, limit: 200) }) else { return false }
            for b in page {
                guard await notify(id, { w in w.key("block"); ReadingWire.write(b, into: &w) }) else { return false }
                last = Int64(b.height)
            }
            if page.count < 200 { return true }
        }
        return false
    }
}
