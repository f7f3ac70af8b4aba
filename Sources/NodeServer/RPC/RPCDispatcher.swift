import FlowchainWire
import FlowchainCrypto
import Foundation
import Ledger
import Logging

/// Carries out the JSON-RPC methods listed in docs/rpc.md for one connection.
struct RPCDispatcher: Sendable {
    let services: NodeServices
    let session: RPCSession

    /// The response bytes for `request`, or nil for a notification. `turn` is the request's place
    /// in its connection's submission order; it is always finished when this returns.
    func handle(_ request: RPCRequest, turn: IngestTurn? = nil) async -> [UInt8]? {
        defer { turn?.finish() }
        let result = await self.result(of: request, turn: turn)
        if request.isNotification { return nil }
        switch result {
        case let .success(bytes): return RPCResponse.result(id: request.id) { $0.raw(bytes) }
        case let .failure(error): return RPCResponse.error(id: request.id, error)
        }
    }

    /// The method's result, or the error to answer with.
    func result(of request: RPCRequest, turn: IngestTurn? = nil) async -> Result<[UInt8], RPCError> {
        do {
            return .success(try await call(request, turn: turn))
        } catch {
            // Refused readings are counted by kind where they are ingested; everything else here.
            if !error.counted { services.metrics.error(error.kind ?? "rpc") }
            return .failure(error)
        }
    }

