import Chord
import Foundation

/// Simulator speed and memory: the yardstick is a 10,000-node ring answering 100,000
/// lookups within 60 s of wall time.
public enum ChordBench {
    public static func run(nodes: Int = 10_000, lookups: Int = 100_000, maintenanceRounds: Int = 10,
                           progress: @escaping (String) -> Void) -> BenchReport {
        var report = BenchReport(scenario: "chord")
        var c = ChordSimulator.Configuration()
        c.seed = 2026
        c.chord.successorListLength = ChordExperiments.paperSuccessors(for: nodes)
        let sim = ChordSimulator(c)
        let rss0 = selfRSSMB()
        progress("building a stable \(nodes)-node ring (successor lists of \(c.chord.successorListLength))")
        let start = ContinuousClock.now
        sim.buildStableRing(count: nodes, maintain: false)
        let built = ContinuousClock.now
        let rss1 = selfRSSMB()
        progress("\(lookups) lookups of random keys from random nodes")
        let events0 = sim.eventsProcessed
        let stats = sim.runLookups(count: lookups, seed: 7) { progress("\($0) lookups done") }
        let end = ContinuousClock.now
        let total = (end - start).seconds
        report.add("ring_\(nodes)_build_s", (built - start).seconds, "s")
        report.add("lookups_\(lookups)_s", (end - built).seconds, "s")
        report.add("experiment_total_s", total, "s")
        report.add("share_of_60s_budget", total / 60, "")
        report.add("lookups_per_s", Double(lookups) / (end - built).seconds, "/s")
        report.add("events_per_s", Double(sim.eventsProcessed - events0) / (end - built).seconds, "/s")
        report.add("lookup_mean_hops", stats.meanHops, "")
        report.add("lookups_correct_fraction", stats.correctFraction, "")
        report.add("memory_per_node_KiB", (rss1 - rss0) * 1024 / Double(nodes), "KiB")
        report.add("rss_after_build_MB", rss1, "MB")

        progress("\(maintenanceRounds) stabilization rounds on every node (stabilize, fix_fingers, check_predecessor)")
        let m0 = ContinuousClock.now, e0 = sim.eventsProcessed
        sim.startMaintenance()
        sim.run(until: sim.now + Int64(maintenanceRounds) * c.chord.stabilizeInterval)
        let m = (ContinuousClock.now - m0).seconds
        report.add("maintenance_virtual_s_per_wall_s", Double(maintenanceRounds) * Double(c.chord.stabilizeInterval) / 1000 / m, "")
        report.add("maintenance_events_per_s", Double(sim.eventsProcessed - e0) / m, "/s")
        report.add("rss_after_maintenance_MB", selfRSSMB(), "MB")
        report.note("memory per node = growth of this process's VmRSS while the ring was built, divided by the node count")
        return report
    }

    static func selfRSSMB() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return .nan }
        return kb / 1024
    }
}
