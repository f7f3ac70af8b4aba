import FlowchainCrypto
import FlowchainWire
import Foundation
import Ledger

/// The handshake as messages on a new connection (text, JSON):
///
///     initiator → hello          responder → hello, proof (its signature over both hellos)
///     initiator → proof          either side, instead, → {"type":"refused","reason":…} and closes
///
/// Each proof signs both hellos' nonces and the signer's role, so neither can be replayed into
/// another connection or reflected back. The genesis check runs on both sides, so a node of
/// another ring is told why it was refused, and logs it, as well as the node refusing it.
struct HandshakeRunner: Sendable {
    let key: PrivateKey
    /// This node's hello fields; the nonce is made fresh per connection.
    let genesis: Digest32?
    let chainID: String?
    let address: String
    let timeout: Duration

    struct Outcome: Sendable {
        let local: PeerHello
        let remote: PeerHello
        let decision: PeerHandshake.GenesisDecision
    }

    func hello() throws -> PeerHello {
        try PeerHello.fresh(key: key.publicKey, genesis: genesis, chainID: chainID, address: address)
    }

    func initiate(_ channel: PeerChannel) async throws -> Outcome {
        try await withDeadline(timeout) {
            let mine = try hello()
            try await channel.send(text: String(decoding: mine.json, as: UTF8.self))
            let theirs = try PeerHello(json: try await nextText(channel, "the peer's hello"))
            let decision = try await check(channel) { try PeerHandshake.decide(local: mine, remote: theirs) }
            let proof = try Self.proof(try await nextText(channel, "the peer's proof"))
            try await check(channel) { try PeerHandshake.verify(proof, by: .responder, initiator: mine, responder: theirs) }
            let signature = try PeerHandshake.sign(.initiator, initiator: mine, responder: theirs, key: key)
            try await channel.send(text: Self.proofJSON(signature))
            return Outcome(local: mine, remote: theirs, decision: decision)
        }
    }

    func respond(_ channel: PeerChannel) async throws -> Outcome {
        try await withDeadline(timeout) {
            let theirs = try await check(channel) { try PeerHello(json: try await nextText(channel, "the peer's hello")) }
            let mine = try hello()
            // The hello goes out before the genesis check, so a peer of another ring can tell
            // its own operator which rings differ.
            try await channel.send(text: String(decoding: mine.json, as: UTF8.self))
            let decision = try await check(channel) { try PeerHandshake.decide(local: mine, remote: theirs) }
            let signature = try PeerHandshake.sign(.responder, initiator: theirs, responder: mine, key: key)
            try await channel.send(text: Self.proofJSON(signature))
            let proof = try Self.proof(try await nextText(channel, "the peer's proof"))
            try await check(channel) { try PeerHandshake.verify(proof, by: .initiator, initiator: theirs, responder: mine) }
            return Outcome(local: mine, remote: theirs, decision: decision)
        }
    }

    /// Runs a check; if it fails, tells the peer why before giving up.
    @discardableResult
    private func check<T>(_ channel: PeerChannel, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            var w = JSONWriter()
            w.beginObject(); w.field("type", "refused"); w.field("reason", "\(error)"); w.endObject()
            try? await channel.send(text: String(decoding: w.bytes, as: UTF8.self))
            throw error
        }
    }

    private func nextText(_ channel: PeerChannel, _ what: String) async throws -> [UInt8] {
        guard let message = try await channel.receive() else { throw PeerHandshakeError.malformed("the peer closed the connection before sending \(what)") }
        guard case let .text(text) = message else { throw PeerHandshakeError.malformed("\(what) must be a text message, not binary") }
        let bytes = Array(text.utf8)
        if let v = try? JSONValue(parsing: bytes), v["type"] == "refused" {
            throw PeerHandshakeError.refusedByPeer(v["reason"]?.stringValue ?? "no reason given")
        }
        return bytes
    }

    static func proofJSON(_ signature: [UInt8]) -> String {
        var w = JSONWriter()
        w.beginObject(); w.field("type", "proof"); w.field("signature", Hex.encode(signature)); w.endObject()
        return String(decoding: w.bytes, as: UTF8.self)
    }

    static func proof(_ bytes: [UInt8]) throws -> [UInt8] {
        guard let v = try? JSONValue(parsing: bytes), v["type"] == "proof", let hex = v["signature"]?.stringValue,
              let signature = Hex.decode(hex), signature.count == 64 else {
            throw PeerHandshakeError.malformed("expected a proof: {\"type\":\"proof\",\"signature\":<128 hex digits>}")
        }
        return signature
    }
}

/// Runs `body`, giving up with `PeerHandshakeError.timedOut` after `limit`.
func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask { try await Task.sleep(for: limit); return nil }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw PeerHandshakeError.timedOut(limit) }
        return value
    }
}
