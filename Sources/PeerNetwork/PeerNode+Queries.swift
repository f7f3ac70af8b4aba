import Chord
import FlowchainCrypto
import FlowchainWire
import Foundation
import Ledger
import Logging

/// Queries anywhere: a device's owner answers, a replica when it is down, and the node that took
/// keys over answers from its own chain merged with the copies it holds.
extension PeerNode {

    /// Where a device query is answered.
    public enum QueryRoute: Sendable {
        /// By this node (it owns the device, or is alone).
        case local
        /// By the owner: the method's result (JSON).
        case answered([UInt8])
        /// The owner refused the query, as a JSON-RPC error.
        case refused(QueryError)
        /// No node that holds the device's readings could be asked.
        case unreachable(String)
        /// By this node, from these stores merged: its own chain (tag 0) and copies of other
        /// nodes' chains holding the device's readings.
        case stores([(tag: Int64, store: LedgerStore)])
    }

    /// Sends a query about `device` to its owner, unless this node owns it.
    public func route(method: String, params: [UInt8], device: String) async -> QueryRoute {
        guard let driver, !driver.view.alone else { return .local }
        let key = RingRouter.key(ofDevice: device)
        if driver.view.owns(key) { return merged(device) }
        switch await router.owner(of: key, driver: driver) {
        case let .failure(e):
            return .unreachable("no route to the owner of device \(device): \(e)")
        case let .success(owner) where owner.id == transport.id:
            return merged(device)
        case let .success(owner):
            let first = await ask(owner, method: method, params: params, segment: nil)
            guard case let .unreachable(why) = first else { return first }
            router.forget(owner: owner.id)
            return await askCopy(of: owner.id, method: method, params: params, driver: driver, why: "owner \(owner.address) of device \(device): \(why)")
        }
    }

    /// Sends a query about the segment chain of the node with key `owner` (`block`, `blocks`) to
    /// that node, or, when it is down or gone, to the successor that keeps a copy of its chain.
    public func route(method: String, params: [UInt8], chainOf owner: PublicKey) async -> QueryRoute {
        let id = ChordID.hashing(owner.bytes)
        if id == transport.id { return .local }
        guard let driver, !driver.view.alone else { return copyHere(of: id).map { .stores([$0]) } ?? .refused(Self.noChain(owner)) }
        switch await driver.lookup(id) {
        case let .failure(e):
            return .unreachable("no route to node \(owner.hex.prefix(16)): \(e)")
        case let .success(found) where found.successor.id == id:
            let first = await ask(found.successor, method: method, params: params, segment: nil)
            guard case let .unreachable(why) = first else { return first }
            return await askCopy(of: id, method: method, params: params, driver: driver, why: "node \(found.successor.address): \(why)")
        case let .success(found):
            // That node is not in the ring (now): its successor keeps a copy of its chain.
            if found.successor.id == transport.id { return copyHere(of: id).map { .stores([$0]) } ?? .refused(Self.noChain(owner)) }
            let answer = await ask(found.successor, method: method, params: params, segment: id)
            if case let .refused(e) = answer, e.code == Self.noCopyCode { return .refused(Self.noChain(owner)) }
            return answer
        }
    }

    static func noChain(_ owner: PublicKey) -> QueryError {
        QueryError(code: -32004, message: "no node of this ring keeps the chain of \(owner.hex)")
    }

    /// This node's copy of the chain of the node with this id, tagged.
    func copyHere(of id: ChordID) -> (tag: Int64, store: LedgerStore)? {
        guard let copy = replicas.owners().first(where: { ChordID.hashing($0.bytes) == id }),
              let store = try? replicas.store(for: copy, create: false) else { return nil }
        return (Self.tag(copy), store)
    }

    /// The node with id `id` could not be asked: asks the successor that keeps a copy of its chain.
    private func askCopy(of id: ChordID, method: String, params: [UInt8], driver: ChordDriver, why: String) async -> QueryRoute {
        guard case let .success(found) = await driver.lookup(id &+ ChordID(1)), found.successor.id != id else {
            return .unreachable("\(why); no replica found")
        }
        let next = found.successor
        if next.id == transport.id {
            guard let copy = copyHere(of: id) else { return .unreachable("\(why); this node holds no copy of its chain") }
            return .stores([copy])
        }
        let second = await ask(next, method: method, params: params, segment: id)
        if case let .unreachable(why2) = second { return .unreachable("\(why); its replica \(next.address): \(why2)") }
        return second
    }

    static let noCopyCode = -32011

    func ask(_ node: NodeRef, method: String, params: [UInt8], segment: ChordID?) async -> QueryRoute {
        var w = JSONWriter()
        w.beginObject(); w.field("method", method); w.key("params"); w.raw(params)
        if let segment { w.field("segment", segment.hex) }
        w.endObject()
        do {
            let c = try await transport.connection(to: node)
            switch await c.request(.query, w.bytes, timeout: .seconds(10)) {
            case let .success(body): return .answered(body)
            case let .failure(.refused(_, text)):
                let v = try? JSONValue(parsing: Array(text.utf8))
                return .refused(QueryError(code: Int(v?["code"]?.int64Value ?? -32603), message: v?["message"]?.stringValue ?? text))
            case let .failure(e):
                return .unreachable("\(e)")
            }
        } catch {
            return .unreachable("\(error)")
        }
    }

    /// Where the node that owns `device` answers from: its own chain (tag 0), merged with the
    /// copies of other nodes' chains that hold readings of the device (their owner failed or
    /// left, and this node took its keys over). Empty: its own chain alone.
    func storesHolding(_ device: String) -> [(tag: Int64, store: LedgerStore)] {
        var out: [(tag: Int64, store: LedgerStore)] = []
        for owner in replicas.owners() {
            if let s = try? replicas.store(for: owner, create: false), (try? s.lastSeq(device: device)) ?? nil != nil { out.append((Self.tag(owner), s)) }
        }
        return out.isEmpty ? [] : [(0, router.engine.store)] + out
    }

