import FlowchainCrypto
import Foundation
import Ledger

/// Carries out the JSON-RPC methods listed in docs/rpc.md for one connection.
struct RPCDispatcher: Sendable {
    let services: NodeServices
    let session: RPCSession

    /// The response bytes for `request`, or nil for a notification.
    func handle(_ request: RPCRequest) async -> [UInt8]? {
        let result: Result<[UInt8], RPCError>
        do {
            result = .success(try await call(request))
        } catch {
            services.metrics.error(error.kind ?? "rpc")
            result = .failure(error)
        }
        if request.isNotification { return nil }
        switch result {
        case let .success(bytes): return RPCResponse.result(id: request.id) { $0.raw(bytes) }
        case let .failure(error): return RPCResponse.error(id: request.id, error)
        }
    }

    /// The method's result as JSON bytes.
    private func call(_ r: RPCRequest) async throws(RPCError) -> [UInt8] {
        let p = try r.object()
        if r.method != "submit", !session.mayRead { throw .unauthorized }
        switch r.method {
        case "submit": return try await submit(p)
        case "readings": return try readings(p)
        case "reading": return try reading(p)
        case "proof": return try await proof(p)
        case "block": return try block(p)
        case "blocks": return try blocks(p)
        case "tip": return try tip()
        case "info": return try info()
        case "devices": return try devices()
        case "subscribe": return try await session.subscribe(p)
        case "unsubscribe":
            guard let id = p["subscription"] as? NSNumber else { throw .invalidParams("'subscription' (a number) is required") }
            return json { $0.bool(session.unsubscribe(id.uint64Value)) }
        default: throw .methodNotFound(r.method)
        }
    }

    private func json(_ body: (inout JSONWriter) -> Void) -> [UInt8] {
        var w = JSONWriter()
        body(&w)
        return w.bytes
    }

    private func submit(_ p: [String: Any]) async throws(RPCError) -> [UInt8] {
        guard session.mayWrite else { throw .unauthorized }
        if let list = p["readings"] {
            guard let items = list as? [Any], !items.isEmpty, items.count <= 1000 else {
                throw .invalidParams("'readings' must be an array of 1 to 1000 readings")
            }
            // Each item gets its own outcome; one bad reading does not spoil the rest.
            let outcomes = await withTaskGroup(of: (Int, Result<Ack, RPCError>).self) { group in
                for (i, item) in items.enumerated() {
                    let box = UncheckedBox(item)
                    group.addTask { (i, await submitOne(box.value)) }
                }
                var out = [Result<Ack, RPCError>?](repeating: nil, count: items.count)
                for await (i, r) in group { out[i] = r }
                return out
            }
            return json { w in
                w.beginArray()
                for outcome in outcomes {
                    w.beginObject()
                    switch outcome {
                    case let .success(ack)?: w.key("ack"); ReadingWire.write(ack, into: &w)
                    case let .failure(e)?: w.key("error"); e.write(into: &w)
                    case nil: w.key("error"); RPCError.internalError("no outcome").write(into: &w)
                    }
                    w.endObject()
                }
                w.endArray()
            }
        }
        switch await submitOne(p) {
        case let .success(ack): return json { ReadingWire.write(ack, into: &$0) }
        case let .failure(e): throw e
        }
    }

    private func submitOne(_ item: Any) async -> Result<Ack, RPCError> {
        guard let object = item as? [String: Any] else { return .failure(.invalidParams("a reading must be a JSON object")) }
        let submission: ReadingWire.Submission
        do {
            submission = try ReadingWire.submission(from: object, device: nil, defaultSource: .rpc)
        } catch {
            return .failure(.invalidParams(error.description))
        }
        return await services.store(submission, source: .rpc).mapError(RPCError.rejected)
    }

    private func readings(_ p: [String: Any]) throws(RPCError) -> [UInt8] {
        guard let device = p["device"] as? String else { throw .invalidParams("'device' (a string) is required") }
        if let why = DeviceID.problem(with: device) { throw .invalidParams(why) }
        let from = try int(p["from"], "from") ?? .min
        let to = try int(p["to"], "to") ?? .max
        let limit = Int(try int(p["limit"], "limit") ?? 100)
        guard (1...1000).contains(limit) else { throw .invalidParams("'limit' must be 1…1000") }
        var cursor: ReadingCursor? = nil
        if let c = p["cursor"] {
            guard let text = c as? String, let parsed = ReadingCursor(text) else { throw .invalidParams("'cursor' must be a cursor string from a previous page") }
            cursor = parsed
        }
        let page: Page<StoredReading>
        do { page = try services.store.readings(device: device, from: from, to: to, limit: limit, after: cursor) } catch { throw .internalError("\(error)") }
        return json { w in
            w.beginObject()
            w.key("readings"); w.beginArray(); for r in page.items { ReadingWire.write(r, into: &w) }; w.endArray()
            w.key("nextCursor"); if let n = page.nextCursor { w.string(n) } else { w.null() }
            w.endObject()
        }
    }

