import FlowchainCrypto
import Testing
@testable import Chord

/// Hostile and broken peers: every case ends in a bounded number of steps with an error or the
/// right answer, and the honest node keeps working.
@Suite struct ChordBadInputTests {
    static func ring(_ n: Int, seed: UInt64 = 11) -> (ChordSimulator, [NodeRef]) {
        var c = ChordSimulator.Configuration()
        c.seed = seed
        c.chord.successorListLength = 4
        let sim = ChordSimulator(c)
        let ring = sim.buildStableRing(count: n, maintain: false)
        return (sim, ring)
    }

    static func key(_ i: UInt64) -> ChordID { ChordID.hashing(Array("key-\(i)".utf8)) }

    /// Runs one lookup and returns its result, failing the test if it does not end in time.
    static func lookup(_ sim: ChordSimulator, from: NodeRef, key: ChordID) -> Result<LookupAnswer, LookupError>? {
        var result: Result<LookupAnswer, LookupError>?
        sim.lookup(from: from.id, key: key) { result = $0 }
        sim.run(until: sim.now + 120_000) { result == nil }
        return result
    }

    @Test func anImpersonatedNotifyIsRefusedAndChangesNothing() throws {
        let (sim, ring) = Self.ring(8)
        let target = ring[4]
        var rejected: [ChordInputError] = []
        sim.onEvent = { _, e in if case .rejected(let r) = e { rejected.append(r) } }
        // An attacker authenticated as ring[0] claims to be a node just before the target.
        let forged = NodeRef(id: target.id &- ChordID(1))
        sim.inject(ChordEnvelope(sender: forged, requestID: 9, payload: .request(.notify)), to: target.id, authenticatedAs: ring[0].id)
        #expect(rejected == [.impersonation(claimed: forged.id, actual: ring[0].id)])
        #expect(sim.node(target.id)?.predecessor?.id == ring[3].id)
        #expect(sim.node(target.id)?.statistics.rejected == 1)
    }

    @Test func aNodeThatNotifiesAndFallsSilentNeverBecomesThePredecessor() throws {
        let (sim, ring) = Self.ring(8)
        let target = ring[4]
        var changes: [RangeChange] = []
        sim.onEvent = { node, e in if node.id == target.id, case .rangeChanged(let c) = e { changes.append(c) } }
        // An authenticated node just before the target says it is the target's predecessor, and
        // never answers anything: it would take the target's keys were notices trusted at once.
        let silent = NodeRef(id: target.id &- ChordID(1))
        sim.inject(ChordEnvelope(sender: silent, requestID: 9, payload: .request(.notify)), to: target.id, authenticatedAs: silent.id)
        #expect(sim.node(target.id)?.predecessor?.id == ring[3].id, "not adopted before it answered")
        sim.run(until: sim.now + 10_000)
        #expect(sim.node(target.id)?.predecessor?.id == ring[3].id, "a silent notifier is never adopted")
        #expect(sim.node(target.id)?.owned == RingRange(after: ring[3].id, upTo: target.id))
        #expect(changes.isEmpty, "the target's keys never moved: \(changes)")
    }

    @Test func responsesNobodyAskedForAreRefused() throws {
        let (sim, ring) = Self.ring(8)
        var rejected: [ChordInputError] = []
        sim.onEvent = { _, e in if case .rejected(let r) = e { rejected.append(r) } }
        let stranger = NodeRef(id: Self.key(1))
        let before = sim.node(ring[2].id)!.successors
        sim.inject(ChordEnvelope(sender: stranger, requestID: 12345, payload: .response(.neighbours(predecessor: stranger, successors: [stranger]))),
                   to: ring[2].id, authenticatedAs: stranger.id)
        // A leave notice from a node that is neither neighbour is refused too.
        sim.inject(ChordEnvelope(sender: stranger, requestID: 1, payload: .request(.leaving(predecessor: nil, successors: [stranger]))),
                   to: ring[2].id, authenticatedAs: stranger.id)
        #expect(rejected == [.unsolicitedResponse(from: stranger.id, requestID: 12345), .unexpectedLeave(from: stranger.id)])
        #expect(sim.node(ring[2].id)!.successors == before)
    }

