import Chord
import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
import Logging
@testable import PeerNetwork
import Synchronization
import Testing

@Suite("Forward queue: durable, in order, bounded")
struct ForwardQueueTests {
    static func submission(_ device: String, _ n: Int, source: ReadingSource = .mqtt) -> Submission {
        .unsigned(device: device, payload: Array(#"{"n":\#(n)}"#.utf8), time: 1_700_000_000_000 + Int64(n), timeQuality: .synced, source: source)
    }

    static func describe(_ s: Submission) -> String {
        guard case let .unsigned(device, payload, _, _, _) = s else { return "signed" }
        return "\(device) \(String(decoding: payload, as: UTF8.self))"
    }

    @Test func onlySourcesThatCannotSendAgainAreQueued() {
        #expect(ForwardQueue.canQueue(Self.submission("a", 1, source: .mqtt)))
        #expect(ForwardQueue.canQueue(Self.submission("a", 1, source: .gpio)))
        #expect(!ForwardQueue.canQueue(Self.submission("a", 1, source: .rpc)), "an RPC client is told and sends again")
        #expect(ForwardQueue.canQueue(Self.submission("a", 1, source: .ws)), "Web-of-Things devices push without reading replies")
    }

    @Test func queuedReadingsSurviveAReopenAndLeaveInOrderOnlyWhenDelivered() async throws {
        let dir = TemporaryDirectory("forward-queue")
        let key = Fixtures.key(71)
        let path = dir.file("ledger.sqlite")
        do {
            let store = try LedgerStore(path: path, owner: key.publicKey)
            let queue = try ForwardQueue(store: store, limit: 10, logger: Logger(label: "test")) { _ in }
            let tokens = (1...4).map { ForwardToken(high: 9, low: UInt64($0)) }
            #expect(await queue.enqueue((1...3).map { Self.submission("kitchen", $0) } + [Self.submission("garage", 1)], tokens: tokens, now: 0))
            #expect(queue.isWaiting("kitchen") && queue.isWaiting("garage") && !queue.isWaiting("attic"))
            // Bounded: 4 + 7 would be over 10; nothing of the batch is stored.
            #expect(await queue.enqueue((1...7).map { Self.submission("attic", $0) }, now: 0) == false)
            #expect(queue.count == 4)
            try store.close()
        }
        // Reopened (a restart): still there, in order.
        let store = try LedgerStore(path: path, owner: key.publicKey)
        let depth = Mutex<[Int]>([])
        let queue = try ForwardQueue(store: store, limit: 10, logger: Logger(label: "test")) { n in depth.withLock { $0.append(n) } }
        #expect(queue.count == 4)
        // Kitchen's owner still cannot be reached: kitchen keeps all three, garage goes.
        let seen = Mutex<[[String]]>([])
        let left = await queue.drain { items, tokens in
            // Each reading is delivered with the token of its first forward, so an owner that
            // stored it then (the forward timed out) answers with the same acknowledgement.
            #expect(tokens.map { $0?.low } == [1, 2, 3, 4] && tokens.allSatisfy { $0?.high == 9 })
            seen.withLock { $0.append(items.map(Self.describe)) }
            return items.map { s -> Result<Ack, IngestError> in
                s.device == "kitchen" ? .failure(.ownerUnreachable("down")) : .success(Ack(id: Digest32(), device: s.device, seq: 1))
            }
        }
        #expect(left == 1)
        #expect(seen.withLock { $0 } == [[#"kitchen {"n":1}"#, #"kitchen {"n":2}"#, #"kitchen {"n":3}"#, #"garage {"n":1}"#]])
        #expect(queue.count == 3 && queue.isWaiting("kitchen") && !queue.isWaiting("garage"))
        // A refusal that is not about reachability removes the reading (logged, not silent);
        // the first kitchen reading is delivered, the second refused, the third delivered.
        let second = await queue.drain { items, _ in
            items.enumerated().map { i, s -> Result<Ack, IngestError> in
                i == 1 ? .failure(.seqNotIncreasing(device: s.device, seq: 2, last: 5)) : .success(Ack(id: Digest32(), device: s.device, seq: UInt64(i + 1)))
            }
        }
        #expect(second == 3 && queue.count == 0 && !queue.isWaiting("kitchen"))
        #expect(try store.forwardQueueSummary().count == 0)
        #expect(depth.withLock { $0 } == [4, 3, 0])
    }

    @Test func anOwnerAnswersADeliverySentAgainWithItsFirstAcknowledgement() throws {
        let submissions = [Self.submission("kitchen", 1), Self.submission("kitchen", 2)]
        let tokens: [ForwardToken?] = [ForwardToken(high: 1, low: 7), nil]
        let decoded = try SubmissionCodec.decodeForwards(SubmissionCodec.encode(submissions, tokens: tokens))
        #expect(decoded.map(\.token) == tokens)
        #expect(decoded.map { Self.describe($0.submission) } == submissions.map(Self.describe))
        // Remembered acknowledgements, the oldest forgotten first.
        let recent = RecentForwards(capacity: 2)
        let ack = Ack(id: SHA256.hash(Array("one".utf8)), device: "kitchen", seq: 4)
        recent.remember(ForwardToken(high: 1, low: 1), ack)
        #expect(recent.ack(for: ForwardToken(high: 1, low: 1), device: "kitchen") == ack)
        recent.remember(ForwardToken(high: 1, low: 2), ack)
        recent.remember(ForwardToken(high: 1, low: 3), ack)
        #expect(recent.ack(for: ForwardToken(high: 1, low: 1), device: "kitchen") == nil)
        #expect(recent.ack(for: ForwardToken(high: 1, low: 3), device: "kitchen") == ack)
    }
}

@Suite("Ring view: a paused node is fenced only when it had peers")
struct RingViewPauseTests {
    @Test func aLoneNodeGoesOnAfterAStallAndARingNodeWaitsToTakeItsKeysBack() {
        let me = NodeRef(id: ChordID.hashing([1]))
        let lone = RingView(me: me)
        lone.update(owned: nil, alone: true, successors: [me])
        let start = ContinuousClock.now
        _ = lone.beat(at: start)
        #expect(lone.beat(at: start + .seconds(5)) == .seconds(5))
        #expect(!lone.isPaused(at: start + .seconds(5)) && lone.owns(ChordID.hashing([9])), "nobody can have taken a lone node's keys")

        let member = RingView(me: me)
        member.update(owned: nil, alone: false, successors: [NodeRef(id: ChordID.hashing([2]))])
        _ = member.beat(at: start)
        #expect(member.isPaused(at: start + .seconds(3)), "a heartbeat 3 s late: paused, before the heartbeat even runs")
        _ = member.beat(at: start + .seconds(3))
        // Everyone looked dead after the pause: alone now, still fenced until its keys are back.
        member.update(owned: nil, alone: true, successors: [me])
        #expect(member.isPaused(at: start + .seconds(3)) && !member.owns(ChordID.hashing([9])))
        member.release()
        #expect(!member.isPaused(at: start + .seconds(3)))
    }
}
