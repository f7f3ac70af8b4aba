import FlowchainCrypto
import FlowchainWire
import Ledger

/// What the server needs of the ring, when this node is part of one: its view of the ring (the
/// `ring` method) and the owner's answer to a query about a device this node does not own.
public protocol RingAccess: Sendable {
    func status() async -> [UInt8]
    func route(method: String, params: [UInt8], device: String) async -> RingQueryRoute
    /// Sends a query about the segment chain of the node with key `owner` (`block`, `blocks`) to
    /// that node, or to a node keeping a copy of its chain when it is down or gone.
    func route(method: String, params: [UInt8], chainOf owner: PublicKey) async -> RingQueryRoute
    /// The copies of other nodes' chains this node keeps, tagged as in merged cursors.
    func copies() -> [(tag: Int64, store: LedgerStore)]
    /// Asks the other nodes this one knows, in turn, for a reading by id (`reading`, `proof`)
    /// that no chain here holds: the first that has it answers.
    func find(method: String, params: [UInt8]) async -> RingQueryRoute
}

/// The anchor chain as the server sees it: its tip and a key's account (`anchor`), and where a
/// signed stake record goes (`stake`).
public protocol AnchorAccess: Sendable {
    /// `{"height","hash","time","minter","heads":[{"owner","height"}],"account"?:{"stake","balance","nonce"}}`.
    func status(account: PublicKey?) async -> [UInt8]
    /// Checks a stake record (its encoding) and hands it to the minters; the refusal, else nil.
    func submit(stake record: [UInt8]) async -> String?
}

public enum RingQueryRoute: Sendable {
    /// This node answers (it owns the device, or is alone).
    case local
    /// The owner's result (JSON).
    case answered([UInt8])
    /// The owner refused, with this JSON-RPC error.
    case refused(code: Int, message: String)
    /// No node holding the device's readings could be asked.
    case unreachable(String)
    /// This node answers from these stores merged: its own chain (tag 0) and copies of other
    /// nodes' chains that hold the device's readings (after its keys moved).
    case stores([(tag: Int64, store: LedgerStore)])
}

extension NodeServices {
    /// Answers a JSON-RPC read method here, from this node's own store: what the owner of a
    /// device runs for a query another node forwarded to it. Never forwards again.
    public func answerLocally(method: String, params: [UInt8], stores: [(tag: Int64, store: LedgerStore)] = []) async -> Result<[UInt8], RPCError> {
        guard ["readings", "reading", "proof", "block", "blocks"].contains(method) else { return .failure(.methodNotFound(method)) }
        let session = RPCSession(services: self, token: configuration.token, forwarded: true, stores: stores) { _ in false }
        let dispatcher = RPCDispatcher(services: self, session: session)
        var w = JSONWriter()
        w.beginObject(); w.field("jsonrpc", "2.0"); w.field("id", 1); w.field("method", method); w.key("params"); w.raw(params); w.endObject()
        guard let value = try? StrictJSON.parse(w.bytes), case let .request(request) = RPCRequest.from(value) else {
            return .failure(.invalidParams("the forwarded params are not a JSON object"))
        }
        return await dispatcher.result(of: request)
    }
}