    @Test func aPeerThatNeverAnswersIsSkipped() throws {
        let (sim, ring) = Self.ring(32)
        let mute = ring[10]
        sim.setBehaviour(mute.id, .silent)
        var timeouts = 0
        for i in 0..<200 {
            let key = Self.key(UInt64(i))
            guard sim.trueSuccessor(of: key)?.id != mute.id else { continue }
            let r = try #require(Self.lookup(sim, from: ring[(i * 7) % 32 == 10 ? 0 : (i * 7) % 32], key: key))
            let a = try r.get()
            #expect(a.successor.id == sim.trueSuccessor(of: key)?.id)
            timeouts += a.timeouts
        }
        #expect(timeouts > 0, "some lookups should have routed through the silent peer and timed out")
    }

    @Test func aPeerThatNamesNodesThatDoNotExistIsRoutedAround() throws {
        let (sim, ring) = Self.ring(32)
        let liar = ring[5]
        // It answers every step with ghosts: ids just before the key that no node has.
        sim.setBehaviour(liar.id, .scripted { request in
            switch request {
            case .findSuccessor(let key):
                let ghosts = (1...3).map { NodeRef(id: key &- ChordID(UInt64($0))) }
                return .step(successors: ghosts, closer: ghosts)
            case .neighbours: return .neighbours(predecessor: nil, successors: [])
            default: return .ack
            }
        })
        var sawLiar = false
        for i in 0..<200 {
            let key = Self.key(UInt64(i))
            let from = ring[(i % 31) + (i % 31 >= 5 ? 1 : 0)]
            let r = try #require(Self.lookup(sim, from: from, key: key))
            switch r {
            case .success(let a):
                if a.timeouts > 0 { sawLiar = true }
                // The liar itself may own the key; it never confirms ownership honestly, so it is
                // either returned (it is the owner) or the lookup errs, never another node.
                #expect(a.successor.id == sim.trueSuccessor(of: key)?.id)
            case .failure(let e):
                #expect(sim.trueSuccessor(of: key)?.id == liar.id, "\(e)")
            }
        }
        #expect(sawLiar)
    }