    func merged(_ device: String) -> QueryRoute {
        let stores = storesHolding(device)
        return stores.isEmpty ? .local : .stores(stores)
    }

    /// Every copy of another node's chain this node keeps, tagged.
    public func copies() -> [(tag: Int64, store: LedgerStore)] {
        copiesByOwner().map { (Self.tag($0.owner), $0.store) }
    }

    /// Every copy of another node's chain this node keeps, with its owner (retention applies the
    /// node's own policy to each).
    public func copiesByOwner() -> [(owner: PublicKey, store: LedgerStore)] {
        replicas.owners().compactMap { owner in (try? replicas.store(for: owner, create: false)).flatMap { $0.map { (owner, $0) } } }
    }

    /// Asks the nodes this one knows, nearest first, until one answers (a reading by id that no
    /// chain here holds). At most 16 are asked.
    public func find(method: String, params: [UInt8]) async -> QueryRoute {
        guard let driver, !driver.view.alone else { return .local }
        var lastRefusal: QueryRoute = .refused(QueryError(code: -32004, message: "not found anywhere in the ring"))
        var unreachable: [String] = []
        for node in await driver.status().known.dropFirst().prefix(16) {
            switch await ask(node, method: method, params: params, segment: nil) {
            case let .answered(body): return .answered(body)
            case let .unreachable(why): unreachable.append("\(node.address): \(why)")
            case let other: lastRefusal = other
            }
        }
        if case let .refused(e) = lastRefusal, e.code == -32004, !unreachable.isEmpty {
            return .unreachable("not found at the nodes that answered; \(unreachable.joined(separator: "; "))")
        }
        return lastRefusal
    }

    /// A copy's tag in merged cursors: 1 + 20 bits of its owner's key (its own chain is 0).
    static func tag(_ owner: PublicKey) -> Int64 {
        let b = owner.bytes
        return 1 + (Int64(b[0]) << 12 | Int64(b[1]) << 4 | Int64(b[2]) >> 4)
    }

    /// The highest seq of `device` in the copies of other nodes' chains: where this node's
    /// numbering continues after the device's keys moved to it.
    public func replicatedLastSeq(_ device: String) -> UInt64? {
        var best: UInt64? = nil
        for owner in replicas.owners() {
            if let s = try? replicas.store(for: owner, create: false), let seq = (try? s.lastSeq(device: device)) ?? nil { best = max(best ?? 0, seq) }
        }
        return best
    }

    func serveQuery(_ body: [UInt8]) async -> (PeerStatus, [UInt8]) {
        guard let v = try? JSONValue(parsing: body), let method = v["method"]?.stringValue, let params = v["params"] else {
            return (.error, Array(#"{"code":-32600,"message":"malformed forwarded query"}"#.utf8))
        }
        var w = JSONWriter()
        w.value(params)
        var stores: [(tag: Int64, store: LedgerStore)] = []
        if let segment = v["segment"]?.stringValue {
            // Asked as a replica: answer from the copy of that node's chain.
            guard let id = ChordID(hex: segment), let copy = copyHere(of: id) else {
                return (.error, Array(#"{"code":-32011,"message":"this node holds no copy of that node's chain"}"#.utf8))
            }
            stores = [copy]
        } else if method == "reading" || method == "proof" {
            stores = [(0, router.engine.store)] + copies()
        } else if let device = params["device"]?.stringValue {
            stores = storesHolding(device)
        }
        switch await localQuery(method, w.bytes, stores) {
        case let .success(result): return (.ok, result)
        case let .failure(e):
            var w = JSONWriter()
            w.beginObject(); w.field("code", e.code); w.field("message", e.message); w.endObject()
            return (.error, w.bytes)
        }
    }
}

extension PeerNode {
    /// The payload of `device`'s newest reading (highest seq), wherever in the ring it is stored;
    /// nil when it has none or no node holding its readings could be asked.
    public func newestPayload(of device: String) async -> JSONValue? {
        func ask(_ afterSeq: Int64) async -> JSONValue? {
            var w = JSONWriter()
            w.beginObject(); w.field("device", device); w.field("afterSeq", afterSeq); w.field("limit", 1); w.endObject()
            switch await route(method: "readings", params: w.bytes, device: device) {
            case .local:
                return localPage(device, afterSeq, [router.engine.store])
            case let .stores(stores):
                return localPage(device, afterSeq, stores.map(\.store))
            case let .answered(body):
                return try? JSONValue(parsing: body)
            case .refused, .unreachable:
                return nil
            }
        }
        guard let newest = await ask(Int64.max - 1)?["newestSeq"]?.int64Value,
              let reading = await ask(newest - 1)?["readings"]?.arrayValue?.first else { return nil }
        return reading["payload"]
    }

    private func localPage(_ device: String, _ afterSeq: Int64, _ stores: [LedgerStore]) -> JSONValue? {
        guard let items = try? LedgerStore.readings(in: stores, device: device, afterSeq: afterSeq, limit: 1) else { return nil }
        let newest = stores.compactMap { (try? $0.lastSeq(device: device)) ?? nil }.max()
        var out: [String: JSONValue] = ["readings": .array(items.compactMap { (try? JSONValue(parsing: $0.reading.payload)).map { ["payload": $0] } })]
        if let newest { out["newestSeq"] = .number(String(newest)) }
        return .object(out)
    }
}
