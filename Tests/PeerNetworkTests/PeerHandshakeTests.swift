import Chord
import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
import PeerNetwork
import Testing

@Suite("Peer handshake: each side proves its key; rings do not mix")
struct PeerHandshakeTests {
    static let a = Fixtures.key(61), b = Fixtures.key(62), mallory = Fixtures.key(63)
    static let genesis = SHA256.hash(Array("genesis of ring one".utf8)), other = SHA256.hash(Array("genesis of ring two".utf8))

    static func hello(_ key: PrivateKey, _ genesis: Digest32?, chain: String? = "flowchain-ring-one", address: String = "127.0.0.1:9000") throws -> PeerHello {
        try PeerHello.fresh(key: key.publicKey, genesis: genesis, chainID: genesis == nil ? nil : chain, address: address)
    }

    @Test func bothSidesProveTheirKeysAndTheIdIsSHA1OfTheKey() throws {
        let hi = try Self.hello(Self.a, Self.genesis), hr = try Self.hello(Self.b, Self.genesis, address: "127.0.0.1:9001")
        let proofR = try PeerHandshake.sign(.responder, initiator: hi, responder: hr, key: Self.b)
        try PeerHandshake.verify(proofR, by: .responder, initiator: hi, responder: hr)
        let proofI = try PeerHandshake.sign(.initiator, initiator: hi, responder: hr, key: Self.a)
        try PeerHandshake.verify(proofI, by: .initiator, initiator: hi, responder: hr)
        #expect(hr.id == ChordID.hashing(Self.b.publicKey.bytes) && hr.id == NodeRef(publicKey: Self.b.publicKey.bytes).id)
        #expect(try PeerHandshake.decide(local: hi, remote: hr) == .same)
    }

    @Test func aForgedIdAReplayedOrReflectedProofIsRefused() throws {
        let hi = try Self.hello(Self.a, Self.genesis), hr = try Self.hello(Self.b, Self.genesis)
        // Mallory claims b's key (and so b's id) but can only sign with her own.
        let forged = try PeerHandshake.sign(.responder, initiator: hi, responder: hr, key: Self.mallory)
        #expect(throws: PeerHandshakeError.self) { try PeerHandshake.verify(forged, by: .responder, initiator: hi, responder: hr) }
        // b's real proof from an earlier connection does not fit a new one: the initiator's nonce differs.
        let old = try PeerHandshake.sign(.responder, initiator: hi, responder: hr, key: Self.b)
        let hi2 = try Self.hello(Self.a, Self.genesis)
        #expect(hi2.nonce != hi.nonce)
        #expect(throws: PeerHandshakeError.self) { try PeerHandshake.verify(old, by: .responder, initiator: hi2, responder: hr) }
        // A proof cannot be reflected into the other role.
        let asResponder = try PeerHandshake.sign(.responder, initiator: hi, responder: hi, key: Self.a)
        #expect(throws: PeerHandshakeError.self) { try PeerHandshake.verify(asResponder, by: .initiator, initiator: hi, responder: hi) }
        // Any changed field breaks it (here the address).
        let moved = PeerHello(key: hr.key, nonce: hr.nonce, genesis: hr.genesis, chainID: hr.chainID, address: "10.0.0.9:9001")
        let good = try PeerHandshake.sign(.responder, initiator: hi, responder: hr, key: Self.b)
        #expect(throws: PeerHandshakeError.self) { try PeerHandshake.verify(good, by: .responder, initiator: hi, responder: moved) }
    }

    @Test func aNodeWithoutGenesisAdoptsItsPeersAndForeignRingsAreRefusedByName() throws {
        let fresh = try Self.hello(Self.a, nil), member = try Self.hello(Self.b, Self.genesis)
        #expect(try PeerHandshake.decide(local: fresh, remote: member) == .adopt(Self.genesis, chainID: "flowchain-ring-one"))
        #expect(try PeerHandshake.decide(local: member, remote: fresh) == .offer)
        let foreign = try Self.hello(Self.mallory, Self.other, chain: "flowchain-ring-two", address: "127.0.0.1:9100")
        do { _ = try PeerHandshake.decide(local: member, remote: foreign); Issue.record("accepted") } catch {
            #expect("\(error)".contains("peer 127.0.0.1:9100 follows another ring: flowchain-ring-two") && "\(error)".contains("this node follows flowchain-ring-one"), "\(error)")
        }
        #expect(throws: PeerHandshakeError.noGenesis) { try PeerHandshake.decide(local: fresh, remote: try Self.hello(Self.b, nil)) }
        #expect(throws: PeerHandshakeError.connectedToItself) { try PeerHandshake.decide(local: member, remote: try Self.hello(Self.b, Self.genesis)) }
    }

    @Test func helloRoundTripsThroughJSONAndGarbageIsAPreciseError() throws {
        for h in [try Self.hello(Self.a, Self.genesis), try Self.hello(Self.b, nil, address: "")] {
            #expect(try PeerHello(json: h.json) == h)
        }
        let cases: [(String, String)] = [
            ("not json", "not a hello"),
            (#"{"type":"hello","version":2}"#, "hello version 2"),
            (#"{"type":"hello","version":1,"key":"00"}"#, "'key' is not an acceptable"),
            (#"{"type":"hello","version":1,"key":"\#(Self.a.publicKey.hex)","nonce":"abcd"}"#, "'nonce' is not 32 bytes"),
            (#"{"type":"hello","version":1,"key":"\#(Self.a.publicKey.hex)","nonce":"\#(String(repeating: "ab", count: 32))","genesis":"xyz","address":""}"#, "'genesis' is not a SHA-256"),
        ]
        for (text, expected) in cases {
            do { _ = try PeerHello(json: Array(text.utf8)); Issue.record("accepted \(text)") } catch {
                #expect("\(error)".contains(expected), "\(text): \(error)")
            }
        }
        // The identity key of a small-order point is no key at all.
        let zero = String(repeating: "00", count: 32)
        do { _ = try PeerHello(json: Array(#"{"type":"hello","version":1,"key":"\#(zero)","nonce":"\#(String(repeating: "ab", count: 32))","address":""}"#.utf8)); Issue.record("accepted") } catch {
            #expect("\(error)".contains("not an acceptable Ed25519 public key"))
        }
    }
}
