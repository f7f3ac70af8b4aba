import ArgumentParser
import FlowchainClient
import FlowchainWire
import Foundation
import Ledger
import FlowchainCrypto

struct RingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ring",
        abstract: "Show a running node's place in the Chord ring.",
        discussion: """
            Prints the node's ring id, its predecessor and successors, its fingers, the key range \
            it owns (its share of the ring) and every node it knows, in ring order from itself. \
            With --device, also which node owns that device (the one its readings are stored at). \
            --json prints the RPC `ring` result.
            """
    )

    @OptionGroup var remote: NodeOption
    @Option(help: "Also show which node of the ring owns this device.") var device: String?
    @OptionGroup var output: JSONOption

    func validate() throws {
        guard remote.node != nil else { throw ValidationError("--node is required: the node to ask (e.g. ws://127.0.0.1:8000)") }
        if let device, let why = DeviceID.problem(with: device) { throw ValidationError("--device: \(why)") }
    }

    func run() async throws {
        let ring: JSONValue
        do {
            ring = try await RPCConnection.with(remote.node!, token: remote.resolvedToken) { try await $0.call("ring") }
        } catch {
            throw failure("\(error)")
        }
        if output.json { return emit(ring.jsonText) }
        guard ring["active"]?.boolValue == true else {
            return emit("not in a ring: \(ring["reason"]?.stringValue ?? "the node has not started its ring yet")")
        }
        func name(_ n: JSONValue?) -> String {
            guard let n, let id = n["id"]?.stringValue else { return "none" }
            return "\(id.prefix(12))  \(n["address"]?.stringValue ?? "")"
        }
        emit("node         \(name(ring))")
        emit("predecessor  \(name(ring["predecessor"]))")
        for (i, s) in (ring["successors"]?.arrayValue ?? []).enumerated() { emit("\(i == 0 ? "successors " : "           ")  \(name(s))") }
        if let r = ring["range"], let after = r["after"]?.stringValue, let upTo = r["upTo"]?.stringValue {
            let share = (r["share"]?.doubleValue ?? 0) * 100
            emit("owns         (\(after.prefix(12)), \(upTo.prefix(12))]  \(String(format: "%.1f", share))% of the ring")
        } else {
            emit("owns         not known yet (waiting for its predecessor)")
        }
        let fingers = ring["fingers"]?.arrayValue ?? []
        emit("fingers      \(fingers.count) distinct")
        let known = ring["ring"]?.arrayValue ?? []
        emit("ring         \(known.count) node(s) known:")
        for n in known { emit("  \(name(n))") }
        if let device {
            let key = SHA1.hash(Array(device.utf8))
            let hex = Hex.encode(key)
            emit("device \(device): key \(hex.prefix(12)), owner \(owner(of: hex, in: known).map { name($0) } ?? "unknown")")
        }
    }

    /// successor(key) among the nodes known: the first at or after the key, going round.
    func owner(of key: String, in nodes: [JSONValue]) -> JSONValue? {
        let sorted = nodes.compactMap { n -> (String, JSONValue)? in n["id"]?.stringValue.map { ($0, n) } }.sorted { $0.0 < $1.0 }
        return (sorted.first { $0.0 >= key } ?? sorted.first)?.1
    }
}
