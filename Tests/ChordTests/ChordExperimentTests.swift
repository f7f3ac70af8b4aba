import FlowchainTesting
import Testing
@testable import Chord

/// The paper's results at small N (the full-size tables are in docs/chord.md, made by
/// `flowchain sim chord`).
@Suite struct ChordExperimentTests {
    // The experiments compute for seconds: each runs on a thread of its own (`offPool`), so the
    // other tests' tasks are not held up behind it.

    @Test func pathLengthStaysWithinHalfLog2NPlusHalf() async throws {
        // Finger-only routing (successor lists of 1) is the paper's setting; 8 is ours.
        for successors in [1, 8] {
            let rows = try await offPool { ChordExperiments.pathLength(sizes: [8, 32, 128, 512], lookups: 1_500, successors: successors, seed: 4) }
            for r in rows {
                #expect(r.lookups.correct == r.lookups.issued, "N = \(r.nodes)")
                #expect(r.withinTarget, "N = \(r.nodes), successors \(successors): mean \(r.lookups.meanHops) > \(r.halfLog2N + 0.5)")
            }
            // It grows logarithmically: quadrupling N adds about one hop.
            let growth = rows.last!.lookups.meanHops - rows.first!.lookups.meanHops
            #expect((2.0...4.0).contains(growth), "growth from 8 to 512 nodes: \(growth) hops")
        }
    }

    @Test func halfTheNodesFailingAtOnceStillLeavesLookupsCorrect() async throws {
        let rows = try await offPool { ChordExperiments.failures(nodes: 128, fractions: [0.2, 0.5], lookups: 1_000, successors: nil, rounds: 30, seed: 9) }
        for r in rows {
            #expect(r.crashed == Int((128 * r.fraction).rounded()))
            #expect(r.before.correctFraction >= 0.99, "p = \(r.fraction): \(r.before.correctFraction) before stabilization")
            #expect(r.after.correct == r.after.issued, "p = \(r.fraction): \(r.after.correctFraction) after stabilization")
        }
        #expect(rows[1].before.meanTimeouts > rows[0].before.meanTimeouts)
        // Without successor lists the same crash breaks lookups: the lists are what the result rests on.
        let bare = try await offPool { ChordExperiments.failures(nodes: 128, fractions: [0.5], lookups: 1_000, successors: 1, rounds: 1, seed: 9) }
        #expect(bare[0].before.correctFraction < 0.9)
    }

    @Test func sequentialJoinsConvergeWithinThirtyRounds() async throws {
        let r = try await offPool { ChordExperiments.convergence(joins: 150, successors: nil, seed: 12) }
        let rounds = try #require(r.rounds, "not converged within \(r.limit) rounds")
        #expect(rounds <= 30)
    }

    @Test func lookupsMostlySucceedUnderChurn() async throws {
        let rows = try await offPool { ChordExperiments.churn(initial: 100, rates: [0.1], seconds: 900, successors: nil, seed: 21) }
        let r = try #require(rows.first)
        #expect(r.joins > 30 && r.crashes > 30)
        #expect(r.lookups.issued > 700)
        #expect(1 - r.lookups.correctFraction < 0.02, "failed fraction \(1 - r.lookups.correctFraction)")
    }

    @Test func lookupsSurviveALossyNetwork() throws {
        // 5 % of messages lost: a request is retried once before its peer counts as failed.
        var network = ChordExperiments.Network()
        network.loss = 0.05
        network.latency = .exponential(minimum: 5, mean: 20)
        let rows = ChordExperiments.pathLength(sizes: [128], lookups: 1_000, successors: nil, network: network, seed: 8)
        #expect(rows[0].lookups.correctFraction >= 0.97, "\(rows[0].lookups.correctFraction)")
        #expect(rows[0].lookups.failed + rows[0].lookups.wrong + rows[0].lookups.correct == 1_000)
    }

    @Test func keysSpreadAsTheExponentialModelPredicts() throws {
        let r = ChordExperiments.loadBalance(nodes: 1_000, keys: 200_000, seed: 5)
        #expect(r.mean == 200)
        #expect(abs(Double(r.p99) - r.theoryP99) / r.theoryP99 < 0.2, "p99 \(r.p99) vs model \(r.theoryP99)")
        #expect(abs(Double(r.p50) - r.theoryP50) / r.theoryP50 < 0.2, "median \(r.p50) vs model \(r.theoryP50)")
        #expect(r.p1 <= 10)
    }
}