    /// The method's result as JSON bytes.
    private func call(_ r: RPCRequest, turn: IngestTurn?) async throws(RPCError) -> [UInt8] {
        let p = try r.object()
        if r.method == "submit" { return try await submit(p, turn: turn) }
        turn?.finish()
        if !session.mayRead { throw .unauthorized }
        if let ring = services.ring, !session.forwarded, r.method == "reading" || r.method == "proof" {
            // By id: this node's chain and its copies first, then the owner (given the device), then around the ring.
            let id = try readingID(p)
            let here = [(tag: Int64(0), store: services.store)] + ring.copies()
            // Held here, or pruned here by retention (answered as such): no need to ask the ring.
            let holder = try? await services.store.offload { _ in
                here.first { (try? $0.store.reading(id: id)) ?? nil != nil } ?? here.first { (try? $0.store.prunedReading(id: id)) ?? nil != nil }
            }
            if let holder = holder ?? nil {
                let local = RPCDispatcher(services: services, session: RPCSession(services: services, token: session.token, forwarded: true, stores: [holder]) { _ in false })
                return r.method == "reading" ? try await local.reading(p) : try await local.proof(p)
            }
            var w = JSONWriter()
            w.value(.object(p))
            let route: RingQueryRoute
            if let device = p["device"]?.stringValue {
                if let why = DeviceID.problem(with: device) { throw .invalidParams(why) }
                route = await ring.route(method: r.method, params: w.bytes, device: device)
            } else {
                route = await ring.find(method: r.method, params: w.bytes)
            }
            switch route {
            case .local, .stores: throw .notFound("reading \(id)")
            case let .answered(result): return result
            case let .refused(code, message): throw RPCError(code: code, message: message)
            case let .unreachable(why): throw RPCError(code: -32010, message: "reading \(id) is not here, and the nodes that may hold it could not be asked: \(why)", kind: "owner_unreachable")
            }
        }
        switch r.method {
        case "anchor":
            guard let a = services.anchorAccess else { throw .internalError("this node keeps no anchor chain") }
            return await a.status(account: try keyParam(p, required: false))
        case "stake":
            // The record is signed by the staker itself; writing to the node is all it needs.
            guard services.mayWrite(presented: session.token) else { throw .unauthorized }
            guard let a = services.anchorAccess else { throw .internalError("this node keeps no anchor chain") }
            guard let hex = p["record"]?.stringValue, let bytes = Hex.decode(hex) else { throw .invalidParams("'record' (a signed stake record in hex, as flowchain stake makes it) is required") }
            if let refusal = await a.submit(stake: bytes) { throw .invalidParams(refusal) }
            return json { $0.beginObject(); $0.field("accepted", true); $0.endObject() }
        case "ring":
            guard let ring = services.ring else { return json { $0.raw(Array(#"{"active":false,"reason":"this node runs without the peer network"}"#.utf8)) } }
            return await ring.status()
        case "readings": return try await readingsAnywhere(p)
        case "reading": return try await reading(p)
        case "proof": return try await proof(p)
        case "block": return try await block(p)
        case "blocks": return try await blocks(p)
        case "tip": return try await tip()
        case "info": return await info()
        case "devices": return try await devices()
        case "addDevice": return try await addDevice(p)
        case "rekeyDevice": return try await rekeyDevice(p)
        case "subscribe": return try await session.subscribe(p)
        case "unsubscribe":
            guard let id = try int(p["subscription"], "subscription", in: 1...Int64.max) else {
                throw .invalidParams("'subscription' (a positive integer) is required")
            }
            return json { $0.bool(session.unsubscribe(UInt64(id))) }
        default: throw .methodNotFound(r.method)
        }
    }

    private func json(_ body: (inout JSONWriter) -> Void) -> [UInt8] {
        var w = JSONWriter()
        body(&w)
        return w.bytes
    }

    /// `submit` one reading (the params are the reading) or many (`{"readings": […]}`, each with
    /// its own outcome). Readings enter the ledger in the order sent, on this connection too.
    private func submit(_ p: [String: JSONValue], turn: IngestTurn?) async throws(RPCError) -> [UInt8] {
        if let list = p["readings"] {
            guard let items = list.arrayValue, !items.isEmpty, items.count <= 1000 else {
                throw .invalidParams("'readings' must be an array of 1 to 1000 readings")
            }
            let outcomes = await services.ingest(items.map(Self.parse), presented: session.token, after: turn)
            return json { w in
                w.beginArray()
                for outcome in outcomes {
                    w.beginObject()
                    switch outcome {
                    case let .success(ack): w.key("ack"); ReadingWire.write(ack, into: &w)
                    case let .failure(e): w.key("error"); RPCError.refused(e).write(into: &w)
                    }
                    w.endObject()
                }
                w.endArray()
            }
        }
        switch await services.ingest([Self.parse(.object(p))], presented: session.token, after: turn)[0] {
        case let .success(ack): return json { ReadingWire.write(ack, into: &$0) }
        case let .failure(e): throw RPCError.refused(e)
        }
    }

    /// One submitted reading; a shape error comes back as `.malformed`, answered with -32602.
    static func parse(_ item: JSONValue) -> Result<Submission, IngestError> {
        guard case let .object(object) = item else { return .failure(.malformed("a reading must be a JSON object")) }
        do {
            return .success(try ReadingWire.submission(from: object, device: nil, defaultSource: .rpc))
        } catch {
            return .failure(.malformed(error.description))
        }
    }

    /// `addDevice {device, key?, token?}`: binds the device to `key` and/or gives it its own token
    /// (returned once). Needs the node's token.
    private func addDevice(_ p: [String: JSONValue]) async throws(RPCError) -> [UInt8] {
        guard services.mayAdminister(presented: session.token) else { throw .adminRequired }
        let device = try deviceParam(p)
        let key = try keyParam(p, required: false)
        let wantsToken = p["token"]?.boolValue ?? false
        guard key != nil || wantsToken else { throw .invalidParams("give 'key' (64 hex digits) and/or 'token': true") }
        let token: String?
        let record: DeviceRecord?
        do {
            let now = services.now()
            (token, record) = try await services.store.offload { store in
                if let key { try store.register(device: device, key: key, now: now) }
                return (wantsToken ? try store.issueToken(device: device, now: now) : nil, try store.device(device))
            }
        } catch let e as DeviceRegistrationError {
            throw .invalidParams(e.description)
        } catch {
            throw .internalError("\(error)")
        }
        services.logger.notice("device \(device) registered over RPC: \(key.map { "key \($0)" } ?? "")\(wantsToken ? " new device token" : "")")
        return json { w in
            w.beginObject()
            w.field("device", device)
            w.key("signer"); if let s = record?.signer { w.string(s.hex) } else { w.null() }
            w.key("token"); if let token { w.string(token) } else { w.null() }
            w.endObject()
        }
    }

    /// `rekeyDevice {device, key}`: re-binds the device to a new key. Needs the node's token; logged.
    private func rekeyDevice(_ p: [String: JSONValue]) async throws(RPCError) -> [UInt8] {
        guard services.mayAdminister(presented: session.token) else { throw .adminRequired }
        let device = try deviceParam(p)
        guard let key = try keyParam(p, required: true) else { throw .invalidParams("'key' is required") }
        let old: PublicKey?
        do {
            let now = services.now()
            old = try await services.store.offload { try $0.rekey(device: device, key: key, now: now).old }
        } catch let e as DeviceRegistrationError {
            throw .invalidParams(e.description)
        } catch {
            throw .internalError("\(error)")
        }
        services.logger.notice("device \(device) re-keyed over RPC: \(old.map(\.hex) ?? "unbound") -> \(key.hex)")
        return json { w in
            w.beginObject()
            w.field("device", device)
            w.field("signer", key.hex)
            w.key("previous"); if let old { w.string(old.hex) } else { w.null() }
            w.endObject()
        }
    }

    private func deviceParam(_ p: [String: JSONValue]) throws(RPCError) -> String {
        guard let device = p["device"]?.stringValue else { throw .invalidParams("'device' (a string) is required") }
        if let why = DeviceID.problem(with: device) { throw .invalidParams("'device': \(why)") }
        return device
    }

    private func keyParam(_ p: [String: JSONValue], required: Bool) throws(RPCError) -> PublicKey? {
        guard let value = p["key"] else {
            if required { throw .invalidParams("'key' (64 hex digits, an Ed25519 public key) is required") }
            return nil
        }
        guard let hex = value.stringValue, let bytes = Hex.decode(hex), bytes.count == 32, let key = try? PublicKey(bytes: bytes) else {
            throw .invalidParams("'key' must be 64 hex digits (an Ed25519 public key)")
        }
        return key
    }

    /// `readings`, answered in a ring by the device's owner (or the node holding a copy of its
    /// chain when it is down), else here.
    func readingsAnywhere(_ p: [String: JSONValue]) async throws(RPCError) -> [UInt8] {
        if let ring = services.ring, !session.forwarded, let device = p["device"]?.stringValue {
            if let why = DeviceID.problem(with: device) { throw .invalidParams(why) }
            var w = JSONWriter()
            w.value(.object(p))
            switch await ring.route(method: "readings", params: w.bytes, device: device) {
            case .local: break
            case let .stores(stores):
                let forwarded = RPCDispatcher(services: services, session: RPCSession(services: services, token: session.token, forwarded: true, stores: stores) { _ in false })
                return try await forwarded.readings(p)
            case let .answered(result): return result
            case let .refused(code, message): throw RPCError(code: code, message: message)
            case let .unreachable(why): throw RPCError(code: -32010, message: "device \(device) belongs to another node of the ring, which could not be asked: \(why)", kind: "owner_unreachable")
            }
        }
        return try await readings(p)
    }

    func readings(_ p: [String: JSONValue]) async throws(RPCError) -> [UInt8] {
        guard let device = p["device"]?.stringValue else { throw .invalidParams("'device' (a string) is required") }
        if let why = DeviceID.problem(with: device) { throw .invalidParams(why) }
        if p["afterSeq"] != nil || p["wait"] != nil { return try await follow(p, device: device) }
        let from = try int(p["from"], "from") ?? .min
        let to = try int(p["to"], "to") ?? .max
        let limit = Int(try int(p["limit"], "limit") ?? 100)
        guard (1...1000).contains(limit) else { throw .invalidParams("'limit' must be 1…1000") }
        var cursor: ReadingCursor? = nil
        if let c = p["cursor"] {
            guard let text = c.stringValue, let parsed = ReadingCursor(text) else { throw .invalidParams("'cursor' must be a cursor string from a previous page") }
            cursor = parsed
        }
        let page: Page<StoredReading>
        let after = cursor
        let stores = session.stores
        do {
            if stores.isEmpty {
                page = try await services.store.offload { try $0.readings(device: device, from: from, to: to, limit: limit, after: after) }
            } else {
                page = try await services.store.offload { _ in try LedgerStore.readings(in: stores, device: device, from: from, to: to, limit: limit, after: after) }
            }
        } catch { throw .internalError("\(error)") }
        return json { ReadingWire.write(page, into: &$0) }
    }

    /// Longest a `readings` call may wait for a device's next reading (a forwarded query is given 10 s).
    static let maxWait: Int64 = 5000

    /// `readings {"device","afterSeq"[,"limit","wait"]}`: the device's readings with seq above
    /// `afterSeq`, in seq order: `{"device","readings":[…],"lastSeq","newestSeq"}`, where `lastSeq`
    /// is the seq to pass next time and `newestSeq` the device's highest seq stored. With `wait`
    /// (ms) and nothing to list yet, the answer waits that long for the device's next reading.
    private func follow(_ p: [String: JSONValue], device: String) async throws(RPCError) -> [UInt8] {
        for name in ["from", "to", "cursor"] where p[name] != nil { throw .invalidParams("'\(name)' does not combine with 'afterSeq' (readings in seq order)") }
        let after = try int(p["afterSeq"], "afterSeq", in: -1...(Int64.max - 1)) ?? -1
        let limit = Int(try int(p["limit"], "limit", in: 1...1000) ?? 100)
        let wait = try int(p["wait"], "wait", in: 0...Self.maxWait) ?? 0
        let encoded = p["encoded"]?.boolValue ?? false
        let stores = session.stores.isEmpty ? [services.store] : session.stores.map(\.store)
        func page() async throws(RPCError) -> (items: [StoredReading], newest: Int64?) {
            do {
                return try await services.store.offload { _ in
                    let items = try LedgerStore.readings(in: stores, device: device, afterSeq: after, limit: limit)
                    let newest = try stores.compactMap { try $0.lastSeq(device: device) }.max()
                    return (items, newest.map { Int64(bitPattern: $0) })
                }
            } catch { throw .internalError("\(error)") }
        }
        var found = try await page()
        if found.items.isEmpty, wait > 0 {
            // Listen before looking again, so a reading committed in between still wakes us.
            let sub = services.feed.subscribeWakeUps(.readings(device: device))
            defer { services.feed.unsubscribe(sub) }
            found = try await page()
            if found.items.isEmpty {
                await Self.firstEvent(of: sub, within: .milliseconds(wait))
                found = try await page()
            }
        }
        let last = found.items.last.map { Int64(bitPattern: $0.reading.seq) } ?? after
        return json { w in
            w.beginObject()
            w.field("device", device)
            w.key("readings"); w.beginArray()
            for r in found.items {
                if encoded {
                    // How one node relays to a follower at another: the exact signed bytes.
                    w.beginObject()
                    w.field("encoded", Hex.encode(r.reading.encoded))
                    w.field("cursor", r.rowid)
                    w.key("block"); if let b = r.block { w.int(b) } else { w.null() }
                    w.key("leaf"); if let l = r.leaf { w.int(l) } else { w.null() }
                    w.endObject()
                } else {
                    ReadingWire.write(r, into: &w)
                }
            }
            w.endArray()
            w.field("lastSeq", last)
            w.key("newestSeq"); if let n = found.newest { w.int(n) } else { w.null() }
            w.endObject()
        }
    }

    /// Returns at the subscription's first event, or when `limit` has passed.
    static func firstEvent(of sub: CommitFeed.Subscription, within limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for await _ in sub.events { return } }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
    }

    private func readingID(_ p: [String: JSONValue]) throws(RPCError) -> Digest32 {
        guard let text = p["id"]?.stringValue, let id = Digest32(hex: text) else { throw .invalidParams("'id' must be 64 hex digits") }
        return id
    }

    /// A reading by id, from whichever of the session's stores holds it.
    private func findReading(_ id: Digest32) async throws(RPCError) -> (StoredReading, LedgerStore)? {
        let stores = session.stores.isEmpty ? [services.store] : session.stores.map(\.store)
        do {
            return try await services.store.offload { _ in
                for s in stores { if let r = try s.reading(id: id) { return (r, s) } }
                return nil
            }
        } catch { throw .internalError("\(error)") }
    }

    func reading(_ p: [String: JSONValue]) async throws(RPCError) -> [UInt8] {
        let id = try readingID(p)
        let found = try await findReading(id)?.0
        guard let found else {
            // Dropped by retention: say so, with where it was sealed.
            guard let pruned = try await findPruned(id) else { throw .notFound("reading \(id)") }
            return json { w in
                w.beginObject()
                w.field("id", id.hex)
                w.field("pruned", true)
                w.field("block", Int64(pruned.block))
                w.field("leaf", Int64(pruned.leaf))
                w.field("blockTime", pruned.blockTime)
                w.endObject()
            }
        }
        return json { ReadingWire.write(found, into: &$0) }
    }

    /// `id` when retention pruned it from one of the session's stores.
    private func findPruned(_ id: Digest32) async throws(RPCError) -> PrunedReading? {
        let stores = session.stores.isEmpty ? [services.store] : session.stores.map(\.store)
        do {
            return try await services.store.offload { _ in
                for s in stores { if let r = try s.prunedReading(id: id) { return r } }
                return nil
            }
        } catch { throw .internalError("\(error)") }
    }

    func proof(_ p: [String: JSONValue]) async throws(RPCError) -> [UInt8] {
        let id = try readingID(p)
        let proof: ReadingProof?
        guard let (_, store) = try await findReading(id) else {
            guard let pruned = try await findPruned(id) else { throw .notFound("reading \(id)") }
            throw .pruned(id: id.hex, block: pruned.block, leaf: pruned.leaf)
        }
        do { proof = try await store.offload { try $0.proof(for: id) } } catch { throw .internalError("\(error)") }
        guard let proof else { throw .notFound("reading \(id)") }
        let withChain = p["anchorChain"]?.boolValue ?? false
        let portable = await services.anchorProof(proof, withChain) ?? proof.portable
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return Array(try encoder.encode(portable)) } catch { throw .internalError("\(error)") }
    }

    /// The store holding the segment chain `block`/`blocks` asks about: this node's own, unless
    /// `"owner"` names another node's key; in a ring that node (or one keeping a copy of its
    /// chain) answers, and the answer is returned as `.right`.
    private func chainStore(_ p: [String: JSONValue], _ method: String) async throws(RPCError) -> Either<LedgerStore, [UInt8]> {
        guard let given = p["owner"] else { return .left(session.stores.first?.store ?? services.store) }
        guard let hex = given.stringValue, let bytes = Hex.decode(hex), let owner = try? PublicKey(bytes: bytes) else {
            throw .invalidParams("'owner' must be a node's public key (64 hex digits)")
        }
        if owner == services.publicKey || session.forwarded {
            // Forwarded here: asked as the owner (own chain) or as the keeper of a copy (the session's store).
            if owner != services.publicKey, session.stores.isEmpty { throw .notFound("this node keeps no chain of \(owner.hex)") }
            return .left(session.stores.first?.store ?? services.store)
        }
        guard let ring = services.ring else { throw .notFound("this node keeps only its own chain (\(services.publicKey.hex)); it is not in a ring") }
        var w = JSONWriter()
        w.value(.object(p))
        switch await ring.route(method: method, params: w.bytes, chainOf: owner) {
        case .local: return .left(services.store)
        case let .stores(stores): return .left(stores[0].store)
        case let .answered(result): return .right(result)
        case let .refused(code, message): throw RPCError(code: code, message: message)
        case let .unreachable(why): throw RPCError(code: -32010, message: "the chain of \(owner.hex.prefix(16)) is kept by other nodes, which could not be asked: \(why)", kind: "owner_unreachable")
        }
    }

    private func block(_ p: [String: JSONValue]) async throws(RPCError) -> [UInt8] {
        guard let height = try int(p["height"], "height"), height >= 0 else { throw .invalidParams("'height' (a non-negative integer) is required") }
        let store: LedgerStore
        switch try await chainStore(p, "block") {
        case let .left(s): store = s
        case let .right(answer): return answer
        }
        let header: BlockHeader?
        do { header = try await store.offload { try $0.block(height: UInt64(height)) } } catch { throw .internalError("\(error)") }
        guard let header else { throw .notFound("block \(height)") }
        return json { ReadingWire.write(header, into: &$0) }
    }

    private func blocks(_ p: [String: JSONValue]) async throws(RPCError) -> [UInt8] {
        let limit = Int(try int(p["limit"], "limit") ?? 20)
        guard (1...500).contains(limit) else { throw .invalidParams("'limit' must be 1…500") }
        let below = try int(p["below"], "below", in: 0...Int64.max).map { UInt64($0) }
        let store: LedgerStore
        switch try await chainStore(p, "blocks") {
        case let .left(s): store = s
        case let .right(answer): return answer
        }
        let list: [BlockHeader]
        do { list = try await store.offload { try $0.blocks(below: below, limit: limit) } } catch { throw .internalError("\(error)") }
        return json { w in w.beginArray(); for b in list { ReadingWire.write(b, into: &w) }; w.endArray() }
    }

    private func tip() async throws(RPCError) -> [UInt8] {
        let header = await services.engine.snapshot().tip
        return json { w in if let header { ReadingWire.write(header, into: &w) } else { w.null() } }
    }

    /// From the engine's counters: no table scan, however large the ledger.
    private func info() async -> [UInt8] {
        let now = await services.engine.snapshot()
        return json { w in
            w.beginObject()
            w.field("publicKey", services.publicKey.hex)
            w.field("version", services.version)
            w.key("tip"); if let tip = now.tip { w.int(tip.height) } else { w.null() }
            w.field("readings", now.readings)
            w.field("pending", now.pending)
            w.field("blocks", now.blocks)
            w.field("uptimeSeconds", Int(Date().timeIntervalSince(services.startedAt)))
            w.field("writeTokenRequired", services.configuration.token != nil)
            w.endObject()
        }
    }

    private func devices() async throws(RPCError) -> [UInt8] {
        let list: [(device: String, lastSeq: UInt64, lastTime: Int64)]
        do { list = try await services.store.offload { try $0.devices() } } catch { throw .internalError("\(error)") }
        return json { w in
            w.beginArray()
            for d in list {
                w.beginObject()
                w.field("device", d.device)
                w.field("lastSeq", d.lastSeq)
                w.field("lastTime", d.lastTime)
                w.field("isAlive", services.presence.isAlive(d.device))
                w.endObject()
            }
            w.endArray()
        }
    }

    private func int(_ value: JSONValue?, _ name: String) throws(RPCError) -> Int64? {
        do { return try ReadingWire.optionalInt(value, name) } catch { throw .invalidParams(error.description) }
    }

    private func int(_ value: JSONValue?, _ name: String, in range: ClosedRange<Int64>) throws(RPCError) -> Int64? {
        do { return try ReadingWire.optionalInt(value, name, in: range) } catch { throw .invalidParams(error.description) }
    }
}

/// One of two results (`chainStore`: a store to read here, or another node's answer).
enum Either<Left, Right> {
    case left(Left)
    case right(Right)
}
