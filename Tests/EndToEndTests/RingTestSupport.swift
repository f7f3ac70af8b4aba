import FlowchainClient
import FlowchainCrypto
import FlowchainTesting
import FlowchainWire
import Foundation
import Ledger
import Synchronization
import Testing

/// Several real `flowchain node` processes on loopback forming a Chord ring over `ws /peer`.
final class TestRing: @unchecked Sendable {
    // @unchecked Sendable: the node list changes only from the test's own task.
    var nodes: [RunningNode?] = []
    var ids: [String] = []
    var keys: [String] = []
    let extra: [String]

    init(size: Int, extra: [String] = []) async throws {
        self.extra = extra
        let seed = try await RunningNode(extra, label: "ring-0")
        nodes.append(seed)
        for i in 1..<size {
            nodes.append(try await RunningNode(["--join", "127.0.0.1:\(seed.port)"] + extra, label: "ring-\(i)"))
        }
        for n in nodes {
            let info = try await Self.call(n!.url, "info")
            let key = info["publicKey"]?.stringValue ?? ""
            keys.append(key)
            ids.append(Hex.encode(SHA1.hash(Hex.decode(key) ?? [])))
        }
    }

    /// A ring of nodes the test started itself.
    init(adopting nodes: [RunningNode]) async throws {
        extra = []
        self.nodes = nodes
        for n in nodes {
            let key = try await Self.call(n.url, "info")["publicKey"]?.stringValue ?? ""
            keys.append(key)
            ids.append(Hex.encode(SHA1.hash(Hex.decode(key) ?? [])))
        }
    }

    static func call(_ url: String, _ method: String, _ params: [String: JSONValue] = [:]) async throws -> JSONValue {
        try await RPCConnection.with(url) { try await $0.call(method, params) }
    }

    var live: [(index: Int, node: RunningNode)] { nodes.enumerated().compactMap { i, n in n.map { (i, $0) } } }

    /// Waits until every live node's successor and predecessor are its neighbours in id order.
    func converge(timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            let members = live.map { ids[$0.index] }.sorted()
            var ok = true
            for (i, n) in live {
                guard let ring = try? await Self.call(n.url, "ring") else { ok = false; break }
                let at = members.firstIndex(of: ids[i])!
                let succ = members[(at + 1) % members.count], pred = members[(at + members.count - 1) % members.count]
                let s = ring["successors"]?.arrayValue?.first?["id"]?.stringValue
                let p = ring["predecessor"]?["id"]?.stringValue
                if s != succ || p != pred {
                    ok = false
                    last = "node \(i) (\(ids[i].prefix(8))): successor \(s?.prefix(8) ?? "none") (want \(succ.prefix(8))), predecessor \(p?.prefix(8) ?? "none") (want \(pred.prefix(8)))"
                    break
                }
            }
            if ok { return }
            try await Task.sleep(for: .milliseconds(300))
        }
        throw RingError("the ring did not converge within \(timeout): \(last)")
    }

    /// The index of the live node owning `device`: successor(SHA-1(device)) among the live ids.
    func owner(of device: String) -> Int {
        let key = Hex.encode(SHA1.hash(Array(device.utf8)))
        let members = live.map { (ids[$0.index], $0.index) }.sorted { $0.0 < $1.0 }
        return (members.first { $0.0 >= key } ?? members[0]).1
    }

    /// The live nodes after `index` in ring order.
    func successors(of index: Int) -> [Int] {
        let members = live.map { (ids[$0.index], $0.index) }.sorted { $0.0 < $1.0 }
        let at = members.firstIndex { $0.1 == index }!
        return (1..<members.count).map { members[(at + $0) % members.count].1 }
    }

    func stopAll() async {
        for (_, n) in live { _ = try? await n.stop() }
    }

    /// Submits one unsigned reading of `device` at node `index`; returns the acknowledgement.
    func submit(_ device: String, at index: Int, _ payload: String) async throws -> JSONValue {
        try await Self.call(nodes[index]!.url, "submit", ["device": .string(device), "payload": try StrictJSON.parse(Array(payload.utf8))])
    }

    /// `readings` of `device` asked at node `index`: the ids, in order.
    func readingIDs(_ device: String, at index: Int) async throws -> [String] {
        let page = try await Self.call(nodes[index]!.url, "readings", ["device": .string(device), "limit": 1000])
        return (page["readings"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
    }
}

struct RingError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A peer hello as JSON, for tests that speak `/peer` by hand.
enum PeerHelloJSON {
    struct Hello { let json: String }
    static func make(key: PublicKey, address: String) throws -> Hello {
        let nonce = Hex.encode(try SecureRandom.bytes(32))
        return Hello(json: #"{"type":"hello","version":1,"key":"\#(key.hex)","nonce":"\#(nonce)","address":"\#(address)"}"#)
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out.append(try await transform(e)) }
        return out
    }
}

/// A value shared by a test's tasks.
final class Locked<T: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: every access goes through the lock.
    private var value: T
    private let lock = NSLock()
    init(_ value: T) { self.value = value }
    func withLock<R>(_ body: (inout T) -> R) -> R { lock.withLock { body(&value) } }
}

