import FlowchainClient
import FlowchainCrypto
import FlowchainTesting
import FlowchainWire
import Foundation
import Ledger
import Synchronization
import Testing

@Suite("Ring: several node processes over ws /peer", .serialized)
struct RingTests {
    static let devices = (0..<10).map { "ring-dev-\($0)" }

    /// Ten device names, at least two of whose owners differ.
    static func devices(ownedByAtLeastTwoOf ring: TestRing) -> [String] {
        var chosen = Array(devices.prefix(9))
        let first = ring.owner(of: chosen[0])
        if chosen.allSatisfy({ ring.owner(of: $0) == first }) {
            chosen.append((9..<10_000).lazy.map { "ring-dev-\($0)" }.first { ring.owner(of: $0) != first } ?? devices[9])
        } else {
            chosen.append(devices[9])
        }
        return chosen
    }

    /// Opens a chain file read-only (the node keeps writing it) and returns the device's seqs.
    static func seqs(_ device: String, in path: String) throws -> [UInt64] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let store: LedgerStore
        do { store = try LedgerStore(path: path, owner: nil, readOnly: true, tailCheck: 0) } catch StoreError.notInitialised {
            return []  // created a moment ago, not yet migrated
        }
        defer { try? store.close() }
        return try store.readings(device: device, limit: 1000, newestFirst: false).map(\.reading.seq)
    }

    @Test func fiveNodesRouteEachDeviceToItsOwnerReplicateItAndAnswerAlikeEverywhere() async throws {
        let ring = try await TestRing(size: 5)
        defer { Task { await ring.stopAll() } }
        try await ring.converge()
        // The nodes' keys are new each run: the devices are chosen so that at least two nodes own
        // some (the first nine names, then the first name that another node owns, if needed).
        let devices = Self.devices(ownedByAtLeastTwoOf: ring)
        // Every device's readings enter at every node in turn.
        var acked: [String: [String]] = [:]
        for round in 0..<3 {
            for (d, device) in devices.enumerated() {
                let ack = try await ring.submit(device, at: (d + round) % 5, #"{"round":\#(round)}"#)
                #expect(ack["seq"]?.int64Value == Int64(round + 1), "\(device) round \(round): \(ack)")
                acked[device, default: []].append(ack["id"]?.stringValue ?? "")
            }
        }
        for device in devices {
            // The same answer at every node: every acknowledged reading, in seq order.
            for i in 0..<5 {
                #expect(try await ring.readingIDs(device, at: i) == acked[device]!, "\(device) asked at node \(i)")
            }
            // Stored by its owner, and copied to the owner's next two successors (r = 3) only.
            let owner = ring.owner(of: device)
            #expect(try Self.seqs(device, in: ring.nodes[owner]!.dir.file("data/ledger.sqlite")) == [1, 2, 3], "\(device) at its owner \(owner)")
            let replicas = Array(ring.successors(of: owner).prefix(2))
            let deadline = ContinuousClock.now + .seconds(60)
            for r in replicas {
                let path = ring.nodes[r]!.dir.file("data/replicas/\(ring.keys[owner]).sqlite")
                while try Self.seqs(device, in: path) != [1, 2, 3], ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
                #expect(try Self.seqs(device, in: path) == [1, 2, 3], "\(device): replica at node \(r) of owner \(owner)")
            }
            for other in 0..<5 where other != owner {
                #expect(try Self.seqs(device, in: ring.nodes[other]!.dir.file("data/ledger.sqlite")).isEmpty, "\(device) is not in node \(other)'s own chain")
            }
        }
        // Proofs asked at any node verify with the independent verifier against the owner's key.
        let device = devices[0]
        let owner = ring.owner(of: device)
        try await Task.sleep(for: .milliseconds(600))  // sealed (block interval 200 ms)
        for i in 0..<5 {
            // Sealed within a block interval or two; under a loaded machine, a little later.
            var (status, output) = (Int32(-1), "")
            for _ in 0..<10 {
                (status, output) = try await ExternalClientTests.python("independent_client.py", ["--proof", ring.nodes[i]!.url, acked[device]![2], ring.keys[owner]])
                if status == 0 { break }
                try await Task.sleep(for: .seconds(1))
            }
            #expect(status == 0, "proof asked at node \(i): \(output)")
        }
        // Each node's segment blocks, asked at every node by the owner's key: the same answer.
        let sealing = Set(devices.map { ring.owner(of: $0) })
        for j in sealing {
            let here = try await TestRing.call(ring.nodes[j]!.url, "blocks", ["limit": 5])
            guard let newest = here.arrayValue?.first?["height"]?.int64Value else { Issue.record("node \(j) owns devices but sealed no block"); continue }
            for i in 0..<5 {
                let asked = try await TestRing.call(ring.nodes[i]!.url, "blocks", ["limit": 5, "below": .number(String(newest + 1)), "owner": .string(ring.keys[j])])
                #expect(asked == here, "blocks of node \(j) asked at node \(i)")
                let one = try await TestRing.call(ring.nodes[i]!.url, "block", ["height": .number(String(newest)), "owner": .string(ring.keys[j])])
                #expect(one == here.arrayValue?.first, "block \(newest) of node \(j) asked at node \(i): \(one)")
            }
        }
        #expect(sealing.count >= 2)
        // A follower at a node that does not own the device hears every new reading, in seq order.
        let followed = devices[1]
        let watcher = (ring.owner(of: followed) + 1) % 5
        try await RPCConnection.with(ring.nodes[watcher]!.url) { rpc in
            let sub = try await rpc.call("subscribe", ["topic": "readings", "device": .string(followed)])
            #expect(sub["afterSeq"]?.int64Value == 3, "starts after the newest seq: \(sub)")
            for n in 0..<3 { _ = try await ring.submit(followed, at: (watcher + n) % 5, #"{"late":\#(n)}"#) }
            var seqs: [Int64] = []
            for await note in rpc.notifications {
                if let seq = note["params"]?["reading"]?["seq"]?.int64Value { seqs.append(seq) }
                if seqs.count == 3 { break }
            }
            #expect(seqs == [4, 5, 6])
        }
        let port0 = ring.nodes[0]!.port
        // The three late readings are copied on the replicator's next round: wait for it (bounded).
        var metrics = ""
        let caughtUp = ContinuousClock.now + .seconds(60)
        repeat {
            metrics = try await offPool { try LoopbackHTTP.get(port: port0, path: "/metrics").text }
            if metrics.contains("flowchain_replication_lag 0") { break }
            try await Task.sleep(for: .milliseconds(200))
        } while ContinuousClock.now < caughtUp
        #expect(metrics.contains("flowchain_peers 4"), "node 0 has four authenticated peers")
        #expect(metrics.contains("flowchain_readings_forwarded_total"))
        #expect(metrics.contains("flowchain_replication_lag 0"), "every copy caught up: \(metrics.split(separator: "\n").filter { $0.contains("replication_lag") })")
        await ring.stopAll()
    }

    @Test func aKilledOwnerLosesNothingAcknowledgedAndRejoinsAfterRestart() async throws {
        let ring = try await TestRing(size: 4)
        defer { Task { await ring.stopAll() } }
        try await ring.converge()
        // A device owned by a node other than the seed (which the restarted node joins through).
        let device = try #require((0..<100_000).lazy.map { "victim-\($0)" }.first { ring.owner(of: $0) != 0 })
        let victim = ring.owner(of: device)
        // A follower at another node, subscribed before the kill: it must hear every reading once.
        let heard = Locked<[Int64]>([])
        let watcher = (0..<4).first { $0 != victim && $0 != 0 }!
        let follower = Task {
            try await RPCConnection.with(ring.nodes[watcher]!.url) { rpc in
                _ = try await rpc.call("subscribe", ["topic": "readings", "device": .string(device), "afterSeq": 0])
                for await note in rpc.notifications {
                    if let seq = note["params"]?["reading"]?["seq"]?.int64Value { heard.withLock { $0.append(seq) } }
                }
            }
        }
        defer { follower.cancel() }
        var acked: [String] = []
        for i in 0..<6 { acked.append(try await ring.submit(device, at: i % 4, #"{"n":\#(i)}"#)["id"]?.stringValue ?? "") }
        // A device that signs its own readings, owned by the same node.
        let signer = try PrivateKey()
        let signedDevice = try #require((0..<100_000).lazy.map { "signs-\($0)" }.first { ring.owner(of: $0) == victim })
        let signed = try (1...3).map { try Reading(device: signedDevice, seq: UInt64($0), time: 1_764_000_000_000 + Int64($0), source: .rpc,
                                                   payload: Array("{\"s\":\($0)}".utf8), signedBy: signer) }
        for r in signed { _ = try await TestRing.call(ring.nodes[0]!.url, "submit", ["encoded": .string(Hex.encode(r.encoded))]) }
        try await Task.sleep(for: .seconds(1))  // replicated (the owner pushes on every commit)
        let dir = ring.nodes[victim]!.dir
        ring.nodes[victim]!.process.signal(SIGKILL)
        _ = try await ring.nodes[victim]!.process.wait(timeout: .seconds(10))
        ring.nodes[victim] = nil
        // Queries keep being answered, by a replica, at once and after the ring heals.
        for (i, _) in ring.live { #expect(try await ring.readingIDs(device, at: i) == acked, "asked at node \(i) right after the kill") }
        try await ring.converge()
        for (i, _) in ring.live { #expect(try await ring.readingIDs(device, at: i) == acked, "asked at node \(i) after the ring healed") }
        // The dead node's segment blocks are answered from a copy of its chain.
        let deadBlocks = try await TestRing.call(ring.nodes[0]!.url, "blocks", ["owner": .string(ring.keys[victim])])
        #expect(deadBlocks.arrayValue?.first?["owner"]?.stringValue == ring.keys[victim], "\(deadBlocks)")
        // The ring re-replicates: the killed node's chain had r = 3 copies (its own and two), lost
        // one, and the node now owning its keys pushes its copy on: all three survivors hold it.
        let copies = ContinuousClock.now + .seconds(30)
        var holders = 0
        while ContinuousClock.now < copies {
            holders = 0
            for (i, n) in ring.live where try Self.seqs(device, in: n.dir.file("data/replicas/\(ring.keys[victim]).sqlite")).count == 6 { _ = i; holders += 1 }
            if holders >= 3 { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(holders == 3, "copies of the killed node's chain on the survivors: \(holders)")
        // The new owner numbers on from the copy: seq 7.
        let during = try await ring.submit(device, at: 0, #"{"n":"during"}"#)
        #expect(during["seq"]?.int64Value == 7, "\(during)")
        acked.append(during["id"]?.stringValue ?? "")
        // The new owner knows the signed device's seqs from the copy: a re-sent reading is the same
        // reading, another one with a used seq is refused, the next seq is stored.
        let again = try await TestRing.call(ring.nodes[0]!.url, "submit", ["encoded": .string(Hex.encode(signed[1].encoded))])
        #expect(again["id"]?.stringValue == signed[1].id.hex, "a re-sent reading is acknowledged as the one stored: \(again)")
        let replay = try Reading(device: signedDevice, seq: 3, time: 1_764_000_001_000, source: .rpc, payload: Array(#"{"s":"other"}"#.utf8), signedBy: signer)
        do {
            _ = try await TestRing.call(ring.nodes[0]!.url, "submit", ["encoded": .string(Hex.encode(replay.encoded))])
            Issue.record("a second reading with seq 3 was stored after the keys moved")
        } catch let e as RPCConnection.RemoteError {
            #expect(e.kind == "seq_not_increasing", "\(e)")
        }
        let next = try Reading(device: signedDevice, seq: 4, time: 1_764_000_002_000, source: .rpc, payload: Array(#"{"s":4}"#.utf8), signedBy: signer)
        #expect(try await TestRing.call(ring.nodes[0]!.url, "submit", ["encoded": .string(Hex.encode(next.encoded))])["seq"]?.int64Value == 4)
        // Restarted with its data, it rejoins, takes its keys back and answers with everything.
        let restarted = try FlowchainProcess(["node", "--data-dir", dir.file("data"), "--port", "0", "--block-interval", "200",
                                              "--join", "127.0.0.1:\(ring.nodes[0]!.port)"], outputPath: dir.file("node2.log"))
        guard let port = try await restarted.waitForPort() else { throw RingError("restart failed: \(restarted.output)") }
        ring.nodes[victim] = RunningNode(adopting: restarted, port: port, dir: dir)
        try await ring.converge()
        let deadline = ContinuousClock.now + .seconds(60)
        while try await ring.readingIDs(device, at: victim) != acked, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(300)) }
        for (i, _) in ring.live { #expect(try await ring.readingIDs(device, at: i) == acked, "asked at node \(i) after the restart") }
        let after = try await ring.submit(device, at: 1, #"{"n":"after"}"#)
        #expect(after["seq"]?.int64Value == 8, "\(after)")
        // The follower heard seqs 1…8 once each, across the kill, the take-over and the restart.
        let heardAll = ContinuousClock.now + .seconds(30)
        while heard.withLock({ $0.count }) < 8, ContinuousClock.now < heardAll { try await Task.sleep(for: .milliseconds(200)) }
        #expect(heard.withLock { $0 } == Array(1...8), "the follower at node \(watcher)")
        await ring.stopAll()
    }

    @Test func aLargeBatchIsForwardedAndCopiedInMessagesManyFramesLong() async throws {
        // 1,000 readings of ~300 bytes entering at one node: the forward to the other node and the
        // copies are each far over one 64 KiB WebSocket frame (the RPC request too: allowed here).
        let ring = try await TestRing(size: 2, extra: ["--max-frame", "1048576"])
        defer { Task { await ring.stopAll() } }
        try await ring.converge()
        let filler = String(repeating: "x", count: 250)
        // 25 devices owned by each node (a node with a small share of the ring owns few names).
        let names = (0...1).flatMap { owner in Array((0..<100_000).lazy.map { "bulk-\($0)" }.filter { ring.owner(of: $0) == owner }.prefix(25)) }
        let batch: [JSONValue] = (0..<1000).map { i in
            ["device": .string(names[i % 50]), "payload": ["i": .int(Int64(i)), "pad": .string(filler)]]
        }
        let result = try await TestRing.call(ring.nodes[0]!.url, "submit", ["readings": .array(batch)])
        let acks = (result.arrayValue ?? []).filter { $0["ack"] != nil }.count
        #expect(acks == 1000, "\(result.arrayValue?.first { $0["error"] != nil } ?? .null)")
        #expect(names.count == 50 && names.filter { ring.owner(of: $0) == 1 }.count == 25, "half of them forwarded")
        // Copied to the other node too (r = 3 with two nodes: each holds the other's chain).
        for owner in 0..<2 {
            let device = try #require(names.first { ring.owner(of: $0) == owner })
            let path = ring.nodes[1 - owner]!.dir.file("data/replicas/\(ring.keys[owner]).sqlite")
            let deadline = ContinuousClock.now + .seconds(60)
            while try Self.seqs(device, in: path).count != 20, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
            #expect(try Self.seqs(device, in: path).count == 20, "\(device) copied from node \(owner)")
        }
        // The one disconnection each side logs is the joining node's genesis fetch; none broke.
        for n in ring.nodes.compactMap({ $0 }) {
            #expect(n.process.output.components(separatedBy: "disconnected").count - 1 == 1, "\(n.process.output.suffix(3000))")
        }
        await ring.stopAll()
    }

    @Test func theRingSharesOneAnchorChainThatAnchorsEveryNodesSegmentsAndCarriesStake() async throws {
        let ring = try await TestRing(size: 3, extra: ["--anchor-interval", "1"])
        defer { Task { await ring.stopAll() } }
        try await ring.converge()
        // Readings owned by each of the three nodes.
        var ids: [Int: String] = [:]
        for i in 0..<50_000 where ids.count < 3 {  // a node with a small share of the ring owns few names
            let device = "anchored-\(i)"
            let owner = ring.owner(of: device)
            if ids[owner] == nil { ids[owner] = try await ring.submit(device, at: 0, #"{"i":\#(i)}"#)["id"]?.stringValue }
        }
        #expect(ids.count == 3)
        // Every node's segment head gets committed, and all nodes agree on the chain.
        let deadline = ContinuousClock.now + .seconds(60)
        var last = ""
        var agreed = false
        while ContinuousClock.now < deadline {
            var views: [(height: Int64, hash: String, owners: Set<String>)] = []
            for (_, n) in ring.live {
                let a = try await TestRing.call(n.url, "anchor")
                views.append((a["height"]?.int64Value ?? 0, a["hash"]?.stringValue ?? "", Set((a["heads"]?.arrayValue ?? []).compactMap { $0["owner"]?.stringValue })))
            }
            last = "\(views)"
            // The same tip everywhere (compared at one moment; a block may be in flight: retry).
            if Set(views.map(\.hash)).count == 1, views[0].owners.isSuperset(of: Set(ring.keys)) { agreed = true; break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(agreed, "all three nodes at one anchor tip that commits every node's segment head: \(last)")
        // A proof asked at any node of a reading owned by a joined node reaches the anchor chain.
        for (owner, id) in ids where owner != 0 {
            let proof = try await TestRing.call(ring.nodes[0]!.url, "proof", ["id": .string(id)])
            #expect(proof["anchor"] != nil && proof["anchor"] != .null, "reading owned by node \(owner): \(proof)")
        }
        // A stake record submitted at a joined node reaches the minter (the seed, the only staker).
        let dir = ring.nodes[0]!.dataDir
        let stake = try await runFlowchain(["stake", "--node", ring.nodes[2]!.url, "--data-dir", dir, "--amount", "7", "--unbond"])
        #expect(stake.status == 0, "\(stake.output)")
        let applied = ContinuousClock.now + .seconds(30)
        var nonce: Int64 = 0
        while nonce == 0, ContinuousClock.now < applied {
            nonce = try await TestRing.call(ring.nodes[1]!.url, "anchor", ["key": .string(ring.keys[0])])["account"]?["nonce"]?.int64Value ?? 0
            if nonce == 0 { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(nonce == 1, "the unbond was carried by an anchor block every node has")
        await ring.stopAll()
    }

    @Test func aRingOverWssWithCertificatesFromItsOwnCA() async throws {
        let pki = try await TestCertificates()
        setenv("FLOWCHAIN_CA", pki.ca, 1)  // for this test's RPC clients (wss:// only)
        let tls = ["--tls-cert", pki.serverCertificate, "--tls-key", pki.serverKey, "--peer-tls", "--peer-ca", pki.ca]
        let seed = try await RunningNode(tls, label: "tls-0")
        seed.scheme = "wss"
        #expect(seed.process.output.contains("listening on https://"))
        let joiner = try await RunningNode(tls + ["--join", "127.0.0.1:\(seed.port)"], label: "tls-1")
        joiner.scheme = "wss"
        let ring = try await TestRing(adopting: [seed, joiner])
        defer { Task { await ring.stopAll() } }
        try await ring.converge()
        let device = try #require((0..<100_000).lazy.map { "tls-\($0)" }.first { ring.owner(of: $0) == 1 })
        let ack = try await ring.submit(device, at: 0, #"{"over":"wss"}"#)
        #expect(try await ring.readingIDs(device, at: 0) == [ack["id"]?.stringValue ?? ""], "forwarded over wss and answered by the owner")
        // Plain ws:// is not served by a TLS node.
        let seedPort = seed.port
        #expect(try await offPool { RawWebSocket(port: seedPort, path: "/peer") == nil })
        // A node without TLS cannot dial into the TLS ring, and says so.
        let plain = try await RunningNode(["--genesis", seed.dir.file("data/genesis.json"), "--join", "127.0.0.1:\(seed.port)"], label: "tls-plain")
        #expect(try await plain.process.waitForOutput("cannot reach peer", timeout: .seconds(20)), "\(plain.process.output.suffix(2000))")
        _ = try await plain.stop()
        await ring.stopAll()
    }

    @Test func peerAddrAndPeerPortJoinLikeTheOriginal() async throws {
        let seed = try await RunningNode(label: "env-seed")
        let joiner = try await RunningNode(label: "env-joiner", environment: ["PEER_ADDR": "127.0.0.1", "PEER_PORT": "\(seed.port)"])
        let ring = try await TestRing(adopting: [seed, joiner])
        defer { Task { await ring.stopAll() } }
        try await ring.converge()
        #expect(try await joiner.process.waitForOutput("adopted the genesis of ring", timeout: .seconds(5)))
        await ring.stopAll()
    }

    @Test func aNodeJoiningUnderLoadTakesItsRangeOverAndNothingIsLostOrDuplicated() async throws {
        let ring = try await TestRing(size: 3)
        defer { Task { await ring.stopAll() } }
        try await ring.converge()
        let devices = (0..<24).map { "load-\($0)" }
        let acked = Locked<[String: [(seq: Int64, id: String)]]>([:])
        let stop = Locked(false)
        // Load at every node, bounded in count and time, while a fourth node joins.
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for entry in 0..<3 {
                    let url = ring.nodes[entry]!.url
                    group.addTask {
                        try? await RPCConnection.with(url) { rpc in
                            var round = 0
                            let started = ContinuousClock.now
                            while !stop.withLock({ $0 }), round < 400, ContinuousClock.now - started < .seconds(60) {
                                let batch: [JSONValue] = devices.enumerated().filter { $0.offset % 3 == entry }.map { ["device": .string($0.element), "payload": ["r": .int(Int64(round))]] }
                                if let result = try? await rpc.call("submit", ["readings": .array(batch)]) {
                                    for item in result.arrayValue ?? [] {
                                        if let a = item["ack"], let d = a["device"]?.stringValue, let s = a["seq"]?.int64Value, let id = a["id"]?.stringValue {
                                            acked.withLock { $0[d, default: []].append((s, id)) }
                                        }
                                    }
                                }
                                round += 1
                            }
                        }
                    }
                }
            }
        }
        try await Task.sleep(for: .seconds(2))
        // The joiner's key is drawn until its id takes at least 4 of the 24 devices over (a random
        // one may land just after another node and take none).
        let joinerDir = TemporaryDirectory("ring-joiner")
        try FileManager.default.createDirectory(atPath: joinerDir.file("data"), withIntermediateDirectories: true)
        let keyPath = joinerDir.file("data/node.key")
        while true {
            try? FileManager.default.removeItem(atPath: keyPath)
            let id = Hex.encode(SHA1.hash(try KeyFile.create(at: keyPath).publicKey.bytes))
            let members = (ring.ids + [id]).sorted()
            let owned = devices.filter { d in
                let key = Hex.encode(SHA1.hash(Array(d.utf8)))
                return (members.first { $0 >= key } ?? members[0]) == id
            }
            if owned.count >= 4 { break }
        }
        let process = try FlowchainProcess(["node", "--data-dir", joinerDir.file("data"), "--port", "0", "--block-interval", "200",
                                            "--join", "127.0.0.1:\(ring.nodes[0]!.port)"], outputPath: joinerDir.file("node.log"))
        guard let joinerPort = try await process.waitForPort() else { throw RingError("the joiner did not start: \(process.output)") }
        let joiner = RunningNode(adopting: process, port: joinerPort, dir: joinerDir)
        ring.nodes.append(joiner)
        let info = try await TestRing.call(joiner.url, "info")
        ring.keys.append(info["publicKey"]?.stringValue ?? "")
        ring.ids.append(Hex.encode(SHA1.hash(Hex.decode(ring.keys[3]) ?? [])))
        try await ring.converge()
        try await Task.sleep(for: .seconds(3))
        stop.withLock { $0 = true }
        await load.value
        let taken = devices.filter { ring.owner(of: $0) == 3 }
        #expect(!taken.isEmpty, "the joining node took some devices over")
        for device in devices {
            let mine = acked.withLock { $0[device] ?? [] }
            #expect(!mine.isEmpty)
            for at in [0, 3] {
                let ids = try await ring.readingIDs(device, at: at)
                #expect(Set(ids).count == ids.count, "\(device) at node \(at): no reading twice")
                #expect(Set(mine.map(\.id)).isSubset(of: Set(ids)), "\(device) at node \(at): every acknowledged reading is there (\(Set(mine.map(\.id)).subtracting(ids).count) missing)")
            }
            let seqs = mine.map(\.seq)
            #expect(Set(seqs).count == seqs.count, "\(device): no seq given twice (\(seqs.count - Set(seqs).count) repeated)")
        }
        await ring.stopAll()
    }

    @Test func aNodeOfAnotherRingIsRefusedAndBothSidesSayWhy() async throws {
        let ring = try await TestRing(size: 1)
        defer { Task { await ring.stopAll() } }
        // A node that made its own genesis, restarted with --join: another ring.
        let loner = try await RunningNode(label: "loner")
        #expect(try await loner.stop() == 0)
        let again = try FlowchainProcess(["node", "--data-dir", loner.dataDir, "--port", "0", "--join", "127.0.0.1:\(ring.nodes[0]!.port)"],
                                         outputPath: loner.dir.file("again.log"))
        defer { again.signal(SIGKILL) }
        #expect(try await again.waitForOutput("follows another ring", timeout: .seconds(30)), "\(again.output)")
        #expect(try await ring.nodes[0]!.process.waitForOutput("follows another ring", timeout: .seconds(10)), "\(ring.nodes[0]!.process.output)")
        let status = try await TestRing.call(ring.nodes[0]!.url, "ring")
        #expect(status["active"]?.boolValue == true)
        #expect(status["predecessor"] == .null, "the foreign node did not get into the ring")
        await ring.stopAll()
    }

    @Test func garbageAndForgedHandshakesOnPeerAreRefusedAndTheRingWorksOn() async throws {
        let ring = try await TestRing(size: 2)
        defer { Task { await ring.stopAll() } }
        try await ring.converge()
        let port = ring.nodes[0]!.port
        // Garbage instead of a hello.
        let refused = try await offPool { () -> (code: UInt16?, texts: [String]) in
            guard let garbage = RawWebSocket(port: port, path: "/peer") else { return (nil, ["no upgrade"]) }
            garbage.sendFrame(opcode: 1, Array("hello? GET / HTTP/1.0".utf8))
            return garbage.readUntilClose()
        }
        #expect(refused.texts.contains { $0.contains("refused") && $0.contains("not a hello") }, "\(refused)")
        // Binary garbage.
        let binaryRefused = try await offPool { () -> [String] in
            guard let binary = RawWebSocket(port: port, path: "/peer") else { return [] }
            binary.sendFrame(opcode: 2, [0xFF, 0x00, 0x13, 0x37])
            return binary.readUntilClose().texts
        }
        #expect(binaryRefused.contains { $0.contains("refused") }, "binary garbage is refused")
        // A hello naming node 1's key, proved with another key: the signature does not prove it.
        let impostorKey = try PrivateKey()
        let victimKey = try PublicKey(bytes: Hex.decode(ring.keys[1])!)
        let hello = try PeerHelloJSON.make(key: victimKey, address: "127.0.0.1:1")
        let forgedProof = #"{"type":"proof","signature":"\#(Hex.encode(try impostorKey.sign(Array("anything".utf8))))"}"#
        let (replies, closed) = try await offPool { () -> ([String], Bool) in
            guard let forged = RawWebSocket(port: port, path: "/peer") else { return ([], false) }
            forged.sendFrame(opcode: 1, Array(hello.json.utf8))
            let replies = forged.readTexts(2)
            forged.sendFrame(opcode: 1, Array(forgedProof.utf8))
            return (replies, forged.readUntilClose().code != nil)
        }
        #expect(replies.count == 2, "the node answered with its hello and proof: \(replies)")
        #expect(closed, "the forged peer is disconnected")
        #expect(try await ring.nodes[0]!.process.waitForOutput("does not prove key", timeout: .seconds(10)))
        // The ring works on: a reading routed through both nodes.
        let ack = try await ring.submit("after-garbage", at: 1, #"{"ok":1}"#)
        #expect(ack["seq"]?.int64Value == 1)
        #expect(try await ring.readingIDs("after-garbage", at: 0) == [ack["id"]?.stringValue ?? ""])
        await ring.stopAll()
    }

    @Test func anOwnerThatStopsAnsweringTimesOutWhileOtherDevicesFlowAndTakesItsKeysBackWhenThawed() async throws {
        let ring = try await TestRing(size: 3)
        defer { Task { await ring.stopAll() } }
        try await ring.converge()
        // Node 0 stays up; a device owned by node 1 or 2 whose owner freezes (SIGSTOP: the TCP
        // connection stays open, nothing answers) after node 0 has forwarded to it once. The
        // next forwards are in flight when nothing answers: they time out, unacknowledged. (A
        // lookup made after the freeze would find the owner dead and fail over to its successor.)
        let frozen = try #require((0..<100_000).lazy.map { "frozen-\($0)" }.first { ring.owner(of: $0) != 0 })
        let fine = try #require((0..<100_000).lazy.map { "fine-\($0)" }.first { ring.owner(of: $0) == 0 })
        let owner = ring.owner(of: frozen)
        #expect(try await ring.submit(frozen, at: 0, #"{"x":0}"#)["seq"]?.int64Value == 1)
        // Copied to the owner's successors before it freezes: with `--ack owner` a reading is
        // acknowledged before it is copied, and one the successor never saw it cannot number after.
        let copies = ring.successors(of: owner).map { ring.nodes[$0]!.dir.file("data/replicas/\(ring.keys[owner]).sqlite") }
        let copied = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < copied, try copies.contains(where: { try Self.seqs(frozen, in: $0) != [1] }) {
            try await Task.sleep(for: .milliseconds(50))
        }
        ring.nodes[owner]!.process.signal(SIGSTOP)
        defer { ring.nodes[owner]?.process.signal(SIGCONT) }
        let start = ContinuousClock.now
        let port0 = ring.nodes[0]!.port
        // A Web-of-Things device cannot be asked to send again: its frame, unanswered by the
        // frozen owner, waits in node 0's forward queue, and the device is told so.
        async let frame = offPool { () -> String in
            guard let ws = RawWebSocket(port: port0, path: "/object/\(frozen)/send?ack=1") else { return "no connection" }
            ws.sendFrame(opcode: 1, Array(#"{"x":3}"#.utf8))
            return ws.readTexts(1).first ?? "no reply"
        }
        // An RPC client is told that nothing was acknowledged.
        do {
            _ = try await ring.submit(frozen, at: 0, #"{"x":1}"#)
            Issue.record("a reading for a frozen owner was acknowledged")
        } catch let e as RPCConnection.RemoteError {
            #expect(e.message.contains("did not answer") || e.message.contains("not stored"), "\(e)")
        }
        let frameReply = try await frame
        #expect(frameReply.contains(#""queued""#), "the device is told its frame waits in the forward queue: \(frameReply)")
        #expect(ContinuousClock.now - start < .seconds(40), "the forwards timed out instead of hanging")
        // Meanwhile a device node 0 owns is unaffected.
        #expect(try await ring.submit(fine, at: 0, #"{"x":2}"#)["seq"]?.int64Value == 1)
        // The queued frame goes to the node that took the frozen owner's keys over.
        let drained = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < drained,
              try await !offPool({ try LoopbackHTTP.get(port: port0, path: "/metrics").text }).contains("flowchain_forward_queue 0") {
            try await Task.sleep(for: .milliseconds(300))
        }
        // Thawed, the owner finds it was paused: it refuses the stale forwards it still had (their
        // sender gave up on them) and copies what its successor stored for its keys meanwhile
        // before it numbers readings again, so no seq is used twice.
        ring.nodes[owner]!.process.signal(SIGCONT)
        try await ring.converge()
        let after = ContinuousClock.now + .seconds(30)
        var last = JSONValue.null
        while ContinuousClock.now < after {
            if let ack = try? await ring.submit(frozen, at: 0, #"{"x":4}"#) { last = ack; break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(last["seq"]?.int64Value == 3, "numbered after the reading stored during the pause: \(last)")
        for i in 0..<3 {
            let page = try await TestRing.call(ring.nodes[i]!.url, "readings", ["device": .string(frozen)])["readings"]?.arrayValue ?? []
            #expect(page.compactMap { $0["payload"]?["x"]?.int64Value } == [0, 3, 4], "asked at node \(i): every acknowledged reading once, the unacknowledged one not at all")
            #expect(page.compactMap { $0["seq"]?.int64Value } == [1, 2, 3], "asked at node \(i)")
        }
        await ring.stopAll()
    }
}