    private func readingID(_ p: [String: Any]) throws(RPCError) -> Digest32 {
        guard let text = p["id"] as? String, let id = Digest32(hex: text) else { throw .invalidParams("'id' must be 64 hex digits") }
        return id
    }

    private func reading(_ p: [String: Any]) throws(RPCError) -> [UInt8] {
        let id = try readingID(p)
        let found: StoredReading?
        do { found = try services.store.reading(id: id) } catch { throw .internalError("\(error)") }
        guard let found else { throw .notFound("reading \(id)") }
        return json { ReadingWire.write(found, into: &$0) }
    }

    private func proof(_ p: [String: Any]) async throws(RPCError) -> [UInt8] {
        let id = try readingID(p)
        let proof: ReadingProof?
        do { proof = try services.store.proof(for: id) } catch { throw .internalError("\(error)") }
        guard let proof else { throw .notFound("reading \(id)") }
        let portable = await services.anchorProof(proof) ?? proof.portable
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return Array(try encoder.encode(portable)) } catch { throw .internalError("\(error)") }
    }

    private func block(_ p: [String: Any]) throws(RPCError) -> [UInt8] {
        guard let height = try int(p["height"], "height"), height >= 0 else { throw .invalidParams("'height' (a non-negative integer) is required") }
        let header: BlockHeader?
        do { header = try services.store.block(height: UInt64(height)) } catch { throw .internalError("\(error)") }
        guard let header else { throw .notFound("block \(height)") }
        return json { ReadingWire.write(header, into: &$0) }
    }

    private func blocks(_ p: [String: Any]) throws(RPCError) -> [UInt8] {
        let limit = Int(try int(p["limit"], "limit") ?? 20)
        guard (1...500).contains(limit) else { throw .invalidParams("'limit' must be 1…500") }
        let below = try int(p["below"], "below").map { UInt64(max(0, $0)) }
        let list: [BlockHeader]
        do { list = try services.store.blocks(below: below, limit: limit) } catch { throw .internalError("\(error)") }
        return json { w in w.beginArray(); for b in list { ReadingWire.write(b, into: &w) }; w.endArray() }
    }

    private func tip() throws(RPCError) -> [UInt8] {
        let header: BlockHeader?
        do { header = try services.store.tip() } catch { throw .internalError("\(error)") }
        return json { w in if let header { ReadingWire.write(header, into: &w) } else { w.null() } }
    }

    private func info() throws(RPCError) -> [UInt8] {
        let counts: LedgerStore.Counts
        let tip: BlockHeader?
        do {
            counts = try services.store.counts()
            tip = try services.store.tip()
        } catch { throw .internalError("\(error)") }
        return json { w in
            w.beginObject()
            w.field("publicKey", services.publicKey.hex)
            w.field("version", services.version)
            w.key("tip"); if let tip { w.int(tip.height) } else { w.null() }
            w.field("readings", counts.readings)
            w.field("pending", counts.pending)
            w.field("blocks", counts.blocks)
            w.field("uptimeSeconds", Int(Date().timeIntervalSince(services.startedAt)))
            w.field("writeTokenRequired", services.configuration.token != nil)
            w.endObject()
        }
    }

    private func devices() throws(RPCError) -> [UInt8] {
        let list: [(device: String, lastSeq: UInt64, lastTime: Int64)]
        do { list = try services.store.devices() } catch { throw .internalError("\(error)") }
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

    private func int(_ value: Any?, _ name: String) throws(RPCError) -> Int64? {
        do { return try ReadingWire.optionalInt(value, name) } catch { throw .invalidParams(error.description) }
    }
}

/// Moves a JSONSerialization value (immutable Foundation containers) into a child task.
public struct UncheckedBox<T>: @unchecked Sendable {
    // @unchecked Sendable: only used for values JSONSerialization produced, which nobody mutates.
    public let value: T
    public init(_ value: T) { self.value = value }
}
