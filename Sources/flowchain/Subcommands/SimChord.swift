import ArgumentParser
import Chord
import Foundation

struct SimChord: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chord",
        abstract: "Reproduce the Chord paper's experiments in the deterministic simulator.",
        discussion: """
            Experiments (Stoica et al., IEEE/ACM ToN 2003, §V), each printed as a table:
              path      mean hops of random lookups in stable rings of 2^3 … --nodes nodes, beside ½·log2 N
              fail      a fraction --fail of the nodes crash at once: lookups before any stabilization,
                        then after --rounds rounds (successor lists of 2·log2 N unless --successors)
              converge  --joins sequential joins through random members, then stabilization rounds
                        until every successor and predecessor pointer is right
              churn     joins and crashes at --churn per second each, stabilization every 15–45 s,
                        one lookup per second; failed lookups and mean hops
              load      keys per node for --nodes nodes and --keys keys, beside the exponential model
              all       every experiment (the defaults take a few minutes on a 2-core machine)
            Every message takes --latency (default uniform 5–50 ms) and is lost with probability
            --loss. Virtual clock: the same --seed gives the same figures. Progress goes to standard error.
            Without --nodes each experiment uses the paper's size: path up to 16,384; fail and load
            10,000; churn starts from 500.
            """
    )

    enum Experiment: String, ExpressibleByArgument, CaseIterable { case path, fail, converge, churn, load, all }

    @Argument(help: "path, fail, converge, churn, load or all.") var experiment: Experiment = .all
    @Option(help: "Network size (see above for each experiment's default).") var nodes: Int?
    @Option(help: ArgumentHelp("Failed fractions for the fail experiment, comma-separated.", valueName: "p,…")) var fail = "0.1,0.2,0.3,0.4,0.5"
    @Option(help: ArgumentHelp("Join and failure rates per second for the churn experiment, comma-separated.", valueName: "R,…"))
    var churn = "0.05,0.1,0.2,0.4"
    @Option(help: "Successor list length (default: 8; 2·log2 N in the fail experiment).") var successors: Int?
    @Option(help: "Lookups per row of the path and fail experiments.") var lookups = 10_000
    @Option(help: "Stabilization rounds before the second measurement of the fail experiment.") var rounds = 30
    @Option(help: "Sequential joins in the converge experiment.") var joins = 1000
    @Option(help: "Keys placed in the load experiment.") var keys = 1_000_000
    @Option(help: "Virtual seconds per churn rate.") var seconds = 3600
    @Option(help: ArgumentHelp("One-way message latency: MS, LO-HI (uniform) or exp:MIN:MEAN.", valueName: "model"))
    var latency = "5-50"
    @Option(help: "Fraction of messages lost, 0…0.5.") var loss = 0.0
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        if let nodes { guard (2...100_000).contains(nodes) else { throw ValidationError("--nodes must be 2…100000") } }
        if let successors { guard (1...ChordConfiguration.maxListLength).contains(successors) else {
            throw ValidationError("--successors must be 1…\(ChordConfiguration.maxListLength)")
        } }
        guard (1...10_000_000).contains(lookups) else { throw ValidationError("--lookups must be 1…10000000") }
        guard (1...10_000).contains(joins) else { throw ValidationError("--joins must be 1…10000") }
        guard (1...100_000_000).contains(keys) else { throw ValidationError("--keys must be 1…100000000") }
        guard (1...1000).contains(rounds) else { throw ValidationError("--rounds must be 1…1000") }
        guard (60...864_000).contains(seconds) else { throw ValidationError("--seconds must be 60…864000") }
        _ = try fractions()
        _ = try rates()
        _ = try network()
    }

    func network() throws -> ChordExperiments.Network {
        guard let model = LatencyModel(parsing: latency) else {
            throw ValidationError("--latency '\(latency)' is not MS, LO-HI or exp:MIN:MEAN (milliseconds)")
        }
        guard (0...0.5).contains(loss) else { throw ValidationError("--loss must be within 0…0.5") }
        var n = ChordExperiments.Network()
        n.latency = model
        n.loss = loss
        return n
    }

    func fractions() throws -> [Double] {
        try fail.split(separator: ",").map {
            guard let p = Double($0.trimmingCharacters(in: .whitespaces)), (0..<1).contains(p) else {
                throw ValidationError("--fail: '\($0)' is not a fraction in [0, 1)")
            }
            return p
        }
    }

    func rates() throws -> [Double] {
        try churn.split(separator: ",").map {
            guard let r = Double($0.trimmingCharacters(in: .whitespaces)), (0...100).contains(r) else {
                throw ValidationError("--churn: '\($0)' is not a rate in 0…100 per second")
            }
            return r
        }
    }

    func run() throws {
        let progress: ChordExperiments.Progress = { FileHandle.standardError.write(Data("sim: \($0)\n".utf8)) }
        let chosen: [Experiment] = experiment == .all ? [.path, .fail, .converge, .churn, .load] : [experiment]
        let net = try network()
        var out: [String: Any] = ["seed": seed, "latency": net.latency.description, "loss": net.loss]
        for e in chosen {
            let started = ContinuousClock.now
            switch e {
            case .path:
                let top = max(3, Int(Foundation.log2(Double(nodes ?? 16_384))))
                let rows = ChordExperiments.pathLength(sizes: (3...top).map { 1 << $0 }, lookups: lookups, successors: successors,
                                                       network: net, seed: seed, progress: progress)
                out["path"] = rows.map { ["nodes": $0.nodes, "meanHops": $0.lookups.meanHops, "meanMessages": $0.lookups.meanMessages, "p1": $0.lookups.hopsPercentile(0.01),
                                          "p99": $0.lookups.hopsPercentile(0.99), "halfLog2N": $0.halfLog2N,
                                          "correct": $0.lookups.correct, "lookups": $0.lookups.issued, "withinTarget": $0.withinTarget] }
                if !json { print(ChordTables.path(rows)) }
            case .fail:
                let n = nodes ?? 10_000
                let rows = ChordExperiments.failures(nodes: n, fractions: try fractions(), lookups: lookups, successors: successors,
                                                     rounds: rounds, network: net, seed: seed, progress: progress)
                out["fail"] = rows.map { ["fraction": $0.fraction, "crashed": $0.crashed, "correctBefore": $0.before.correctFraction,
                                          "meanHopsBefore": $0.before.meanHops, "timeoutsPerLookupBefore": $0.before.meanTimeouts,
                                          "correctAfter": $0.after.correctFraction, "meanHopsAfter": $0.after.meanHops,
                                          "lookups": $0.before.issued, "rounds": $0.rounds] }
                if !json { print(ChordTables.failures(rows, nodes: n, successors: successors ?? ChordExperiments.paperSuccessors(for: n))) }
            case .converge:
                let r = ChordExperiments.convergence(joins: joins, successors: successors, network: net, seed: seed, progress: progress)
                out["converge"] = ["joins": r.joins, "joinSeconds": r.joinSeconds, "wrongSuccessorsAfterJoins": r.wrongAfterJoins.successors,
                                   "wrongPredecessorsAfterJoins": r.wrongAfterJoins.predecessors, "rounds": r.rounds as Any, "limit": r.limit]
                if !json { print(ChordTables.convergence(r)) }
            case .churn:
                let rows = ChordExperiments.churn(initial: nodes ?? 500, rates: try rates(), seconds: seconds, successors: successors,
                                                  network: net, seed: seed, progress: progress)
                out["churn"] = rows.map { ["rate": $0.rate, "seconds": $0.seconds, "joins": $0.joins, "crashes": $0.crashes,
                                           "lookups": $0.lookups.issued, "failedFraction": 1 - $0.lookups.correctFraction,
                                           "meanHops": $0.lookups.meanHops, "timeoutsPerLookup": $0.lookups.meanTimeouts, "finalNodes": $0.finalNodes] }
                if !json { print(ChordTables.churn(rows, initial: nodes ?? 500)) }
            case .load:
                let r = ChordExperiments.loadBalance(nodes: nodes ?? 10_000, keys: keys, seed: seed, progress: progress)
                out["load"] = ["nodes": r.nodes, "keys": r.keys, "mean": r.mean, "p1": r.p1, "p50": r.p50, "p99": r.p99, "max": r.max,
                               "theoryP1": r.theoryP1, "theoryP50": r.theoryP50, "theoryP99": r.theoryP99]
                if !json { print(ChordTables.load(r)) }
            case .all:
                continue
            }
            let elapsed = ContinuousClock.now - started
            progress(String(format: "%@: %.1f s wall", e.rawValue, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
        }
        if json { try printJSON(out) }
    }
}

/// The experiments' text tables.
enum ChordTables {
    static func path(_ rows: [ChordExperiments.PathLengthRow]) -> String {
        var s = "PATH LENGTH (stable rings, random keys from random nodes)\n"
        s += "      N   LOOKUPS  MEAN-HOPS  P1  P99  ½·log2 N  TARGET ≤  CORRECT\n"
        for r in rows {
            s += String(format: "%7d  %8d  %9.3f  %2d  %3d  %8.2f  %8.2f  %7.4f%@\n", r.nodes, r.lookups.issued, r.lookups.meanHops,
                        r.lookups.hopsPercentile(0.01), r.lookups.hopsPercentile(0.99), r.halfLog2N, r.halfLog2N + 0.5,
                        r.lookups.correctFraction, r.withinTarget ? "" : "  OVER")
        }
        return s
    }

    static func failures(_ rows: [ChordExperiments.FailureRow], nodes: Int, successors: Int) -> String {
        var s = "SIMULTANEOUS FAILURES (N = \(nodes), successor lists of \(successors))\n"
        s += "     p  CRASHED  CORRECT-BEFORE  HOPS  TIMEOUTS/LOOKUP  CORRECT-AFTER  ROUNDS\n"
        for r in rows {
            s += String(format: "%6.2f  %7d  %14.4f  %4.2f  %15.2f  %13.4f  %6d\n", r.fraction, r.crashed, r.before.correctFraction,
                        r.before.meanHops, r.before.meanTimeouts, r.after.correctFraction, r.rounds)
        }
        return s
    }

    static func convergence(_ r: ChordExperiments.ConvergenceResult) -> String {
        var s = "CONVERGENCE (\(r.joins) sequential joins through random members)\n"
        s += String(format: "joins took %.0f virtual s; right after them %d successor and %d predecessor pointers were wrong\n",
                    r.joinSeconds, r.wrongAfterJoins.successors, r.wrongAfterJoins.predecessors)
        s += r.rounds.map { "every pointer right after \($0) stabilization round(s) (limit \(r.limit))\n" }
            ?? "NOT converged within \(r.limit) rounds\n"
        return s
    }

    static func churn(_ rows: [ChordExperiments.ChurnRow], initial: Int) -> String {
        var s = "CHURN (start \(initial) nodes; joins and crashes at R/s each; stabilization every 15–45 s; 1 lookup/s)\n"
        s += "     R  VIRTUAL-S  JOINS  CRASHES  LOOKUPS  FAILED  MEAN-HOPS  TIMEOUTS/LOOKUP  NODES-AT-END\n"
        for r in rows {
            s += String(format: "%6.2f  %9d  %5d  %7d  %7d  %6.4f  %9.2f  %15.2f  %12d\n", r.rate, r.seconds, r.joins, r.crashes,
                        r.lookups.issued, 1 - r.lookups.correctFraction, r.lookups.meanHops, r.lookups.meanTimeouts, r.finalNodes)
        }
        return s
    }

    static func load(_ r: ChordExperiments.LoadBalanceResult) -> String {
        var s = "LOAD BALANCE (\(r.nodes) nodes, \(r.keys) keys)\n"
        s += "              MEAN   P1  MEDIAN    P99   MAX\n"
        s += String(format: "measured  %8.1f  %3d  %6d  %5d  %4d\n", r.mean, r.p1, r.p50, r.p99, r.max)
        s += String(format: "model     %8.1f  %3.0f  %6.0f  %5.0f     -\n", r.mean, r.theoryP1, r.theoryP50, r.theoryP99)
        s += "(model: a node's share of the ring is exponential with mean 1/N)\n"
        return s
    }
}