    @Test func peersThatPointBackwardsCannotMakeALookupLoop() throws {
        let (sim, ring) = Self.ring(32)
        // Two colluding peers: each names the other, the asker and itself as "closer", and a
        // successor list that goes backwards round the ring.
        let a = ring[3], b = ring[20]
        for (me, other) in [(a, b), (b, a)] {
            sim.setBehaviour(me.id, .scripted { request in
                switch request {
                case .findSuccessor:
                    return .step(successors: [other, ring[0], me], closer: [other, me, ring[1], ring[2]])
                case .neighbours: return .neighbours(predecessor: other, successors: [other])
                default: return .ack
                }
            })
        }
        var maxMessages = 0, answered = 0
        for i in 0..<300 {
            let key = Self.key(UInt64(i))
            let r = try #require(Self.lookup(sim, from: ring[(i % 2 == 0) ? 10 : 25], key: key), "lookup \(i) never ended")
            switch r {
            case .success(let ans):
                answered += 1
                maxMessages = max(maxMessages, ans.messages)
                if ans.successor.id != sim.trueSuccessor(of: key)?.id {
                    // A wrong answer can only be one of the liars vouching for itself.
                    #expect([a.id, b.id].contains(ans.successor.id))
                }
            case .failure(let e):
                if case .tooManySteps(_, let steps) = e { #expect(steps <= 64) }
            }
        }
        #expect(maxMessages <= 64)
        // Most keys are routed past the liars: they only capture lookups that pass through them.
        #expect(answered > 150)
        // The honest nodes still route among themselves.
        let honest = Self.lookup(sim, from: ring[10], key: ring[12].id)
        #expect((try? honest?.get())?.successor.id == ring[12].id)
    }

    @Test func oversizedListsAreRefused() throws {
        let (sim, ring) = Self.ring(8)
        var rejected: [ChordInputError] = []
        sim.onEvent = { _, e in if case .rejected(let r) = e { rejected.append(r) } }
        let huge = (0..<100).map { NodeRef(id: ChordID(UInt64($0))) }
        sim.setBehaviour(ring[1].id, .scripted { _ in .neighbours(predecessor: nil, successors: huge) })
        // ring[0] stabilizes against ring[1], which answers with a list of 100 nodes.
        sim.node(ring[0].id)!.stabilize()
        sim.perform(ring[0].id) { _ in }
        sim.run(until: sim.now + 1_000)
        #expect(rejected.contains(.oversizedList(from: ring[1].id, count: 100)))
        #expect(sim.node(ring[0].id)!.successors.count <= 4)
    }

    @Test func lookupsFromANodeOutsideAnyRingFailAtOnce() throws {
        var c = ChordSimulator.Configuration()
        c.seed = 3
        let sim = ChordSimulator(c)
        let lone = sim.addNode()
        var result: Result<LookupAnswer, LookupError>?
        sim.lookup(from: lone.id, key: Self.key(1)) { result = $0 }
        #expect(result == .failure(.notInRing))
    }

    @Test func aJoinThroughANodeThatDoesNotAnswerRetriesAndReportsIt() throws {
        let (sim, ring) = Self.ring(8)
        sim.setBehaviour(ring[0].id, .silent)
        var failures: [LookupError] = []
        var joined = false
        sim.onEvent = { _, e in
            if case .joinFailed(let err) = e { failures.append(err) }
            if case .joined = e { joined = true }
        }
        let newcomer = sim.addNode()
        sim.join(newcomer.id, via: ring[0].id)
        sim.run(until: sim.now + 5_000)
        #expect(!joined)
        #expect(failures.count >= 2, "the join is retried every joinRetryDelay")
        #expect(failures.allSatisfy { if case .noRoute = $0 { true } else { false } })
    }
}

/// Garbage from strangers: a ring that receives thousands of random envelopes keeps running and
/// repairs whatever they disturbed once they stop.
@Suite struct ChordGarbageTests {
    @Test func randomEnvelopesFromStrangersNeverBreakTheRingForGood() throws {
        var c = ChordSimulator.Configuration()
        c.seed = 77
        c.chord.successorListLength = 4
        let sim = ChordSimulator(c)
        let ring = sim.buildStableRing(count: 16, maintain: true)
        var rng = SplitMix64(seed: 1234)
        func randomID() -> ChordID { ChordSimulator.randomKey(&rng) }
        func randomNodes() -> [NodeRef] { (0..<Int.random(in: 0...6, using: &rng)).map { _ in NodeRef(id: randomID()) } }
        func randomPayload() -> ChordPayload {
            switch Int.random(in: 0..<9, using: &rng) {
            case 0: .request(.findSuccessor(key: randomID()))
            case 1: .request(.neighbours)
            case 2: .request(.notify)
            case 3: .request(.ping)
            case 4: .request(.leaving(predecessor: NodeRef(id: randomID()), successors: randomNodes()))
            case 5: .response(.step(successors: randomNodes(), closer: randomNodes()))
            case 6: .response(.neighbours(predecessor: NodeRef(id: randomID()), successors: randomNodes()))
            case 7: .response(.ack)
            default: .response(.refused("no"))
            }
        }
        for i in 0..<5_000 {
            let stranger = NodeRef(id: randomID())
            // Half claim to be who they are, half impersonate a ring member.
            let claimed = Bool.random(using: &rng) ? stranger : ring[Int.random(in: 0..<ring.count, using: &rng)]
            let target = ring[Int.random(in: 0..<ring.count, using: &rng)]
            sim.inject(ChordEnvelope(sender: claimed, requestID: UInt64.random(in: 0...200, using: &rng), payload: randomPayload()),
                       to: target.id, authenticatedAs: stranger.id)
            if i % 100 == 0 { sim.run(until: sim.now + 50) }
        }
        let rejected = ring.reduce(0) { $0 + (sim.node($1.id)?.statistics.rejected ?? 0) }
        #expect(rejected > 2_000)
        // Strangers that notified their way in as predecessors never answer; maintenance drops them.
        sim.run(until: sim.now + 30_000)
        #expect(sim.wrongPointers() == (0, 0))
        let stats = sim.runLookups(count: 300, seed: 5)
        #expect(stats.correct == 300)
    }
}
